"""What augmentation through the feature cache buys: fastai's `vision_learner` + `CachedBody` on flowers, clothing and
eggs, the training photos' random transforms either not applied (`views=0`, centre crops) or applied to K cached views.

  python bench/augment_cache.py [--root $CNN_COURSE_DATA] [--views 3] [--epochs 12] [--out bench/results/augment_cache.json]
  python bench/augment_cache.py --small   # generated shapes, seconds: what CI runs so that the script cannot rot

Each run is its own process with its own empty course home (a cold cache), on the same seed, split, size and
`aug_transforms` family as the dataset's registry entry; `lr_find`'s valley is the rate, then `fit_one_cycle(--epochs)`
on the frozen body. Validation and test accuracy are fastai's `accuracy` (`learner.test_accuracy`) over every photo;
seconds are wall seconds of the phases the learner records (`features` includes the K extra passes).
"""
import argparse, json, os, sys, time
from pathlib import Path
from _cold import cold_run, out_file  # this folder
T0 = time.perf_counter()
DATASETS = ('flowers', 'clothing', 'eggs')

def one(a) -> dict:
    "One run in this process: `vision_learner(..., cbs=CachedBody(views=a.views))`, lr_find, fit_one_cycle, accuracies."
    from fastai.vision.all import accuracy, set_seed, vision_learner
    from cnn_course.data.loaders import get_block, split_items
    from cnn_course.data.fetch import make_shapes
    from cnn_course.training.learner import CachedBody, test_accuracy
    from cnn_course.training.history import seconds
    from cnn_course.models.weights import install_timm_weights
    install_timm_weights(['tf_efficientnet_lite0'])
    name, path, size = (a.dataset, Path(a.root)/a.dataset, 224) if not a.small else ('shapes', None, 64)
    if a.small: path = make_shapes(Path(os.environ['CNN_COURSE_HOME'])/'shapes', n_classes=3, size=64, n_per_class=30, seed=0)
    set_seed(42, reproducible=True)
    items = split_items(name, path)
    dls = get_block(name, items['valid'], size=size).dataloaders(items['train'] + items['valid'], bs=64 if not a.small else 16,
                                                                 num_workers=0)
    learn = vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy, cbs=CachedBody(views=a.views))
    learn.remove_cb(learn.progress); learn.logger = lambda *_: None
    lr = float(learn.lr_find(show_plot=False).valley)
    learn.fit_one_cycle(a.epochs, lr)
    test = dls.test_dl(items['test'], with_labels=True)
    return dict(dataset=a.dataset if not a.small else 'shapes', views=a.views, epochs=a.epochs, lr=lr,
                augmentation=[n for n in learn.cached_body.notice().splitlines() if n.startswith('augmentation')][0],
                valid_accuracy=round(float(learn.history.accuracy.iloc[-1]), 4), n_valid=len(items['valid']),
                test_accuracy=round(test_accuracy(learn, test), 4), n_test=len(items['test']),
                seconds={k: round(v, 1) for k, v in seconds(learn).items()}, wall_s=round(time.perf_counter() - T0, 1))

def spawn(a, dataset, views) -> dict:
    "`one` in a fresh process with an empty course home."
    return cold_run(__file__, ['--dataset', dataset, '--views', views, '--epochs', a.epochs, '--root', a.root]
                    + (['--small'] if a.small else []), f'{dataset} views={views}')

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default=os.environ.get('CNN_COURSE_DATA', '../shared/data'))
    p.add_argument('--views', type=int, default=3); p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--small', action='store_true'); p.add_argument('--one', action='store_true'); p.add_argument('--dataset')
    p.add_argument('--out', default=None)
    a = p.parse_args()
    if a.one: return print(json.dumps(one(a)))
    dest = out_file(a.out, a.small)  # before any work: a refused --out costs nothing
    if a.small: a.epochs = min(a.epochs, 2)
    load0, runs = os.getloadavg(), []
    for d in (['shapes'] if a.small else DATASETS):
        pair = [spawn(a, d, 0), spawn(a, d, a.views)]
        runs += pair
        print(json.dumps(dict(dataset=d, **{f'views={r["views"]}': (r['valid_accuracy'], r['test_accuracy'], r['seconds'].get('features'))
                                             for r in pair})), file=sys.stderr)
    out = dict(bench='augment_cache', date=time.strftime('%Y-%m-%d %H:%M'), cores=os.cpu_count(), load_before=load0,
               load_after=os.getloadavg(), arch='tf_efficientnet_lite0', runs=runs,
               gain={r['dataset']: dict(valid=round(v['valid_accuracy'] - r['valid_accuracy'], 4),
                                       test=round(v['test_accuracy'] - r['test_accuracy'], 4),
                                       extra_feature_s=round(v['seconds'].get('features', 0) - r['seconds'].get('features', 0), 1))
                     for r, v in zip(runs[::2], runs[1::2])})
    text = json.dumps(out, indent=1)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
