"Every exercise's self-check: right answers pass, and each common mistake gets its own specific feedback."
import math
import numpy as np, pandas as pd, pytest, torch
from cnn_course.datasets import make_shapes
from cnn_course.data import class_counts, get_dls
from cnn_course.evaluate import metrics_from_predictions, wilson_interval
from cnn_course.lessons import EXERCISES, ExerciseError, check
from cnn_course.exercises import ANSWER_MIME
from cnn_course.exercise_checks import THRESHOLDS, class_weights, datablock_summary, trainable_after_freeze
from cnn_course.ntsnet import NTSConfig, create_ntsnet
from cnn_course.train import prepare
from cnn_course.lr_finder import LRSuggestions, SUGGESTERS

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.delenv('IN_TEST', raising=False)  # feedback, not exceptions

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp('d')/'shapes', n_classes=3, size=32, n_per_class=40, imbalance=8, seed=0)

def _says(fb, ok, *words):
    assert fb.ok is ok, fb
    for w in words: assert w in fb.text, (w, fb.text)

def test_every_exercise_has_a_task_and_unanswered_is_not_wrong():
    assert len(EXERCISES) == 22 and all(e.task for e in EXERCISES.values())
    for i in EXERCISES: _says(check(i, ...), None, 'Replace the `...`')

def test_every_lesson_has_three_graded_exercises_one_a_threshold():
    for lesson in range(1, 8):
        exs = [e for e in EXERCISES.values() if e.lesson == lesson and e.points > 0]
        assert len(exs) >= 3 and sum(e.kind == 'threshold' for e in exs) == 1, (lesson, exs)
    assert {e.kind for e in EXERCISES.values()} == {'answer', 'code', 'threshold'}

def test_the_answer_is_recorded_in_the_output_with_the_verdict_never_trusted():
    counts = pd.DataFrame({'train': [90, 10, 5], 'test': [30, 5, 5]}, index=['a', 'b', 'c'])
    rec = check('1.2', np.float64(0.75), counts=counts)._repr_mimebundle_()[ANSWER_MIME]
    assert rec == {'exercise': '1.2', 'answer': 0.75, 'self_check': True, 'format': 1}
    assert check('1.2', 'x', counts=counts)._repr_mimebundle_()[ANSWER_MIME]['answer'] == 'x'

def test_strict_under_nbdev_test(monkeypatch):
    monkeypatch.setenv('IN_TEST', '1')
    with pytest.raises(ExerciseError, match='Not answered'): check('1.2', ...)

def test_1_1_counts(shapes):
    dls = get_dls('shapes', shapes, bs=8)
    cc = class_counts(dls)
    _says(check('1.1', cc['train'].to_dict(), dls=dls), True)
    _says(check('1.1', (cc['train'] + cc['valid']).to_dict(), dls=dls), False, 'train and valid together')
    _says(check('1.1', cc['valid'].to_dict(), dls=dls), False, 'validation counts')
    _says(check('1.1', {'circle': 1}, dls=dls), False, 'The classes are')
    _says(check('1.1', 12, dls=dls), False, 'Give a dict')

def test_1_2_majority_baseline():
    counts = pd.DataFrame({'train': [90, 10, 5], 'test': [30, 5, 5]}, index=['a', 'b', 'c'])
    _says(check('1.2', 0.75, counts=counts), True, "'a'")
    _says(check('1.2', 1/3, counts=counts), False, 'guessing uniformly')
    _says(check('1.2', 75, counts=counts), False, 'not a percentage')
    _says(check('1.2', 90/105, counts=counts), False, 'TRAINING class')

def test_2_1_datablock_by_hand(shapes):
    from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, GrandparentSplitter, Resize, aug_transforms, Normalize, parent_label
    from cnn_course.data import split_items
    items, st = split_items('shapes', shapes), ([0.5]*3, [0.5]*3)
    def dls(size=160, aug=True, items_=items):
        tf = [*aug_transforms()] if aug else []
        return DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=lambda _: items_['train'] + items_['valid'], splitter=GrandparentSplitter(valid_name='valid'),
                         get_y=parent_label, item_tfms=Resize(size), batch_tfms=[*tf, Normalize.from_stats(*st)]).dataloaders(shapes, bs=8, num_workers=0)
    ctx = dict(classes=['circle', 'square', 'triangle'], n_train=len(items['train']), n_valid=len(items['valid']), stats=st)
    right = dls()
    _says(check('2.1', right, **ctx), True, '3 classes')
    _says(check('2.1', datablock_summary(right), **ctx), True)  # as the grader sees it: the recorded summary
    assert check('2.1', right, **ctx)._repr_mimebundle_()[ANSWER_MIME]['answer'] == datablock_summary(right)
    _says(check('2.1', dls(size=64), **ctx), False, 'Resize(160)')
    _says(check('2.1', dls(aug=False), **ctx), False, 'aug_transforms')
    _says(check('2.1', right, **{**ctx, 'n_train': 1}), False, 'get_items')
    _says(check('2.1', 'block', **ctx), False, 'could not be checked')

