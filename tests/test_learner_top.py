"`learn.freeze_to(-2)` on the course's learner: the top stage and the head train on cached lower-body maps."
import pytest, torch
from fastai.vision.all import Callback
from cnn_course.inference import outputs as inference
from cnn_course.data.loaders import get_block, split_items
from cnn_course.data.fetch import make_shapes
from cnn_course.training.learner import body_phase, course_learner, seconds
from cnn_course.inference.runs import load_run

pytestmark = pytest.mark.usefixtures('offline_home')  # every test: a fresh, offline course home

@pytest.fixture()
def learn(tmp_path):
    shapes = make_shapes(tmp_path/'data'/'shapes', n_classes=3, size=40, n_per_class=16, seed=0)
    items = split_items('shapes', shapes)
    block = get_block('shapes', items['valid'], size=40)
    dls = block.dataloaders(items['train'] + items['valid'], bs=16, num_workers=0)
    learn = course_learner(dls, 'tf_efficientnet_lite0')
    learn.test_items = items['test']
    learn.fit_one_cycle(1, 1e-2)
    return learn

def test_freeze_to_trains_the_top_stage_on_cached_maps_and_restores_the_learner(learn, tmp_path):
    m, dls = learn.model, learn.dls
    learn.freeze_to(-2)
    assert body_phase(m) == 'top'
    before = {k: v.clone() for k, v in m.state_dict().items()}
    learn.fit_one_cycle(1, slice(1e-4, 1e-3))
    after = m.state_dict()
    assert learn.model is m and learn.dls is dls and 'forward' not in vars(m)
    top_keys = ('blocks.6', 'conv_head', 'bn2')
    lower = [k for k in before if k.startswith('0.model.') and not any(s in k for s in top_keys)]
    assert lower and all(torch.equal(before[k], after[k]) for k in lower)  # batch norms and running statistics included
    assert not torch.equal(before['0.model.blocks.6.0.conv_pw.weight'], after['0.model.blocks.6.0.conv_pw.weight'])
    assert not torch.equal(before['0.model.conv_head.weight'], after['0.model.conv_head.weight'])
    # frozen batch-norm statistics
    assert torch.equal(before['0.model.bn2.running_mean'], after['0.model.bn2.running_mean'])
    assert list(learn.history.phase) == ['frozen', 'top'] and {'maps', 'top'} <= set(seconds(learn))
    test_dl = learn.dls.test_dl(learn.test_items, with_labels=True)
    p, y = learn.get_preds(dl=test_dl)
    q, t = inference.predictions(m, test_dl)  # the whole model on the images
    assert torch.allclose(p, q, atol=1e-4) and torch.equal(y, t)
    metrics = learn.save_run(tmp_path/'run', test_dl, dataset='shapes')
    run = load_run(tmp_path/'run')
    assert run.meta['epochs'] == {'frozen': 1, 'top': 1, 'unfrozen': 0}
    assert abs(metrics['test_accuracy'] - float((q.argmax(1) == t).float().mean())) < 1e-6

def test_the_next_frozen_fit_pools_features_through_the_new_top_stage(learn):
    learn.freeze_to(-2); learn.fit_one_cycle(1, slice(1e-4, 1e-3))
    assert learn.cached_body.fdls is None  # stale after the top stage trained
    learn.freeze(); learn.fit_one_cycle(1, 1e-3)
    xb, _ = learn.dls.valid.one_batch()
    f = learn.cached_body.fdls.valid.one_batch()[0][:len(xb)]
    m = learn.model.eval()
    with torch.no_grad():  # the cached maps are half precision: close, not equal
        assert torch.allclose(m.pool(m.body(xb.as_subclass(torch.Tensor))), f, atol=2e-2)

def test_lr_find_on_the_maps_puts_the_weights_back_and_the_learner_recovers_from_an_error(learn):
    m, dls = learn.model, learn.dls
    learn.freeze_to(-2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    learn.lr_find(num_it=12, show_plot=False)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert learn.dls is dls and 'forward' not in vars(m)
    class Boom(Callback):
        def after_batch(self): raise RuntimeError('boom')
    with pytest.raises(RuntimeError, match='boom'): learn.fit(1, 1e-4, cbs=Boom())  # fastai then skips `after_fit`
    learn.validate()  # the next fit, `get_preds` or `validate` puts the images back first
    assert learn.dls is dls
    p, _ = learn.get_preds(dl=dls.valid)
    assert torch.allclose(p, inference.predictions(m, dls.valid)[0], atol=1e-4)  # photos through the whole model
    learn.unfreeze(); assert body_phase(m) == 'unfrozen'
    learn.fit(1, 1e-5)  # the plain image path
    # the lower body changed: its maps and features are stale
    assert learn.cached_body.top is None and learn.cached_body.fdls is None

def test_a_rerun_on_a_warm_cache_repeats_the_cold_run_exactly(tmp_path):
    "A lesson cell run again (its features now cached) shows the numbers it showed the first time."
    from fastai.vision.all import set_seed
    from cnn_course.inference.feature_cache import cache_files
    shapes = make_shapes(tmp_path/'data'/'shapes', n_classes=3, size=40, n_per_class=16, seed=0)
    def run():
        set_seed(0, reproducible=True)
        items = split_items('shapes', shapes)
        block = get_block('shapes', items['valid'], size=40)
        dls = block.dataloaders(items['train'] + items['valid'], bs=16, num_workers=0)
        learn = course_learner(dls, 'tf_efficientnet_lite0')
        learn.fit_one_cycle(3, 1e-2)
        return [list(map(float, v)) for v in learn.recorder.values], learn.model.head.state_dict()
    (cold, w1), n = run(), len(cache_files())
    (warm, w2) = run()
    assert n > 0 and len(cache_files()) == n  # the second run read its features from the cache
    assert warm == cold and all(torch.equal(w1[k], w2[k]) for k in w1)
