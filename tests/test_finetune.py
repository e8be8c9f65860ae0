"The persistent feature cache and top-block fine-tuning through `train`, on small generated images."
import os
from pathlib import Path
import pytest, torch
from cnn_course.inference import feature_cache as featcache
from cnn_course.data.loaders import get_test_dl
from cnn_course.data.fetch import make_shapes
from cnn_course.training.features import image_predictions
from cnn_course.models.classifier import create_model
from cnn_course.inference.runs import load_run
from cnn_course.training.recipes import prepare, train

pytestmark = pytest.mark.usefixtures('offline_home')  # every test: a fresh, offline course home

@pytest.fixture()
def shapes(tmp_path):
    return make_shapes(tmp_path/'data'/'shapes', n_classes=3, size=40, n_per_class=16, seed=0)

def _computes(monkeypatch):
    "Count the passes over photos (cache misses): the lower body's maps and the whole body's pooled features."
    from cnn_course.training import features
    from cnn_course.training import top_stage as finetune
    calls, acts, run = [], finetune._acts, features._run
    monkeypatch.setattr(finetune, '_acts', lambda *a: calls.append(1) or acts(*a))
    monkeypatch.setattr(features, '_run', lambda *a: calls.append(1) or run(*a))
    return calls

def cached(*args, **kw):
    "The learner `train` would fit, after `CachedBody` cached its features (a fit of no epochs)."
    learn = prepare(*args, **kw); learn.fit(0); return learn

def test_cache_hits_then_invalidates_on_mtime_and_weights(shapes, monkeypatch):
    calls = _computes(monkeypatch)
    cached('shapes', data=shapes, size=32); n = len(calls)  # the default recipe fine-tunes the top stage: maps first
    assert n == 2 and featcache.cache_info()['files'] == 4  # train and valid: maps and pooled features
    cached('shapes', data=shapes, size=32); assert len(calls) == n  # warm: nothing recomputed
    f = sorted((shapes/'train').rglob('*.png'))[0]; st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, new modification time
    cached('shapes', data=shapes, size=32); assert len(calls) == n + 1  # train only: valid files did not change
    learn = cached('shapes', data=shapes, size=40); assert len(calls) == n + 3  # other preprocessing
    from cnn_course.training.top_stage import activations
    top = learn.cached_body.top
    activations(top, learn.dls.valid); assert len(calls) == n + 3  # hit
    with torch.no_grad(): learn.model.body.model.conv_stem.weight.mul_(1.01)  # other weights
    activations(top, learn.dls.valid); assert len(calls) == n + 4
    cached("shapes", data=shapes, size=32, top_epochs=0); assert len(calls) == n + 6  # no top phase: no maps

def test_cache_is_size_bounded(shapes, monkeypatch):
    monkeypatch.setenv(featcache.SIZE_ENV, '0.01')  # 10 KiB: smaller than one split's maps
    cached('shapes', data=shapes, size=32)
    assert featcache.cache_info()['files'] == 1  # the newest file is kept, older ones evicted
    assert featcache.clear_cache() == 1 and featcache.cache_info()['files'] == 0

def test_top_finetuning_trains_the_top_only_and_saves_a_run_that_predicts_as_evaluated(shapes, tmp_path):
    pristine = create_model('tf_efficientnet_lite0', 3).state_dict()
    t = train('shapes', data=shapes, size=48, top_epochs=2, tta=True, out=tmp_path/'run')
    assert list(t.history.phase) == ['frozen']*20 + ['top']*2 and {'top', 'features'} <= set(t.meta['seconds'])
    sd = t.learn.model.state_dict()
    lower = [k for k in sd if k.startswith('0.model.') and not any(s in k for s in ('blocks.6', 'conv_head', 'bn2'))]
    assert lower and all(torch.equal(sd[k], pristine[k]) for k in lower)  # the cached lower body never changes
    assert not torch.equal(sd['0.model.blocks.6.0.conv_pw.weight'], pristine['0.model.blocks.6.0.conv_pw.weight'])
    test_dl = get_test_dl(t.learn.dls, 'shapes', shapes)
    p, y = image_predictions(t.learn.model, test_dl)  # the whole model on images, no cache
    assert abs(float((p.argmax(1) == y).float().mean()) - t.metrics['test_accuracy']) < 1e-6
    assert 0 <= t.metrics['test_accuracy_tta'] <= 1
    files = [Path(f) for f in test_dl.items]
    torch.testing.assert_close(load_run(tmp_path/'run').probabilities(files), p, atol=1e-4, rtol=1e-3)

