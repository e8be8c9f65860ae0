"""Training and inference images/s of our loop against the bare PyTorch step at the same batch and image size.

  python bench/throughput.py [--arch tf_efficientnet_lite0] [--size 224] [--bs 32] [--n 128]
Each configuration runs in a fresh process (glibc's malloc settings cannot be undone) and reports images/s and peak
resident memory (MiB). 'bare' is model(x) / loss.backward() / opt.step() on one random batch; 'ours' is a fastai
`Learner` epoch (`course_learner`, as `cnn-course train` builds it) over `n` random images, and for inference `pooled_features` over a loader.
"""
import argparse, json, os, resource, subprocess, sys, time

def peak_mib(): return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

def run(a) -> dict:
    import torch
    from torch.utils.data import TensorDataset
    from fastai.vision.all import DataLoader, DataLoaders
    from cnn_course.core import tune_malloc
    from cnn_course.models import create_model
    from cnn_course.features import pooled_features, quiet
    from cnn_course.learner import course_learner
    if a.malloc: tune_malloc()
    torch.manual_seed(0)
    model = create_model(a.arch, 5, pretrained=False).to(memory_format=torch.channels_last)
    x = torch.randn(a.n, 3, a.size, a.size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 5, (a.n,))
    if a.what == 'bare_train':
        opt = torch.optim.AdamW(model.parameters(), 1e-4); model.train()
        def step(xb, yb): torch.nn.functional.cross_entropy(model(xb), yb).backward(); opt.step(); opt.zero_grad()
        step(x[:a.bs], y[:a.bs]); t = time.perf_counter()
        for i in range(0, a.n, a.bs): step(x[i:i+a.bs], y[i:i+a.bs])
    elif a.what == 'bare_infer':
        model.eval()
        with torch.no_grad():
            model(x[:a.bs]); t = time.perf_counter()
            for i in range(0, a.n, a.bs): model(x[i:i+a.bs])
    else:
        ds = TensorDataset(x, y)
        dls = DataLoaders(DataLoader(ds, bs=a.bs, shuffle=True, drop_last=True), DataLoader(ds, bs=a.bs), device='cpu')
        dls.vocab = list('abcde')
        if a.what == 'ours_train':
            learn = quiet(course_learner(dls, a.arch, pretrained=False))  # random init: nothing frozen, nothing cached
            learn.fit(1, 1e-4)  # warm-up epoch: first-shape set-up costs are not throughput
            t = time.perf_counter(); learn.fit(1, 1e-4)
            return dict(what=a.what, malloc=a.malloc, img_s=round(a.n // a.bs * a.bs / (time.perf_counter() - t), 1), peak_mib=peak_mib())
        pooled_features(model, dls.valid); t = time.perf_counter(); pooled_features(model, dls.valid)
    return dict(what=a.what, malloc=a.malloc, img_s=round(a.n / (time.perf_counter() - t), 1), peak_mib=peak_mib())

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='tf_efficientnet_lite0'); p.add_argument('--size', type=int, default=224)
    p.add_argument('--bs', type=int, default=16); p.add_argument('--n', type=int, default=128)
    p.add_argument('--what', help=argparse.SUPPRESS); p.add_argument('--malloc', type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.what: return print(json.dumps(run(a)))
    rows = []
    for what in ('bare_train', 'ours_train', 'bare_infer', 'ours_infer'):
        for malloc in (0, 1):
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--what', what, '--malloc', str(malloc)],
                                 capture_output=True, text=True)
            if out.returncode: sys.exit(out.stderr[-3000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps(dict(arch=a.arch, size=a.size, bs=a.bs, n=a.n, cpus=os.cpu_count(), results=rows), indent=2))

if __name__ == '__main__': main()
