"""Wall seconds to test accuracy on flowers (cold and warm feature cache), plain fastai side by side, and a table of
head only / head + top-block fine-tuning / TTA over the six photo datasets.

  python bench/time_to_accuracy.py [--root $CNN_COURSE_DATA] [--out bench/results/time_to_accuracy.json]
Every measured run is its own process (wall time includes `import`), with its own course home: 'cold' starts with an
empty feature cache, 'warm' repeats the same run on the cache the cold run left; the >= 0.85 pair runs
`--repeats` times (3), and the median seconds decide. Plain fastai is
`vision_learner(dls, arch)` with fastai's cut and head, the same pretrained weights, data and size; its frozen epoch
(`fine_tune`'s first phase) is timed, then its unfrozen epochs if `--fastai-epochs` > 0. Evaluation time is not counted
against fastai. The table's accuracies are means over `--seeds` (one seed moves them by a photo or two); its seconds
are the first seed's. A section left out with `--skip` keeps its last measured result, dated. The JSON records the
load average before and after, since 2 shared cores make every second noisy.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
T0 = time.perf_counter()
DATASETS = ('flowers', 'clothing', 'sports100', 'eggs', 'anime', 'grocery')

def ours(a) -> dict:
    "One `train` run; wall seconds from process start (imports included)."
    from cnn_course.train import train
    kw = json.loads(a.kw)
    t = train(a.dataset, a.arch, data=Path(a.root)/a.dataset, **kw)
    wall = time.perf_counter() - T0
    return dict(kw=kw, arch=a.arch, wall_s=round(wall, 1), test_accuracy=round(t.metrics['test_accuracy'], 4),
                test_accuracy_tta=round(t.metrics.get('test_accuracy_tta', float('nan')), 4) if 'test_accuracy_tta' in t.metrics else None,
                valid_accuracy=round(t.metrics['valid_accuracy'], 4), phases=t.meta['seconds'], lr=t.meta['lr'])

def plain_fastai(a) -> dict:
    import timm
    from fastai.vision.all import vision_learner, accuracy
    from cnn_course.backbones import get_backbone
    from cnn_course.data import get_dls, get_test_dl
    from cnn_course.weights import resolve_weights
    def arch(pretrained=True):
        m = timm.create_model(get_backbone(a.arch).model)
        m.load_state_dict(resolve_weights(a.arch)[0], strict=False)  # the classifier's keys are not in the body weights
        return m
    b, data = get_backbone(a.arch), Path(a.root)/'flowers'
    dls = get_dls('flowers', data, size=224, bs=64, stats=(b.mean, b.std))
    test_dl = get_test_dl(dls, 'flowers', data)
    learn = vision_learner(dls, arch, metrics=accuracy)
    learn.remove_cb(learn.progress)
    # fastai's `Learner.fine_tune(epochs, base_lr=2e-3, freeze_epochs=1)`, written out phase by phase (the same calls),
    # so test accuracy can be measured between phases (not counted against fastai) and the run stops at the target.
    base_lr, log, paused = 2e-3, [], 0.0
    phases = [('frozen', lambda: (learn.freeze(), learn.fit_one_cycle(1, slice(base_lr), pct_start=0.99)))]
    if a.fastai_epochs:
        phases += [('unfrozen', lambda: (learn.unfreeze(), learn.fit_one_cycle(a.fastai_epochs, slice(base_lr/2/100, base_lr/2),
                                                                                pct_start=0.3, div=5.0)))]
    for name, fit in phases:
        fit()
        t = time.perf_counter()
        preds, targs = learn.get_preds(dl=test_dl)
        log.append(dict(phase=name, wall_s=round(t - T0 - paused, 1), test_accuracy=round(float((preds.argmax(1) == targs).float().mean()), 4)))
        paused += time.perf_counter() - t
        if log[-1]['test_accuracy'] >= a.target: break
    hit = next((e for e in log if e['test_accuracy'] >= a.target), None)
    note = None if a.fastai_epochs else 'unfrozen epochs not run (--fastai-epochs 0): about 400 s more per epoch; earlier runs: 0.887 after one, ~860 s in all'
    return dict(side='plain fastai', recipe=f'vision_learner + fine_tune({a.fastai_epochs}, freeze_epochs=1)', epochs=log,
                test_accuracy=log[-1]['test_accuracy'], reached=hit is not None, seconds_to_target=hit and hit['wall_s'], note=note)

def sub(a, side, home, dataset='flowers', arch=None, **kw) -> dict:
    "Run one side in a fresh process with course home `home`."
    env = {**os.environ, 'CNN_COURSE_HOME': str(home)}
    cmd = [sys.executable, __file__, '--root', a.root, '--side', side, '--dataset', dataset, '--arch', arch or a.arch,
           '--kw', json.dumps(kw), '--fastai-epochs', str(a.fastai_epochs), '--target', str(a.target)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode: return dict(error=out.stderr[-2000:])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(dataset, side, kw, json.dumps(r)[:300], file=sys.stderr, flush=True)
    return r

def median_run(runs:list) -> dict:
    "The run of median wall time (the lower middle one of an even count), with every run's seconds beside it."
    bad = [r for r in runs if 'error' in r]
    if bad: return bad[0]
    walls = [r['wall_s'] for r in runs]
    return dict(sorted(runs, key=lambda r: r['wall_s'])[(len(runs) - 1) // 2], wall_s_runs=walls)

def flowers(a, tmp) -> dict:
    fast = dict(size=a.fast_size, bs=a.fast_bs, top_epochs=0)  # the head alone: the fastest recipe that clears 0.85
    # one run's seconds move by 10% with the hour on 2 shared cores: the median of --repeats (cold, warm) pairs decides
    pairs = [(sub(a, 'ours', tmp/f'fast{i}', **fast), sub(a, 'ours', tmp/f'fast{i}', **fast)) for i in range(a.repeats)]
    cold, warm = median_run([c for c, _ in pairs]), median_run([w for _, w in pairs])
    best = sub(a, 'ours', tmp/'best', arch=a.best_arch, **json.loads(a.best_kw))
    ok = lambda r, acc, s: 'error' not in r and r['test_accuracy'] >= acc and r['wall_s'] <= s
    return dict(cold_085=dict(target='>= 0.85 in <= 40 s, empty cache (median of the repeats)', passed=ok(cold, 0.85, 40), **cold),
                warm_085=dict(target='>= 0.85 in <= 10 s, cache left by the cold run (median of the repeats)', passed=ok(warm, 0.85, 10), **warm),
                cold_093=dict(target='>= 0.93 in <= 300 s, empty cache', passed=ok(best, 0.93, 300)
                              or ('error' not in best and best.get('test_accuracy_tta', 0) >= 0.93 and best['wall_s'] <= 300), **best))

def _mean(xs): return round(sum(xs) / len(xs), 4)

def table(a, tmp) -> list:
    "Head only, then head + top-stage fine-tuning, for each dataset and seed; the first seed's head-only run is cold."
    rows = []
    for ds in a.datasets:
        # one seed decides by a photo or two: fine-tuning "helps" when its mean over the seeds is higher
        runs = [(sub(a, 'ours', tmp/ds, ds, tta=True, top_epochs=0, seed=s),  # the head alone (lite0's recipe fine-tunes)
                 sub(a, 'ours', tmp/ds, ds, tta=True, top_epochs=a.top_epochs, seed=s)) for s in a.seeds]  # maps cached by then
        failed = [(h, f) for h, f in runs if 'error' in h or 'error' in f]
        if failed: rows.append(dict(dataset=ds, head=failed[0][0], finetune=failed[0][1])); continue
        acc = lambda i, k: [r[i][k] for r in runs]
        h0, f0 = runs[0]
        rows.append(dict(dataset=ds, seeds=list(a.seeds), head_only=_mean(acc(0, 'test_accuracy')), head_tta=_mean(acc(0, 'test_accuracy_tta')),
                         finetuned=_mean(acc(1, 'test_accuracy')), finetuned_tta=_mean(acc(1, 'test_accuracy_tta')),
                         head_only_per_seed=acc(0, 'test_accuracy'), finetuned_per_seed=acc(1, 'test_accuracy'),
                         head_wall_s=h0['wall_s'], finetune_s=f0['phases'].get('top'), finetuned_wall_warm_s=f0['wall_s'],
                         finetune_helps=_mean(acc(1, 'test_accuracy')) > _mean(acc(0, 'test_accuracy')), lr=h0['lr']))
    return rows

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--root', default=os.environ.get('CNN_COURSE_DATA'))
    p.add_argument('--arch', default='tf_efficientnet_lite0')
    p.add_argument('--fast-size', type=int, default=128, help='image size of the >= 0.85 run')
    p.add_argument('--fast-bs', type=int, default=256, help="the head's batch size in the >= 0.85 run (fewer fastai steps per epoch)")
    p.add_argument('--best-arch', default='tf_efficientnet_lite0'); p.add_argument('--best-kw', default='{"tta": true, "top_epochs": 2}')
    p.add_argument('--top-epochs', type=int, default=2); p.add_argument('--datasets', nargs='*', default=list(DATASETS))
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 0, 1], help='seeds of the table (its numbers are means over them)')
    p.add_argument('--repeats', type=int, default=3, help='(cold, warm) pairs of the >= 0.85 run; their median seconds decide')
    p.add_argument('--target', type=float, default=0.85)
    p.add_argument('--fastai-epochs', type=int, default=0, help='unfrozen epochs of plain fastai (0: its frozen epoch only)')
    p.add_argument('--skip', nargs='*', default=[], choices=['flowers', 'fastai', 'table'])
    p.add_argument('--out', type=Path, default=Path(__file__).parent/'results'/'time_to_accuracy.json')
    p.add_argument('--side', help=argparse.SUPPRESS); p.add_argument('--dataset', default='flowers', help=argparse.SUPPRESS)
    p.add_argument('--kw', default='{}', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.root is None: sys.exit('error: give --root PATH (the folder of the datasets) or set CNN_COURSE_DATA')
    if a.side: return print(json.dumps(ours(a) if a.side == 'ours' else plain_fastai(a)))
    res = dict(machine=dict(cpus=os.cpu_count(), loadavg_before=os.getloadavg()), arch=a.arch, started=time.strftime('%Y-%m-%d %H:%M:%S'))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        old = json.loads(a.out.read_text()) if a.out.exists() else {}
        if 'table' not in a.skip:
            res['table'] = table(a, tmp)
            res['finetune_helps_on'] = sum(bool(r.get('finetune_helps')) for r in res['table'])
        elif 'table' in old:  # keep the last measured table, dated
            res.update(table=old['table'], finetune_helps_on=old.get('finetune_helps_on'), table_measured=old.get('table_measured', old.get('started')))
        if 'fastai' not in a.skip: res['plain_fastai'] = sub(a, 'fastai', tmp/'fastai')
        elif 'plain_fastai' in old: res['plain_fastai'] = {'measured': old.get('started'), **old['plain_fastai']}
        res['machine']['loadavg_before_flowers'] = os.getloadavg()  # the timed flowers runs come last: the quietest machine
        if 'flowers' not in a.skip: res['flowers'] = flowers(a, tmp)
        elif 'flowers' in old: res['flowers'] = {'measured': old.get('started'), **old['flowers']}
    res['machine']['loadavg_after'] = os.getloadavg(); res['wall_s'] = round(time.perf_counter() - T0, 1)
    text = json.dumps(res, indent=2)
    a.out.parent.mkdir(parents=True, exist_ok=True); a.out.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
