"""Training and inference images/s of our loop against the bare PyTorch step at the same batch and image size.

  python bench/throughput.py [--arch tf_efficientnet_lite0] [--size 224] [--bs 16] [--n 128] [--out FILE]
  python bench/throughput.py --small   # 8 images of 64 px, the four sides in one process: what CI runs so that the script cannot rot
Each configuration runs in a fresh process (glibc's malloc settings cannot be undone) and reports images/s and peak
resident memory (MiB). 'bare' is model(x) / loss.backward() / opt.step() on one random batch; 'ours' is a fastai
`Learner` epoch (`course_learner`, as `cnn-course train` builds it) over `n` random images, and for inference `pooled_features`
over a loader.
Prints one JSON object (also written to `--out` when given).
"""
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path
from _cold import out_file  # this folder
WHATS = ('bare_train', 'ours_train', 'bare_infer', 'ours_infer')

def peak_mib(): return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

def run(a, what:str) -> dict:
    "One configuration `what` (a name of `WHATS`) in this process: images/s and peak resident MiB."
    import torch
    from torch.utils.data import TensorDataset
    from fastai.vision.all import DataLoaders, TfmdDL
    from cnn_course.core.basics import tune_malloc
    from cnn_course.models.classifier import create_model
    from cnn_course.training.features import pooled_features, quiet
    from cnn_course.training.learner import course_learner
    if a.malloc: tune_malloc()
    torch.manual_seed(0)
    model = create_model(a.arch, 5, pretrained=False).to(memory_format=torch.channels_last)
    x = torch.randn(a.n, 3, a.size, a.size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 5, (a.n,))
    if what == 'bare_train':
        opt = torch.optim.AdamW(model.parameters(), 1e-4); model.train()
        def step(xb, yb): torch.nn.functional.cross_entropy(model(xb), yb).backward(); opt.step(); opt.zero_grad()
        step(x[:a.bs], y[:a.bs]); t = time.perf_counter()
        for i in range(0, a.n, a.bs): step(x[i:i+a.bs], y[i:i+a.bs])
    elif what == 'bare_infer':
        model.eval()
        with torch.no_grad():
            model(x[:a.bs]); t = time.perf_counter()
            for i in range(0, a.n, a.bs): model(x[i:i+a.bs])
    else:
        ds = TensorDataset(x, y)
        # TfmdDL: `course_learner` puts its `Normalize` in the loaders' after_batch pipeline, as a DataBlock's has one
        dls = DataLoaders(TfmdDL(ds, bs=a.bs, shuffle=True, drop_last=True), TfmdDL(ds, bs=a.bs), device='cpu')
        dls.vocab = list('abcde')
        if what == 'ours_train':
            learn = quiet(course_learner(dls, a.arch, pretrained=False))  # random init: nothing frozen, nothing cached
            learn.fit(1, 1e-4)  # warm-up epoch: first-shape set-up costs are not throughput
            t = time.perf_counter(); learn.fit(1, 1e-4)
            return dict(what=what, malloc=a.malloc, img_s=round(a.n // a.bs * a.bs / (time.perf_counter() - t), 1), peak_mib=peak_mib())
        pooled_features(model, dls.valid); t = time.perf_counter(); pooled_features(model, dls.valid)
    return dict(what=what, malloc=a.malloc, img_s=round(a.n / (time.perf_counter() - t), 1), peak_mib=peak_mib())

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='tf_efficientnet_lite0'); p.add_argument('--size', type=int, default=224)
    p.add_argument('--bs', type=int, default=16); p.add_argument('--n', type=int, default=128)
    p.add_argument('--small', action='store_true', help='8 images of 64 px, the four sides in one process: the code path, not the speed')
    p.add_argument('--out', type=Path, help='also write the JSON here (default: printed only)')
    p.add_argument('--what', nargs='+', choices=WHATS, help=argparse.SUPPRESS)
    p.add_argument('--malloc', type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.what:
        for what in a.what: print(json.dumps(run(a, what)), flush=True)
        return
    dest = out_file(a.out, a.small)  # before any work: a refused --out costs nothing
    if a.small: a.size, a.bs, a.n = 64, 4, 8
    # a measured run: each (side, malloc) in its own process; a small one: every side at once, with the malloc tuning
    jobs = [(WHATS, 1)] if a.small else [((what,), malloc) for what in WHATS for malloc in (0, 1)]
    rows = []
    for whats, malloc in jobs:
        r = subprocess.run([sys.executable, __file__, '--arch', a.arch, '--size', str(a.size), '--bs', str(a.bs), '--n', str(a.n),
                            '--what', *whats, '--malloc', str(malloc)], capture_output=True, text=True)
        if r.returncode: sys.exit(r.stderr[-3000:])
        rows += [json.loads(line) for line in r.stdout.strip().splitlines()[-len(whats):]]
    text = json.dumps(dict(arch=a.arch, size=a.size, bs=a.bs, n=a.n, cpus=os.cpu_count(), small=a.small, results=rows), indent=2)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