def test_cache_cli_info_and_clear(shapes, capsys):
    import argparse, json
    p = argparse.ArgumentParser(); featcache.add_commands(p.add_subparsers())
    cached('shapes', data=shapes, size=32); capsys.readouterr()  # `CachedBody`'s notice
    a = p.parse_args(['cache', 'info']); assert a.func(a) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['files'] == 4 and info['mib'] >= 0 and info['folder'].endswith('features')
    a = p.parse_args(['cache', 'clear']); assert a.func(a) == 0
    assert 'removed 4 cached files' in capsys.readouterr().out and featcache.cache_info()['files'] == 0

def test_cached_pooled_features_depend_on_the_pooling(shapes):
    "Average and concat pooling share every weight: the cache must still tell their features apart (2560 vs 1280)."
    from cnn_course.models.backbones import HeadCfg
    train('shapes', data=shapes, size=32, epochs=0)
    t = train('shapes', data=shapes, size=32, epochs=0, head=HeadCfg(pool='concat'))
    assert t.meta['head']['pool'] == 'concat' and 0 <= t.metrics['valid_accuracy'] <= 1

def test_a_warm_cache_repeats_the_cold_run_exactly(shapes, monkeypatch):
    calls = _computes(monkeypatch)
    cold = train('shapes', data=shapes, size=32, top_epochs=0); n = len(calls)
    warm = train('shapes', data=shapes, size=32, top_epochs=0)
    assert n > 0 and len(calls) == n  # the second run computed no features: it read them all from the cache
    assert warm.meta['lr'] == cold.meta['lr'] and warm.history.equals(cold.history) and warm.metrics == cold.metrics

def test_lr_find_draws_nothing_so_a_given_lr_repeats_the_run_and_the_cache_changes_no_number(shapes, monkeypatch):
    "lr_find leaves the random states alone (the cached features' loader too), so a given --lr repeats the run."
    cold = train('shapes', data=shapes, size=32, top_epochs=1)
    warm = train('shapes', data=shapes, size=32, top_epochs=1)
    assert warm.meta['lr_suggestions'] == cold.meta['lr_suggestions']
    given = train('shapes', data=shapes, size=32, top_epochs=1, lr=cold.meta['lr'])
    assert given.meta['lr_suggestions'] is None
    assert given.history.equals(cold.history) and given.metrics == cold.metrics  # as if lr_find had never run
    monkeypatch.setenv(featcache.SIZE_ENV, '0')  # no cache at all: the same numbers
    off = train('shapes', data=shapes, size=32, top_epochs=1)
    assert off.meta['lr'] == cold.meta['lr'] and off.history.equals(cold.history) and off.metrics == cold.metrics

def test_a_cache_file_of_another_entry_is_recomputed_not_served(shapes):
    cold = train('shapes', data=shapes, size=32, top_epochs=1)
    files = featcache.cache_files(); biggest = max(files, key=lambda p: p.stat().st_size).read_bytes()
    for p in files: p.write_bytes(biggest)  # whole, readable safetensors files, each under the wrong name
    warm = train('shapes', data=shapes, size=32, top_epochs=1)
    assert warm.metrics == cold.metrics and list(warm.history.accuracy) == list(cold.history.accuracy)
