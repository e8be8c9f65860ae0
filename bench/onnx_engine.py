"""The frozen feature pass of every flowers photo through ONNX Runtime against torch, in the same run (goal: >= 2x faster,
the features equal within `onnx_engine.TOLERANCE`).

  python bench/onnx_engine.py [--root $CNN_COURSE_DATA] [--archs tf_efficientnet_lite0 ...] [--out FILE]
  python bench/onnx_engine.py --small [--out FILE]   # 16 generated shapes, no photos needed: what CI runs so that the script cannot rot
Each engine runs in its own process with its own empty course home (so the ONNX side pays its export, reported apart)
and the same thread count; the features are written to a temporary file and compared here. Run it on a quiet machine:
two busy cores make every number larger. Prints one JSON object and writes it to `--out` (a measured run's default:
bench/results/onnx_engine.json; a small run writes only to an --out given).
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
from _cold import out_file  # this folder

def side(a) -> dict:
    "One engine: decode every photo once, then time the body's pass over them (and, for ONNX, the export apart)."
    import torch
    from cnn_course.models.backbones import get_backbone
    from cnn_course.data.loaders import get_block, split_items
    from cnn_course.inference.outputs import eval_dl, folded, outputs
    from cnn_course.models.classifier import create_model, encoder
    from cnn_course.inference import onnx_engine
    torch.set_num_threads(a.threads)
    b, data = get_backbone(a.arch), Path(a.root)/a.dataset
    items = split_items(a.dataset, data)
    files = [f for s in ('train', 'valid', 'test') for f in items[s]][:a.limit or None]
    dls = get_block(a.dataset, items['valid'], size=b.size, stats=(b.mean, b.std)).dataloaders(items['train'] + items['valid'], bs=16,
                                                                                               num_workers=0)
    dl = eval_dl(dls.test_dl(files))  # validation transforms, every photo once, in order
    batches = [batch[0].as_subclass(torch.Tensor) for batch in dl]  # decoded once: the pass alone is timed
    enc = encoder(create_model(a.arch, 5, pretrained=True)).eval()
    export_s = 0.
    if a.engine == 'onnx':
        t0 = time.perf_counter(); onnx_engine.onnx_pass(folded(enc), batches[0]); export_s = time.perf_counter() - t0
    t0 = time.perf_counter(); x = outputs(enc, batches); s = time.perf_counter() - t0
    torch.save(x, a.dump)
    return dict(engine=a.engine, arch=a.arch, images=len(x), size=b.size, threads=a.threads, seconds=round(s, 2),
                images_per_s=round(len(x)/s, 1), export_and_check_s=round(export_s, 2))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--root', default=os.environ.get('CNN_COURSE_DATA'))
    p.add_argument('--archs', nargs='+', default=['tf_efficientnet_lite0'])
    p.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument('--small', action='store_true', help='16 generated shapes instead of the photos: the code path, not the speed')
    p.add_argument('--out', type=Path, help='write the JSON here (default: bench/results/onnx_engine.json, none for --small)')
    p.add_argument('--side', help=argparse.SUPPRESS); p.add_argument('--arch', help=argparse.SUPPRESS)
    p.add_argument('--engine', help=argparse.SUPPRESS); p.add_argument('--dump', help=argparse.SUPPRESS)
    p.add_argument('--limit', type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument('--dataset', default='flowers', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.side: print(json.dumps(side(a))); return
    dest = out_file(a.out, a.small, 'onnx_engine.json')  # before any work: a refused --out costs nothing
    if not a.small and (not a.root or not (Path(a.root)/'flowers').is_dir()):
        sys.exit('No flowers photos: pass --root (the folder holding flowers/), or --small.')
    import torch
    from cnn_course.inference.onnx_engine import TOLERANCE
    rows, load0 = [], os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if a.small:
            from cnn_course.data.shapes import make_shapes
            a.root, a.dataset = tmp, 'shapes'; make_shapes(Path(tmp)/'shapes', n_classes=2, size=64, n_per_class=8, seed=0)
        for arch in a.archs:
            res = {}
            for engine in ('torch', 'onnx'):
                dump, home = Path(tmp)/f'{arch}-{engine}.pt', Path(tmp)/f'home-{arch}-{engine}'
                env = {**os.environ, 'CNN_COURSE_HOME': str(home), 'CNN_COURSE_ENGINE': engine}
                cmd = [sys.executable, __file__, '--side', '1', '--root', a.root, '--dataset', a.dataset, '--arch', arch,
                       '--engine', engine, '--dump', str(dump), '--threads', str(a.threads), '--limit', str(16 if a.small else 0)]
                r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if r.returncode: sys.exit(f'{arch} {engine} failed:\n{r.stderr[-2000:]}')
                res[engine] = json.loads(r.stdout.strip().splitlines()[-1]); res[engine]['dump'] = dump
            x, y = torch.load(res['torch'].pop('dump')), torch.load(res['onnx'].pop('dump'))
            err = float((x - y).abs().max()) / max(1., float(x.abs().max()))
            rows.append(dict(arch=arch, torch=res['torch'], onnx=res['onnx'],
                             speedup=round(res['torch']['seconds']/res['onnx']['seconds'], 2),
                             max_relative_difference=err, within_tolerance=err <= TOLERANCE, tolerance=TOLERANCE))
    out = dict(date=time.strftime('%Y-%m-%d %H:%M'), cores=len(os.sched_getaffinity(0)), small=a.small, dataset=a.dataset,
               loadavg_before=[round(v, 2) for v in load0], loadavg_after=[round(v, 2) for v in os.getloadavg()], rows=rows)
    text = json.dumps(out, indent=2)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
