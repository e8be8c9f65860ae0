"""Wall seconds to >= 85% test accuracy on flowers: our default CPU recipe against plain fastai, same backbone, size, data.

Each side runs in its own process (so neither inherits the other's warm caches or malloc settings) and prints JSON:
  python bench/time_to_accuracy.py [--data PATH/flowers] [--arch tf_efficientnet_lite0] [--target 0.85]
Plain fastai is `vision_learner(dls, arch).fine_tune(...)` with the same pretrained weights (fastai's own cut and head),
evaluated on the test split after each phase (frozen, unfrozen); evaluation time is not counted against it.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

def ours(a) -> dict:
    t0 = time.perf_counter()
    from cnn_course.train import train
    t = train('flowers', a.arch, data=a.data, size=a.size, epochs=0)
    wall = time.perf_counter() - t0
    acc = t.metrics['test_accuracy']
    return dict(side='cnn_course', recipe='features once + head (frozen phase only)', wall_s=round(wall, 1),
                test_accuracy=round(acc, 4), reached=acc >= a.target, seconds_to_target=round(wall, 1) if acc >= a.target else None,
                phases=t.meta['seconds'])

def plain_fastai(a) -> dict:
    t0 = time.perf_counter()
    import timm, torch
    from fastai.vision.all import vision_learner, accuracy
    from cnn_course.backbones import get_backbone
    from cnn_course.data import get_dls, get_test_dl
    from cnn_course.weights import resolve_weights
    def arch(pretrained=True):
        m = timm.create_model(get_backbone(a.arch).model)
        m.load_state_dict(resolve_weights(a.arch)[0], strict=False)  # the classifier's keys are not in the body weights
        return m
    b = get_backbone(a.arch)
    dls = get_dls('flowers', a.data, size=a.size, bs=64, stats=(b.mean, b.std))
    test_dl = get_test_dl(dls, 'flowers', a.data)
    learn = vision_learner(dls, arch, metrics=accuracy)
    learn.remove_cb(learn.progress)
    # fastai's `Learner.fine_tune(epochs, base_lr=2e-3, freeze_epochs=1)`, written out phase by phase (the same calls),
    # so test accuracy can be measured between phases (not counted against fastai) and the run stops at the target.
    base_lr, log, paused = 2e-3, [], 0.0
    phases = [('frozen', lambda: (learn.freeze(), learn.fit_one_cycle(1, slice(base_lr), pct_start=0.99)))]
    phases += [('unfrozen', lambda: (learn.unfreeze(), learn.fit_one_cycle(a.fastai_epochs, slice(base_lr/2/100, base_lr/2),
                                                                            pct_start=0.3, div=5.0)))]
    for name, fit in phases:
        fit()
        t = time.perf_counter()
        preds, targs = learn.get_preds(dl=test_dl)
        log.append(dict(phase=name, wall_s=round(t - t0 - paused, 1), test_accuracy=round(float((preds.argmax(1) == targs).float().mean()), 4)))
        paused += time.perf_counter() - t
        print(log[-1], file=sys.stderr, flush=True)
        if log[-1]['test_accuracy'] >= a.target: break
    hit = next((e for e in log if e['test_accuracy'] >= a.target), None)
    return dict(side='plain fastai', recipe=f'vision_learner + fine_tune({a.fastai_epochs}, freeze_epochs=1)', epochs=log,
                test_accuracy=log[-1]['test_accuracy'], reached=hit is not None, seconds_to_target=hit and hit['wall_s'])

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    root = os.environ.get('CNN_COURSE_DATA')
    p.add_argument('--data', type=Path, default=Path(root)/'flowers' if root else None)
    p.add_argument('--arch', default='tf_efficientnet_lite0')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--target', type=float, default=0.85)
    p.add_argument('--fastai-epochs', type=int, default=1, help='unfrozen epochs of plain fastai')
    p.add_argument('--side', choices=['ours', 'fastai'], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.data is None: sys.exit('error: give --data PATH/flowers or set CNN_COURSE_DATA')
    if a.side: return print(json.dumps(ours(a) if a.side == 'ours' else plain_fastai(a)))
    res = {}
    for side in ('ours', 'fastai'):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--side', side], capture_output=True, text=True)
        if out.returncode: sys.exit(f'{side} failed:\n{out.stderr[-3000:]}')
        res[side] = json.loads(out.stdout.strip().splitlines()[-1])
    a_s, b_s = res['ours']['seconds_to_target'], res['fastai']['seconds_to_target']
    res['speedup'] = round(b_s / a_s, 2) if a_s and b_s else None
    res.update(machine=dict(cpus=os.cpu_count()), target=a.target, arch=a.arch, size=a.size)
    print(json.dumps(res, indent=2))

if __name__ == '__main__': main()
