"A lesson's learner is guarded and saved like a `cnn-course train` run: one guard, one model.json, one lr_find curve."
import json, re
import pytest, torch
from fastai.vision.all import Callback, Learner, accuracy, vision_learner
from cnn_course.data.loaders import get_block, split_items
from cnn_course.data.fetch import make_shapes
from cnn_course.training.guards import TrainError
from cnn_course.training.learner import CachedBody, lr_curve
from cnn_course.models.classifier import create_model
from cnn_course.models.weights import install_timm_weights
from cnn_course.inference.runs import validate_meta
from cnn_course.training.history import seconds
from cnn_course.training.recipes import prepare, train
from cnn_course.training.lr_finder import find_lr

pytestmark = pytest.mark.usefixtures('offline_home')  # every test: a fresh, offline course home

@pytest.fixture()
def shapes(tmp_path): return make_shapes(tmp_path/'shapes', n_classes=3, size=40, n_per_class=30, seed=0)

def _lesson(shapes, arch='simple_cnn', aug=True, cb=None):
    "A learner made as the lessons make it: fastai's `DataBlock` lines, then fastai's `vision_learner` and `CachedBody`."
    items = split_items('shapes', shapes)
    dls = get_block('shapes', items['valid'], size=64, aug=aug).dataloaders(items['train'] + items['valid'], bs=16, num_workers=0)
    cbs = cb or CachedBody()
    if arch == 'simple_cnn':  # no fastai arch: the course's CNN in fastai's `Learner`, as lesson 4 builds it
        learn = Learner(dls, create_model(arch, len(dls.vocab), pretrained=False), metrics=accuracy, cbs=cbs)
    else: install_timm_weights([arch]); learn = vision_learner(dls, arch, metrics=accuracy, cbs=cbs)
    learn.test_dl = dls.test_dl(items['test'], with_labels=True)
    return learn

def _template(msg:str) -> str: return re.sub(r'\d[\d.e+-]*|nan|inf', '#', msg)  # where and at which rate: the run's own

def test_a_diverged_lesson_fit_is_refused_at_save_with_the_message_cnn_course_train_gives(shapes, tmp_path):
    learn = _lesson(shapes)
    with pytest.raises(TrainError) as fit: learn.fit_one_cycle(1, 1e3)  # the guard stops the fit...
    with pytest.raises(TrainError) as save: learn.save_run(tmp_path/'lesson', learn.test_dl, dataset='shapes')  # ...and the save
    with pytest.raises(TrainError) as cli:  # the same data, batch size and rate through `cnn-course train`
        train('shapes', 'simple_cnn', data=shapes, out=tmp_path/'cli', pretrained=False, lr=1e3, epochs=1, size=64, bs=16)
    assert str(save.value) == str(fit.value) and str(save.value).startswith('The training loss became'), str(save.value)
    assert _template(str(save.value)) == _template(str(cli.value)), (str(save.value), str(cli.value))
    assert not (tmp_path/'lesson').exists() and not (tmp_path/'cli').exists()

def test_a_diverged_frozen_fit_on_cached_features_leaves_the_learner_usable(shapes, tmp_path):
    learn, threads = _lesson(shapes, 'tf_efficientnet_lite0'), torch.get_num_threads()
    dls = learn.dls
    with pytest.raises(TrainError, match='The training loss became') as e: learn.fine_tune(1, base_lr=1e3, freeze_epochs=4)
    assert learn.dls is dls and torch.get_num_threads() == threads  # the images and the threads are back
    stopped = int(re.search(r'at epoch (\d+)', str(e.value))[1])
    assert list(learn.history.phase) == ['frozen']*(stopped - 1)  # the epoch it stopped in is never recorded
    with pytest.raises(TrainError, match='The training loss became'): learn.save_run(tmp_path/'run')
    assert not (tmp_path/'run').exists()

def test_an_untrained_lesson_learner_is_not_saved(shapes, tmp_path):
    with pytest.raises(TrainError, match='no optimiser step'): _lesson(shapes).save_run(tmp_path/'run')
    assert not (tmp_path/'run').exists()