def test_2_2_imbalance_ratio():
    counts = pd.DataFrame({'train': [140, 10], 'valid': [20, 4]}, index=['top', 'hat'])
    _says(check('2.2', 14, counts=counts), True)
    _says(check('2.2', 1/14, counts=counts), False, 'Upside down')
    _says(check('2.2', 5, counts=counts), False, 'valid split')

def test_2_3_oversampling(shapes):
    bal, plain = get_dls('shapes', shapes, bs=8, balanced=True), get_dls('shapes', shapes, bs=8)
    _says(check('2.3', bal), True, 'rarest class')
    _says(check('2.3', plain), False, 'weighted_dataloaders')
    _says(check('2.3', 'dls'), False, 'Give the DataLoaders')
    # the grader's view: the recorded weight of one photo of each class, times the class counts of the data
    counts = class_counts(bal)
    assert check('2.3', bal)._repr_mimebundle_()[ANSWER_MIME]['answer'] == {'weights': class_weights(bal)}
    _says(check('2.3', {'weights': class_weights(bal)}, counts=counts), True)
    _says(check('2.3', {'weights': class_weights(plain)}, counts=counts), False)
    _says(check('2.3', {'weights': {c: 1. for c in counts.index}}, counts=counts), False)

def test_thresholds_on_the_saved_run_and_on_given_metrics(tmp_path):
    m = metrics_from_predictions([0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 0, 2, 2, 2, 2], ['hat', 'outer', 'top'])
    _says(check('2.4', 'runs/lesson2-balanced', metrics=m), False, 'accuracy of', '50.0%', 'threshold is 70%')
    _says(check('5.3', 'runs/lesson5', metrics=m, where='hidden test'), True, 'hidden test', '87.5%')
    _says(check('5.3', 'runs/other', metrics=m), False, "Save the run to 'runs/lesson5'")
    probs = np.eye(10)[[0, 1, 2, 3]]; labels = np.array([0, 1, 2, 3])
    _says(check('7.3', 'runs/lesson7/sports_lite0', probs=probs, labels=labels), True, 'top-5')
    _says(check('1.3', tmp_path/'runs/lesson1'), False, 'could not be checked')  # no saved run there
    assert set(THRESHOLDS) == {e.id for e in EXERCISES.values() if e.kind == 'threshold'}

def _curve():
    lrs = np.geomspace(1e-7, 10, 100); x = np.log10(lrs)
    loss = 2.3 - 1.6/(1 + np.exp(-2.5*(x + 3))) + 2*np.exp(2.5*(x + .5))
    t, l = torch.tensor(lrs), torch.tensor(loss)
    return LRSuggestions({k: float(f(t, l, 100)[0]) for k, f in SUGGESTERS.items()}, lrs.tolist(), loss.tolist())

def test_3_1_learning_rate_uses_the_curve():
    s = _curve()
    _says(check('3.1', 1e-3, sugg=s), True, 'good')  # the middle of the fall
    _says(check('3.1', 1.0, sugg=s), False, 'too high')
    _says(check('3.1', 1e-7, sugg=s), False, 'too low')
    _says(check('3.1', -1, sugg=s), False, 'positive')
    rec = check('3.1', 1e-3, sugg=s)._repr_mimebundle_()[ANSWER_MIME]['answer']
    assert rec['lr'] == 1e-3 and rec['curve']['lrs'] == s.lrs and rec['curve']['suggestions'] == s.suggestions

def test_3_2_best_epoch():
    h = pd.DataFrame({'train_loss': [1, .8, .6, .4, .2], 'valid_loss': [1, .7, .6, .65, .8]})
    _says(check('3.2', 3, history=h), True)
    _says(check('3.2', 2, history=h), False, 'numbered from 1')
    _says(check('3.2', 5, history=h), False, 'TRAINING loss')

def test_4_1_trainable_parameters(shapes):
    learn = prepare('shapes', 'tf_efficientnet_lite0', data=shapes, size=32, bs=8, cache_features=False)
    learn.freeze()
    ps = list(learn.model.parameters())
    want = sum(p.numel() for p in ps if p.requires_grad)
    _says(check('4.1', want, learn=learn), True)
    _says(check('4.1', sum(p.numel() for p in ps), learn=learn), False, 'every parameter')
    _says(check('4.1', sum(p.numel() for p in learn.model.head.parameters()), learn=learn), False, 'batch-norm')
    assert trainable_after_freeze(learn.model)[0] == want  # what the grader computes from the model alone
    _says(check('4.1', want, model=learn.model), True)

