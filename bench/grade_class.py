"""Bench: grade 30 flowers submissions on the 736-image hidden test split; prints JSON with the seconds.

The class: copies of one real lite0 flowers run (students who submit the same base), `--distinct` of them with their own
fine-tuned body (the run's body weights perturbed, so no feature sharing is possible), plus broken ones (corrupt
weights, a pickle instead of safetensors, the wrong class count, NaN weights). Target: <= 120 s on a 2-core CPU.

    CNN_COURSE_DATA=/work/shared/data python bench/grade_class.py --run RUN_DIR [--distinct 2]
"""
import argparse, json, os, pickle, shutil, tempfile, time
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from cnn_course.grade import grade_class, load_rubric

PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='

def code(src, text=None, img=False):
    outs = ([{'output_type': 'stream', 'name': 'stdout', 'text': [text]}] if text else []) + \
           ([{'output_type': 'display_data', 'data': {'image/png': PNG}, 'metadata': {}}] if img else [])
    return {'cell_type': 'code', 'execution_count': 1, 'metadata': {}, 'source': [src], 'outputs': outs}

def notebook(path, plots=True):
    cells = ([code('learn.recorder.plot_loss()', img=True), code('plt.plot(h.accuracy); plt.ylabel("accuracy")', img=True)] if plots else [])
    cells.append(code('run.predict("my_garden/rose.jpg")', "[('roses', 0.88)]"))
    Path(path).write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))

def tamper(d, fn):
    sd = load_file(d/'model.safetensors'); fn(sd); save_file(sd, d/'model.safetensors')

def make_class(run:Path, subs:Path, n:int=30, distinct:int=2):
    broken = ['corrupt', 'pickle', 'wrongclasses', 'nan']
    for i in range(n):
        kind = broken[i] if i < len(broken) else 'distinct' if i < len(broken) + distinct else 'copy'
        d = subs/f'student{i:02d}_{kind}'; shutil.copytree(run, d); notebook(d/'notebook.ipynb', plots=i % 7 != 6)
        g = torch.Generator().manual_seed(i)
        if kind == 'corrupt': f = d/'model.safetensors'; f.write_bytes(f.read_bytes()[:1_000_000])
        elif kind == 'pickle': (d/'model.safetensors').unlink(); (d/'model.pkl').write_bytes(pickle.dumps({'not': 'loaded'}))
        elif kind == 'wrongclasses':
            m = json.loads((d/'model.json').read_text()); m['classes'] = m['classes'][:-1]; (d/'model.json').write_text(json.dumps(m))
        elif kind == 'nan': tamper(d, lambda sd: [v.fill_(float('nan')) for k, v in sd.items() if k.startswith('1.') and v.ndim == 2])
        elif kind == 'distinct':  # a different fine-tune: every body tensor moves a little
            tamper(d, lambda sd: [v.add_(1e-3*v.std()*torch.randn(v.shape, generator=g)) for k, v in sd.items() if k.startswith('0.') and v.is_floating_point() and v.numel() > 1])

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--run', type=Path, help='a saved flowers run (default: train a quick one)')
    p.add_argument('--n', type=int, default=30); p.add_argument('--distinct', type=int, default=2)
    a = p.parse_args()
    data = Path(os.environ['CNN_COURSE_DATA'])/'flowers'
    tmp = Path(tempfile.mkdtemp(prefix='grade_bench_'))
    run = a.run
    if run is None:
        from cnn_course.train import train
        run = train('flowers', 'tf_efficientnet_lite0', data=data, max_per_class=60, out=tmp/'run').path
    make_class(run, tmp/'subs', a.n, a.distinct)
    torch.set_num_threads(min(2, os.cpu_count()))
    t0 = time.perf_counter()
    g = grade_class(tmp/'subs', data/'test', load_rubric(), out=tmp/'grades', data=data, progress=False)
    secs = round(time.perf_counter() - t0, 1)
    per = sorted(r.seconds for r in g.results)
    print(json.dumps({'submissions': len(g.results), 'test_images': 736, 'distinct_bodies': a.distinct + 1, 'seconds': secs,
                      'slowest_submission_s': per[-1], 'median_submission_s': per[len(per)//2],
                      'totals': {f'{s:g}': [r.total for r in g.results].count(s) for s in sorted({r.total for r in g.results})},
                      'accuracy_of_run': next(r.accuracy for r in g.results if r.accuracy is not None), 'threads': torch.get_num_threads(),
                      'grades': str(tmp/'grades')}, indent=2))
    shutil.rmtree(tmp/'subs')

if __name__ == '__main__': main()