def test_a_lesson_run_and_a_cli_run_pass_one_schema_with_the_same_fields(shapes, tmp_path):
    learn = _lesson(shapes, 'tf_efficientnet_lite0')
    sugg = learn.lr_find(show_plot=False)
    learn.fine_tune(1, base_lr=sugg.valley, freeze_epochs=2)
    learn.save_run(tmp_path/'lesson', learn.test_dl, dataset='shapes')
    train('shapes', data=shapes, out=tmp_path/'cli', size=64, freeze_epochs=2, top_epochs=0, epochs=1)
    lesson, cli = (json.loads((tmp_path/r/'model.json').read_text()) for r in ('lesson', 'cli'))
    for m in (lesson, cli): validate_meta(m, complete=True)
    assert set(lesson) == set(cli)
    assert lesson['epochs'] == cli['epochs'] == {'frozen': 2, 'top': 0, 'unfrozen': 1}
    assert lesson['lr_suggestions']['valley'] == pytest.approx(sugg.valley)  # fastai's own suggestion, recorded
    assert sugg.valley/4 < lesson['lr'] <= sugg.valley/2  # the head's peak rate in the last fit: `fine_tune` halves base_lr
    assert lesson['recipe']['size'] == cli['size'] == 64 and lesson['recipe']['label_smoothing'] == 0.0  # fastai's loss
    assert lesson['head'] == dict(pool='concat', bn=True, dropout=0.5, hidden=512)  # fastai's head, stored as it computes
    assert lesson['dataset'] == cli['dataset'] == 'shapes' and set(lesson['metrics']) == set(cli['metrics'])
    with pytest.raises(Exception, match='lacks the field'): validate_meta({k: v for k, v in lesson.items() if k != 'lr'}, complete=True)

class Explode(Callback):
    "From the 8th batch on, a training loss far above any a real training reaches (as a too-high rate makes)."
    order = 50  # before `FiniteGuard` looks at it
    def after_loss(self):
        if self.training and self.iter >= 8: self.learn.loss = self.loss * 1e6

def test_lr_find_curves_are_trimmed_one_way_and_the_guard_leaves_lr_find_alone(shapes):
    learn = _lesson(shapes, 'tf_efficientnet_lite0')
    with learn.added_cbs(Explode()): sugg = learn.lr_find(show_plot=False)  # its loss explodes: no `TrainError`
    assert learn.finite_guard.tally == {}  # lr_find's steps train nothing
    r, curve = learn.recorder, lr_curve(learn, sugg)
    assert curve.lrs == pytest.approx([float(x) for x in r.lrs[100//10:-5]])  # fastai's `lr_find` trim: [num_it//10:-5]
    assert curve.suggestions['valley'] == sugg.valley == learn.epoch_log.found.suggestions['valley']
    cli_learn = prepare('shapes', data=shapes, size=64)  # what `cnn-course lr-find` and `train` explore
    cli = find_lr(cli_learn, num_it=40)
    assert cli.lrs == pytest.approx([float(x) for x in cli_learn.recorder.lrs[40//10:-5]])
    assert cli.lrs == pytest.approx(cli_learn.epoch_log.found.lrs)  # the one trim, whichever way it was called

def test_augmentation_with_the_callback_is_used_or_said_never_silently_dropped(shapes, capsys):
    "Random transforms in the DataLoaders: the callback says in one line that they are not applied, or `views` uses them."
    learn = _lesson(shapes, 'tf_efficientnet_lite0')  # the shapes' DataBlock: `aug_transforms` (Dihedral, Brightness)
    said = capsys.readouterr().out
    assert 'Dihedral' in said and 'NOT applied to the cached features' in said and 'CachedBody(views=K)' in said
    learn = _lesson(shapes, 'tf_efficientnet_lite0', cb=CachedBody(views=2))
    assert 'applied to 2 cached view(s)' in capsys.readouterr().out
    seen = []
    class Seen(Callback):
        def before_batch(self):
            if self.training and self.iter == 0: seen.append(self.learn.dls.train.dataset.tensors[0].clone())
    learn.fit_one_cycle(2, 1e-3, cbs=Seen())
    assert len(seen) == 2 and seen[0].shape == seen[1].shape and not torch.equal(seen[0], seen[1])  # view 0, then view 1
    assert 'forward' not in vars(learn.model) and seconds(learn)['features'] > 0  # the views' passes are counted
    with pytest.raises(Exception, match='views must be a whole number'): CachedBody(views=-1)

def test_without_random_transforms_the_callback_says_so(shapes, capsys):
    _lesson(shapes, 'tf_efficientnet_lite0', aug=False)
    assert 'augmentation: Resize NOT applied' in capsys.readouterr().out  # fastai's train crops at random positions