def test_4_2_backbone_within_budget():
    t = pd.DataFrame({'arch': ['scratch', 'lite0', 'lite2'], 'accuracy': [.35, .84, .86], 'seconds': [14, 12, 23]})
    _says(check('4.2', 'lite0', table=t, budget=15), True)
    _says(check('4.2', 'lite2', table=t, budget=15), False, 'took longer')
    _says(check('4.2', 'resnet', table=t, budget=15), False, 'Choose one of')

def test_5_confusions_and_worst_class():
    m = metrics_from_predictions([0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 2, 2, 0], ['cat', 'dog', 'fox'])
    _says(check('5.1', ('cat', 'dog'), metrics=m), True, '2 images')
    _says(check('5.1', ('dog', 'cat'), metrics=m), False, 'Reversed')
    _says(check('5.1', ('fox', 'cat'), metrics=m), False, 'confused 1 times')
    m = metrics_from_predictions([0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1, 1, 2], ['cat', 'dog', 'fox'])
    _says(check('5.2', 'fox', metrics=m), True, '50%')
    _says(check('5.2', 'dog', metrics=m), False, 'PRECISION')
    _says(check('5.2', 'cow', metrics=m), False, 'Choose one of')

def test_6_1_wilson_lower_bound():
    acc, n = 0.95, 40  # few images: the Wilson interval and the textbook one differ
    lo = wilson_interval(round(acc*n), n)[0]
    _says(check('6.1', lo, accuracy=acc, n=n), True)
    p = round(acc*n)/n
    _says(check('6.1', p, accuracy=acc, n=n), False, 'accuracy itself')
    _says(check('6.1', p - 1.96*math.sqrt(p*(1-p)/n), accuracy=acc, n=n), False, 'normal approximation')

def test_6_2_packed_folder(tmp_path):
    (tmp_path/'sub').mkdir()
    for f in ('notebook.ipynb', 'model.safetensors', 'model.json', 'history.csv'): (tmp_path/'sub'/f).write_text('x')
    _says(check('6.2', tmp_path/'sub'), True)
    (tmp_path/'sub'/'model.pkl').write_text('x')
    _says(check('6.2', tmp_path/'sub'), False, 'model.pkl')
    (tmp_path/'sub'/'model.safetensors').unlink()
    _says(check('6.2', tmp_path/'sub'), False, 'Missing: model.safetensors')
    _says(check('6.2', tmp_path/'nowhere'), False, 'not a folder')

def test_7_1_top5_matches_sklearn():
    from sklearn.metrics import top_k_accuracy_score
    rng = np.random.default_rng(1)
    probs, labels = rng.random((80, 10)), rng.integers(0, 10, 80)
    _says(check('7.1', top_k_accuracy_score(labels, probs, k=5, labels=range(10)), probs=probs, labels=labels), True)
    _says(check('7.1', float((probs.argmax(1) == labels).mean()), probs=probs, labels=labels), False, 'top-1')

def test_7_2_ntsnet_added_parameters():
    m = create_ntsnet(4, 'simple_cnn', pretrained=False, cfg=NTSConfig(proposals=4, cat=2, sizes=(0.3, 0.45, 0.7), channels=32))
    n = lambda x: sum(p.numel() for p in x.parameters())
    _says(check('7.2', n(m) - n(m.body), model=m), True)
    _says(check('7.2', n(m.navigator), model=m), False, 'navigator alone')
    _says(check('7.2', n(m), model=m), False, 'subtract')

def test_a_threshold_exercise_refuses_a_run_on_generated_shapes(tmp_path, monkeypatch):
    "A lesson run without its photos trains on shapes: its threshold exercise says it cannot be graded, and how to fix it."
    from cnn_course.backbones import get_backbone
    from cnn_course.exercises import check
    from cnn_course.models import create_model
    from cnn_course.runs import save_run
    import cnn_course.lessons  # noqa: F401  (registers the lessons' checks)
    b, d = get_backbone('simple_cnn'), tmp_path/'runs'/'lesson1'
    save_run(d, create_model('simple_cnn', 3, pretrained=False), dict(
        arch='simple_cnn', classes=['circle', 'square', 'triangle'], size=32, mean=list(b.mean), std=list(b.std), head={},
        pretrained=False, dataset='shapes', metrics={'test_accuracy': 0.99, 'n_test': 30}))
    monkeypatch.delenv('IN_TEST', raising=False)
    fb = check('1.3', str(d))
    assert fb.ok is False and 'cannot be graded' in str(fb) and 'data get' in str(fb), str(fb)
