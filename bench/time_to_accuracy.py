"""Wall seconds to test accuracy on flowers (cold and warm feature cache), plain fastai side by side, and a table of
head only / head + top-block fine-tuning / TTA over the six photo datasets.

  python bench/time_to_accuracy.py [--root $CNN_COURSE_DATA] [--out bench/results/time_to_accuracy.json]
  python bench/time_to_accuracy.py --small [--out FILE]
      # generated shapes, one seed, one repeat: what CI runs so that the script cannot rot
Every measured run is its own process (wall time includes `import`), with its own course home: 'cold' starts with an
empty feature cache, 'warm' repeats the same run on the cache the cold run left; the >= 0.85 pair runs
`--repeats` times (3), and the median seconds decide. Plain fastai is
`vision_learner(dls, arch)` with fastai's cut and head, the same pretrained weights, data and size; its frozen epoch
(`fine_tune`'s first phase) is timed, then its unfrozen epochs if `--fastai-epochs` > 0. Evaluation time is not counted
against fastai. The table's accuracies are means over `--seeds` (one seed moves them by a photo or two); its seconds
are the first seed's. 'ensemble' (one process, empty cache, timed from its start): Lite0, Lite1 and Lite2 at their
own sizes through the course's feature cache, a course head on each, one on the three concatenated, and the mean of the
three heads' probabilities; the combination of best valid accuracy (ties: the cheaper) reports its test accuracy, and
every combination's valid and test accuracies are recorded. 'busy': the >= 0.85 run quiet, then while another process
keeps one core busy, then busy again with a thread per core (how every pass ran before it counted the free cores). A
section left out with `--skip` keeps its last measured result, dated. The JSON records the load average before and
after, since 2 shared cores make every second noisy. `--small` runs every section on generated shapes standing in for
each dataset (64 px, offline), and writes only to an --out given, never bench/results.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
from _cold import out_file  # this folder
T0 = time.perf_counter()
DATASETS = ('flowers', 'clothing', 'sports100', 'eggs', 'anime', 'grocery')

def ours(a) -> dict:
    "One `train` run; wall seconds from process start (imports included)."
    from cnn_course.training.recipes import train
    kw = json.loads(a.kw)
    t = train(a.dataset, a.arch, data=Path(a.root)/a.dataset, **kw)
    wall = time.perf_counter() - T0
    return dict(kw=kw, arch=a.arch, wall_s=round(wall, 1), test_accuracy=round(t.metrics['test_accuracy'], 4),
                test_accuracy_tta=round(t.metrics.get('test_accuracy_tta', float('nan')), 4) if 'test_accuracy_tta' in t.metrics else None,
                valid_accuracy=round(t.metrics['valid_accuracy'], 4), phases=t.meta['seconds'], lr=t.meta['lr'])

def plain_fastai(a) -> dict:
    import timm
    from fastai.vision.all import vision_learner, accuracy
    from cnn_course.models.backbones import get_backbone
    from cnn_course.data.loaders import get_dls, get_test_dl
    from cnn_course.models.weights import resolve_weights
    def arch(pretrained=True):
        m = timm.create_model(get_backbone(a.arch).model)
        m.load_state_dict(resolve_weights(a.arch)[0], strict=False)  # the classifier's keys are not in the body weights
        return m
    b, data, size = get_backbone(a.arch), Path(a.root)/a.dataset, 64 if a.small else 224
    dls = get_dls(a.dataset, data, size=size, bs=16 if a.small else 64, stats=(b.mean, b.std))
    test_dl = get_test_dl(dls, a.dataset, data)
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
        log.append(dict(phase=name, wall_s=round(t - T0 - paused, 1),
                        test_accuracy=round(float((preds.argmax(1) == targs).float().mean()), 4)))
        paused += time.perf_counter() - t
        if log[-1]['test_accuracy'] >= a.target: break
    hit = next((e for e in log if e['test_accuracy'] >= a.target), None)
    note = None if a.fastai_epochs else ('unfrozen epochs not run (--fastai-epochs 0): about 400 s more per epoch; '
                                         'earlier runs: 0.887 after one, ~860 s in all')
    return dict(side='plain fastai', recipe=f'vision_learner + fine_tune({a.fastai_epochs}, freeze_epochs=1)', epochs=log,
                test_accuracy=log[-1]['test_accuracy'], reached=hit is not None, seconds_to_target=hit and hit['wall_s'], note=note)

ENSEMBLE = ('tf_efficientnet_lite0', 'tf_efficientnet_lite1', 'tf_efficientnet_lite2')  # cheapest first: ties go to it

def _head_probs(r, xt, yt, x_eval:list, n:int, seed:int) -> tuple:
    "The course's head-only fit (recipe `r`: lr_find's suggestion, one-cycle, best valid loss kept) on features; its probabilities."
    import torch
    from fastai.vision.all import CrossEntropyLossFlat, DataLoaders, Learner, accuracy, set_seed
    from torch.utils.data import TensorDataset
    from cnn_course.models.classifier import create_head
    from cnn_course.training.features import TensorDL, quiet
    from cnn_course.training.lr_finder import find_lr
    from cnn_course.training.recipes import callbacks
    from cnn_course.inference.outputs import outputs
    set_seed(seed, reproducible=True)
    head = create_head(xt.shape[1], n, r.head)[2:]  # the pooling is done: batch norm, dropout, linear
    dls = DataLoaders(TensorDL(TensorDataset(xt, yt), bs=r.bs, shuffle=True, drop_last=len(xt) > r.bs),
                      TensorDL(TensorDataset(*x_eval[0]), bs=512), device='cpu')
    learn = quiet(Learner(dls, head, loss_func=CrossEntropyLossFlat(label_smoothing=r.label_smoothing), wd=r.wd, metrics=accuracy))
    threads = torch.get_num_threads(); torch.set_num_threads(1)  # as `CachedBody`: a small head runs faster on one thread
    try:
        lr = r.lr or find_lr(learn).suggestions[r.suggest]
        learn.fit_one_cycle(r.freeze_epochs, lr, pct_start=0.99, cbs=callbacks(r))
    finally: torch.set_num_threads(threads)
    return [outputs(head, [x]).softmax(1) for x, _ in x_eval], float(f'{lr:.3g}')

def ensemble(a) -> dict:
    "Lite0, Lite1, Lite2 heads on cached features, their concatenation and their mean: the one of best valid accuracy reports test."
    import torch
    from cnn_course.data.loaders import get_test_dl
    from cnn_course.inference.outputs import eval_dl
    from cnn_course.models.backbones import get_backbone
    from cnn_course.training.features import feature_dls, pooled_features
    from cnn_course.training.recipes import prepare
    kw, data = json.loads(a.kw), Path(a.root)/a.dataset
    flip, seed = kw.pop('flip', False), kw.pop('seed', 42)
    feats, backbones, r = {}, {}, None
    for arch in ENSEMBLE:
        t = time.perf_counter()
        size = kw.get('size') or get_backbone(arch).size  # each at its native size (64 px in --small)
        learn = prepare(a.dataset, arch, data, seed=seed, size=size, top_epochs=0, **{k: v for k, v in kw.items() if k != 'size'})
        r, t1 = learn.recipe, time.perf_counter()
        fdls = feature_dls(learn, r.bs)  # train (centre crops) and valid, through the persistent feature cache
        (xt, yt), (xv, yv) = fdls.train.dataset.tensors, fdls.valid.dataset.tensors
        xs, ys = pooled_features(learn.model, eval_dl(get_test_dl(learn.dls, a.dataset, data)))
        if flip:  # mirrored training photos: one more pass, cached too
            xf, yf = pooled_features(learn.model, eval_dl(learn.dls.test_dl(learn.dls.train.items, with_labels=True)), flip=True)
            xt, yt = torch.cat([xt, xf]), torch.cat([yt, yf])
        feats[arch] = (xt, yt), (xv, yv), (xs, ys)
        backbones[arch] = dict(size=size, prepare_s=round(t1 - t, 1), features_s=round(time.perf_counter() - t1, 1))
    labels = [tuple(s[1] for s in f) for f in feats.values()]
    assert all(all(torch.equal(u, v) for u, v in zip(labels[0], x)) for x in labels[1:]), 'the backbones saw different photos'
    (_, yt), (_, yv), (_, ys) = feats[ENSEMBLE[0]]
    n = len(learn.dls.vocab)
    probs = {}
    for arch, ((xt, _), (xv, _), (xs, _)) in feats.items():
        t = time.perf_counter()
        probs[arch], backbones[arch]['lr'] = _head_probs(r, xt, yt, [(xv, yv), (xs, ys)], n, seed)
        backbones[arch]['head_s'] = round(time.perf_counter() - t, 1)
    cat = [torch.cat([f[i][0] for f in feats.values()], 1) for i in range(3)]
    t = time.perf_counter()
    probs['concat'], lr = _head_probs(r, cat[0], yt, [(cat[1], yv), (cat[2], ys)], n, seed)
    concat_s = round(time.perf_counter() - t, 1)
    probs['mean'] = [sum(probs[arch][i] for arch in ENSEMBLE) / len(ENSEMBLE) for i in range(2)]
    acc = lambda p, y: round(float((p.argmax(1) == y).float().mean()), 4)
    combos = {k: dict(valid_accuracy=acc(pv, yv), test_accuracy=acc(ps, ys)) for k, (pv, ps) in probs.items()}
    combos['concat'].update(lr=lr, head_s=concat_s)
    # chosen on valid alone; a tie goes to the cheaper: one backbone (the smallest first), then one head over three
    chosen = max(combos, key=lambda k: (combos[k]['valid_accuracy'], -list(combos).index(k)))
    wall = round(time.perf_counter() - T0, 1)
    c = combos[chosen]
    return dict(target='>= 0.93 test in <= 300 s, combination chosen on valid', passed=c['test_accuracy'] >= 0.93 and wall <= 300,
                chosen=chosen, valid_accuracy=c['valid_accuracy'], test_accuracy=c['test_accuracy'], wall_s=wall,
                best_test_any=max(x['test_accuracy'] for x in combos.values()), combinations=combos, backbones=backbones,
                mirrored_train=flip, seed=seed, photos=dict(train=len(yt) // (1 + flip), valid=len(yv), test=len(ys)),
                head=f'course head ({r.head}), lr_find {r.suggest} + fit_one_cycle({r.freeze_epochs}), best valid loss kept')

def sub(a, side, home, dataset=None, arch=None, env=None, **kw) -> dict:
    "Run one side in a fresh process with course home `home`, on `dataset` (default: the flowers, or their small stand-in)."
    env = {**os.environ, 'CNN_COURSE_HOME': str(home), **(env or {})}
    if a.small: kw, dataset, env['CNN_COURSE_OFFLINE'] = {**kw, 'size': 64, 'bs': 16}, 'shapes', '1'  # every side on the stand-in
    cmd = [sys.executable, __file__, '--root', a.root, '--side', side, '--dataset', dataset or 'flowers', '--arch', arch or a.arch,
           '--kw', json.dumps(kw), '--fastai-epochs', str(a.fastai_epochs), '--target', str(a.target)] + (['--small'] if a.small else [])
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
                warm_085=dict(target='>= 0.85 in <= 10 s, cache left by the cold run (median of the repeats)',
                              passed=ok(warm, 0.85, 10), **warm),
                cold_093=dict(target='>= 0.93 in <= 300 s, empty cache', passed=ok(best, 0.93, 300)
                              or ('error' not in best and best.get('test_accuracy_tta', 0) >= 0.93 and best['wall_s'] <= 300), **best))

def _spinning(run):
    "`run()` while another process keeps one core busy (a browser, a kernel: what a learner's laptop runs beside us)."
    spin = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try: time.sleep(1); return run()
    finally: spin.kill(); spin.wait()

def busy(a, tmp) -> dict:
    """The >= 0.85 flowers run (the head alone, 128 px, empty cache) quiet, then with one core kept busy, in one run; and,
    busy again, with as many threads as cores (`$CNN_COURSE_THREADS`), as every pass ran before it counted free cores."""
    fast = dict(size=a.fast_size, bs=a.fast_bs, top_epochs=0)
    quiet = sub(a, 'ours', tmp/'busy_quiet', **fast)
    loaded = _spinning(lambda: sub(a, 'ours', tmp/'busy_loaded', **fast))
    every = _spinning(lambda: sub(a, 'ours', tmp/'busy_every', env={'CNN_COURSE_THREADS': str(os.cpu_count())}, **fast))
    if any('error' in r for r in (quiet, loaded, every)): return dict(quiet=quiet, one_core_busy=loaded, every_core_threads=every)
    ratio = round(loaded['wall_s'] / quiet['wall_s'], 2)
    return dict(target='one core kept busy by another process: at most 2x the quiet wall time', passed=ratio <= 2, slowdown=ratio,
                slowdown_every_core_threads=round(every['wall_s'] / quiet['wall_s'], 2),
                quiet=quiet, one_core_busy=loaded, every_core_threads=every)

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
        rows.append(dict(dataset=ds, seeds=list(a.seeds), head_only=_mean(acc(0, 'test_accuracy')),
                         head_tta=_mean(acc(0, 'test_accuracy_tta')),
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
    p.add_argument('--ensemble-flip', action='store_true',
                   help="the ensemble's heads also train on mirrored training photos (one more feature pass per backbone)")
    p.add_argument('--skip', nargs='*', default=[], choices=['flowers', 'fastai', 'table', 'ensemble', 'busy'])
    p.add_argument('--out', type=Path, help='write the JSON here (default: bench/results/time_to_accuracy.json, none for --small)')
    p.add_argument('--small', action='store_true',
                   help='generated shapes for every dataset, one seed, one repeat: the code path, not the speed')
    p.add_argument('--side', help=argparse.SUPPRESS); p.add_argument('--dataset', default='flowers', help=argparse.SUPPRESS)
    p.add_argument('--kw', default='{}', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.side: return print(json.dumps(dict(ours=ours, fastai=plain_fastai, ensemble=ensemble)[a.side](a)))
    if a.root is None and not a.small:
        sys.exit('error: give --root PATH (the folder of the datasets) or set CNN_COURSE_DATA, or run --small')
    out = out_file(a.out, a.small, 'time_to_accuracy.json')
    if a.small: a.datasets, a.seeds, a.repeats, a.top_epochs, a.best_kw = ['shapes'], a.seeds[:1], 1, 1, '{"tta": true, "top_epochs": 1}'
    res = dict(machine=dict(cpus=os.cpu_count(), loadavg_before=os.getloadavg()), arch=a.arch, small=a.small,
               started=time.strftime('%Y-%m-%d %H:%M:%S'))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if a.small:
            from cnn_course.data.shapes import make_shapes
            a.root = str(tmp/'data'); make_shapes(tmp/'data'/'shapes', n_classes=3, size=64, n_per_class=20, seed=0)
        old = json.loads(out.read_text()) if out and out.exists() else {}
        if 'table' not in a.skip:
            res['table'] = table(a, tmp)
            res['finetune_helps_on'] = sum(bool(r.get('finetune_helps')) for r in res['table'])
        elif 'table' in old:  # keep the last measured table, dated
            res.update(table=old['table'], finetune_helps_on=old.get('finetune_helps_on'),
                       table_measured=old.get('table_measured', old.get('started')))
        if 'fastai' not in a.skip: res['plain_fastai'] = sub(a, 'fastai', tmp/'fastai')
        elif 'plain_fastai' in old: res['plain_fastai'] = {'measured': old.get('started'), **old['plain_fastai']}
        res['machine']['loadavg_before_flowers'] = os.getloadavg()  # the timed flowers runs come last: the quietest machine
        if 'flowers' not in a.skip: res['flowers'] = flowers(a, tmp)
        elif 'flowers' in old: res['flowers'] = {'measured': old.get('started'), **old['flowers']}
        res['machine']['loadavg_before_ensemble'] = os.getloadavg()
        if 'ensemble' not in a.skip: res['ensemble'] = sub(a, 'ensemble', tmp/'ensemble', flip=a.ensemble_flip)  # an empty cache
        elif 'ensemble' in old: res['ensemble'] = {'measured': old.get('started'), **old['ensemble']}
        res['machine']['loadavg_before_busy'] = os.getloadavg()
        if 'busy' not in a.skip: res['busy'] = busy(a, tmp)
        elif 'busy' in old: res['busy'] = {'measured': old.get('started'), **old['busy']}
    res['machine']['loadavg_after'] = os.getloadavg(); res['wall_s'] = round(time.perf_counter() - T0, 1)
    text = json.dumps(res, indent=2)
    if out: out.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
