"""Bench: grade 30 flowers submissions on the 736-image test split; prints JSON with the seconds.

Two classes, each graded with `--workers 1` and `--workers 2` (every submission in its own limited process):
- `distinct`: every student has their own fine-tuned body: the run's model after one real SGD step on 8 training
  photos (a different seeded batch per student, batch-norm statistics frozen, so outputs stay finite), so no two
  students share any feature work. This is the case fine-tuning makes normal.
- `shared`: copies of one run (students who trained only the head on the same frozen body) plus broken ones (corrupt
  weights, a pickle instead of safetensors, the wrong classes, NaN weights): the body's features are computed once.
Every distinct student's accuracy is printed; the bench fails if one has no accuracy (NaN outputs would show here).
Target: <= 120 s on a 2-core CPU.

    CNN_COURSE_DATA=/work/shared/data python bench/grade_class.py [--run RUN_DIR] [--classes distinct shared] [--workers 1 2]
        [--out FILE]
    python bench/grade_class.py --small [--out FILE]
        # 5 submissions of a run trained here on generated shapes: what CI runs so that the script cannot rot
"""
import argparse, json, os, pickle, random, shutil, sys, tempfile, time
from pathlib import Path
import torch
from _cold import out_file  # this folder
from cnn_course.grading.project_class import grade_class
from cnn_course.data.fetch import image_files, class_dirs
from cnn_course.evaluation.rubric import FLOWERS_RUBRIC, load_rubric, parse_rubric
from cnn_course.inference.runs import load_run, save_run, to_pixels, normalize

def figure():
    import base64, io
    from PIL import Image, ImageDraw
    im = Image.new('RGB', (320, 240), 'white'); d = ImageDraw.Draw(im)
    d.line([(20, 20), (20, 220), (310, 220)], fill='black', width=2); d.line([(20, 200), (300, 40)], fill='blue', width=3)
    b = io.BytesIO(); im.save(b, 'PNG'); return base64.b64encode(b.getvalue()).decode()

PNG = figure()

def code(src, text=None, img=False):
    outs = ([{'output_type': 'stream', 'name': 'stdout', 'text': [text]}] if text else []) + \
           ([{'output_type': 'display_data', 'data': {'image/png': PNG}, 'metadata': {}}] if img else [])
    return {'cell_type': 'code', 'execution_count': 1, 'metadata': {}, 'source': [src], 'outputs': outs}

def notebook(path, plots=True, i=0):
    cells = ([code('learn.recorder.plot_loss()', img=True), code('plt.plot(h.accuracy); plt.ylabel("accuracy")', img=True)]
             if plots else [])
    cells.append(code(f'run.predict("my_garden/rose_{i}.jpg")', "[('roses', 0.88)]"))
    Path(path).write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))

def fine_tuned(run:Path, out:Path, train_files:list, seed:int):
    "The run after one SGD step of the whole model on 8 seeded training photos (BN statistics frozen): a distinct, finite body."
    r, rng = load_run(run), random.Random(seed)
    batch = rng.sample(train_files, 8)
    x = normalize(torch.stack([to_pixels(f, r.size) for f, _ in batch]), r.meta['mean'], r.meta['std'])
    y = torch.tensor([c for _, c in batch])
    m = r.model.eval()  # eval: batch-norm running statistics are not touched
    for p in m.parameters(): p.requires_grad_(True)
    torch.nn.functional.cross_entropy(m(x), y).backward()
    with torch.no_grad():
        for p in m.parameters():
            if p.grad is not None: p -= 1e-3 * p.grad
    save_run(out, m, {k: v for k, v in r.meta.items() if k not in ('format', 'versions', 'created')})

