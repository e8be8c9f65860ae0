"""Fine-tuning re-measured fairly: fastai's own `fine_tune` (whole body unfrozen, batch norm in training mode, its default
rates) against the cached top-stage recipe (`freeze_to(-2)` on cached maps), both after the same frozen head epochs.

  python bench/fine_tune.py [--root $CNN_COURSE_DATA] [--size 160] [--out bench/results/fine_tune.json]
  python bench/fine_tune.py --small   # generated shapes, seconds: what CI runs so that the script cannot rot

Every run is its own process with an empty course home, on eggs and flowers, seeds 42, 0 and 1, at `--size` (a size a
CPU can afford for whole-body epochs). Each run: `vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy,
splitter=param_groups, cbs=CachedBody())`, `lr_find`'s valley, `--freeze-epochs` frozen epochs on cached features, then
    head:      nothing more;
    top:       `freeze_to(-2)`, `fit_one_cycle(2, slice(lr/100, lr/10))` on cached lower-body maps;
    fine_tune: `fine_tune`'s second phase exactly: `unfreeze()`, `fit_one_cycle(1, slice(lr/2/100, lr/2), pct_start=0.3, div=5)`.
Valid accuracy (the split to choose by) and test accuracy with its 95% interval are reported per seed and as means.
"""
import argparse, json, math, os, sys, time
from pathlib import Path
from _cold import cold_run, out_file  # this folder
T0 = time.perf_counter()
DATASETS, RECIPES, SEEDS = ('eggs', 'flowers'), ('head', 'top', 'fine_tune'), (42, 0, 1)

def one(a) -> dict:
    from fastai.vision.all import accuracy, set_seed, vision_learner
    from cnn_course.data.loaders import get_block, split_items
    from cnn_course.data.fetch import make_shapes
    from cnn_course.training.learner import CachedBody, test_accuracy
    from cnn_course.models.classifier import param_groups
    from cnn_course.training.history import seconds
    from cnn_course.models.weights import install_timm_weights
    install_timm_weights(['tf_efficientnet_lite0'])
    name, path = (a.dataset, Path(a.root)/a.dataset) if not a.small else ('shapes', None)
    if a.small: path = make_shapes(Path(os.environ['CNN_COURSE_HOME'])/'shapes', n_classes=3, size=a.size, n_per_class=20, seed=0)
    set_seed(a.seed, reproducible=True)
    items = split_items(name, path)
    dls = get_block(name, items['valid'], size=a.size).dataloaders(items['train'] + items['valid'], bs=16 if a.small else 32, num_workers=0)
    learn = vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy, splitter=param_groups, cbs=CachedBody())
    learn.remove_cb(learn.progress); learn.logger = lambda *_: None
    lr = float(learn.lr_find(show_plot=False).valley)
    learn.fit_one_cycle(a.freeze_epochs, lr, pct_start=0.99)  # `fine_tune`'s frozen phase
    if a.recipe == 'top': learn.freeze_to(-2); learn.fit_one_cycle(2, slice(lr/100, lr/10))
    if a.recipe == 'fine_tune': learn.unfreeze(); learn.fit_one_cycle(1, slice(lr/2/100, lr/2), pct_start=0.3, div=5.0)
    acc, n = test_accuracy(learn, dls.test_dl(items['test'], with_labels=True)), len(items['test'])
    half = 1.96*math.sqrt(max(acc*(1-acc), 1e-9)/n)
    return dict(dataset=a.dataset, recipe=a.recipe, seed=a.seed, size=a.size, lr=lr,
                valid_accuracy=round(float(learn.history.accuracy.iloc[-1]), 4),
                test_accuracy=round(acc, 4), test_interval=[round(acc - half, 4), round(acc + half, 4)], n_test=n,
                seconds={k: round(v, 1) for k, v in seconds(learn).items()}, wall_s=round(time.perf_counter() - T0, 1))

def spawn(a, dataset, recipe, seed) -> dict:
    return cold_run(__file__, ['--dataset', dataset, '--recipe', recipe, '--seed', seed, '--size', a.size, '--freeze-epochs',
                               a.freeze_epochs, '--root', a.root] + (['--small'] if a.small else []), f'{dataset} {recipe} seed {seed}')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=os.environ.get('CNN_COURSE_DATA', '../shared/data'))
    p.add_argument('--size', type=int, default=160); p.add_argument('--freeze-epochs', type=int, default=10)
    p.add_argument('--small', action='store_true'); p.add_argument('--one', action='store_true')
    p.add_argument('--dataset'); p.add_argument('--recipe'); p.add_argument('--seed', type=int, default=42)
    p.add_argument('--seeds', type=int, nargs='+', default=list(SEEDS)); p.add_argument('--out', default=None)
    a = p.parse_args()
    if a.one: return print(json.dumps(one(a)))
    dest = out_file(a.out, a.small)  # before any work: a refused --out costs nothing
    if a.small: a.size, a.freeze_epochs, a.seeds = 64, 2, a.seeds[:1]
    load0, runs = os.getloadavg(), []
    for d in (['shapes'] if a.small else DATASETS):
        for rec in RECIPES:
            for s in a.seeds:
                runs.append(spawn(a, d, rec, s))
                keys = ('dataset', 'recipe', 'seed', 'valid_accuracy', 'test_accuracy', 'wall_s')
                print(json.dumps({k: runs[-1][k] for k in keys}), file=sys.stderr)
    mean = lambda xs: round(sum(xs)/len(xs), 4)
    summary = {f"{d}/{rec}": dict(valid=mean([r['valid_accuracy'] for r in rs]), test=mean([r['test_accuracy'] for r in rs]),
                                  seconds=mean([sum(r['seconds'].values()) for r in rs]), n_test=rs[0]['n_test'])
               for d in dict.fromkeys(r['dataset'] for r in runs) for rec in RECIPES
               for rs in [[r for r in runs if r['dataset'] == d and r['recipe'] == rec]]}
    out = dict(bench='fine_tune', date=time.strftime('%Y-%m-%d %H:%M'), cores=os.cpu_count(), load_before=load0,
               load_after=os.getloadavg(), arch='tf_efficientnet_lite0', size=a.size, freeze_epochs=a.freeze_epochs,
               seeds=a.seeds, summary=summary, runs=runs)
    text = json.dumps(out, indent=1)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