def make_class(run:Path, subs:Path, kind:str, n:int, data:Path):
    train_files = [(f, i) for i, c in enumerate(class_dirs(data/'train')) for f in image_files(c)]
    broken = ['corrupt', 'pickle', 'wrongclasses', 'nan'] if kind == 'shared' else []
    for i in range(n):
        what = broken[i] if i < len(broken) else kind
        d = subs/f'student{i:02d}_{what}'
        if what == 'distinct': fine_tuned(run, d, train_files, seed=i)
        else: shutil.copytree(run, d)
        notebook(d/'notebook.ipynb', plots=i % 7 != 6, i=i)
        if what == 'corrupt': f = d/'model.safetensors'; f.write_bytes(f.read_bytes()[:1_000_000])
        elif what == 'pickle': (d/'model.safetensors').unlink(); (d/'model.pkl').write_bytes(pickle.dumps({'not': 'loaded'}))
        elif what == 'wrongclasses':
            m = json.loads((d/'model.json').read_text()); m['classes'] = m['classes'][:-1]; (d/'model.json').write_text(json.dumps(m))
        elif what == 'nan':
            from safetensors.torch import load_file, save_file
            sd = load_file(d/'model.safetensors')
            [v.fill_(float('nan')) for k, v in sd.items() if k.startswith('1.') and v.ndim == 2]; save_file(sd, d/'model.safetensors')

def shapes_rubric():
    "The flowers rubric on the generated shapes (its classes are the dataset's)."
    classes = 'classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]\n'
    return parse_rubric(FLOWERS_RUBRIC.replace('"flowers"', '"shapes"').replace(classes, ''), 'shapes rubric')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run', type=Path, help='a saved flowers run (default: train a quick one)')
    p.add_argument('--n', type=int, default=30)
    p.add_argument('--classes', nargs='+', default=['distinct', 'shared'], choices=['distinct', 'shared'])
    p.add_argument('--workers', nargs='+', type=int, default=[1, 2])
    p.add_argument('--small', action='store_true',
                   help='5 submissions of a shapes run trained here, 2 workers: the code path, not the speed')
    p.add_argument('--out', type=Path, help='also write the JSON here (default: printed only)')
    a = p.parse_args()
    dest = out_file(a.out, a.small)  # before any work: a refused --out costs nothing
    tmp = Path(tempfile.mkdtemp(prefix='grade_bench_'))
    run, rubric = a.run, load_rubric()
    if a.small:
        from cnn_course.data.shapes import make_shapes
        if a.run: sys.exit('--small trains its own shapes run: leave out --run.')
        a.n, a.workers, rubric = 5, [2], shapes_rubric()  # 5: the 4 broken kinds and one sound copy
        data = make_shapes(tmp/'shapes', n_classes=3, size=64, n_per_class=30, seed=0)
    elif 'CNN_COURSE_DATA' not in os.environ: sys.exit('No photos: set CNN_COURSE_DATA (the folder holding flowers/), or run --small.')
    else: data = Path(os.environ['CNN_COURSE_DATA'])/'flowers'
    if run is None:
        from cnn_course.training.recipes import train
        run = (train('shapes', data=data, size=64, out=tmp/'run') if a.small else
               train('flowers', 'tf_efficientnet_lite0', data=data, max_per_class=60, out=tmp/'run')).path
    report = dict(submissions=a.n, test_images=len([f for c in class_dirs(data/'test') for f in image_files(c)]), cpus=os.cpu_count(),
                  small=a.small, gradings=[])
    for kind in a.classes:
        t0 = time.perf_counter(); make_class(run, tmp/kind, kind, a.n, data); made = round(time.perf_counter() - t0, 1)
        for w in a.workers:
            t0 = time.perf_counter()
            g = grade_class(tmp/kind, data/'test', rubric, out=tmp/f'grades_{kind}_{w}', data=data, progress=False, workers=w)
            secs = round(time.perf_counter() - t0, 1)
            accs = {r.student: None if r.accuracy is None else round(r.accuracy, 4) for r in g.results}
            if kind == 'distinct' and None in accs.values(): raise SystemExit(f'a distinct student has no accuracy: {g.results}')
            per = sorted(r.seconds for r in g.results)
            totals = [r.total for r in g.results]
            report['gradings'].append(dict(cls=kind, workers=w, seconds=secs, seconds_to_make_class=made,
                                           median_submission_s=per[len(per)//2], slowest_submission_s=per[-1],
                                           totals={f'{s:g}': totals.count(s) for s in sorted(set(totals))},
                                           accuracies=accs if kind == 'distinct' else sorted({v for v in accs.values() if v is not None})))
            print(json.dumps(report['gradings'][-1]), flush=True)
        shutil.rmtree(tmp/kind)
    shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=1)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
