"Every exercise's self-check: right answers pass, and each common mistake gets its own specific feedback."
import math
import numpy as np, pandas as pd, pytest, torch
from cnn_course.datasets import make_shapes
from cnn_course.data import class_counts, get_dls
from cnn_course.evaluate import metrics_from_predictions, wilson_interval
from cnn_course.lessons import EXERCISES, ExerciseError, check
from cnn_course.ntsnet import NTSConfig, create_ntsnet
from cnn_course.train import LRSuggestions, SUGGESTERS, prepare

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
    assert len(EXERCISES) == 14 and all(e.task for e in EXERCISES.values())
    for i in EXERCISES: _says(check(i, ...), None, 'Replace the `...`')

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

def test_2_1_imbalance_ratio():
    counts = pd.DataFrame({'train': [140, 10], 'valid': [20, 4]}, index=['top', 'hat'])
    _says(check('2.1', 14, counts=counts), True)
    _says(check('2.1', 1/14, counts=counts), False, 'Upside down')
    _says(check('2.1', 5, counts=counts), False, 'valid split')

def test_2_2_oversampling(shapes):
    _says(check('2.2', get_dls('shapes', shapes, bs=8, balanced=True)), True, 'rarest class')
    _says(check('2.2', get_dls('shapes', shapes, bs=8)), False, 'balanced=True')
    _says(check('2.2', 'dls'), False, 'Give the DataLoaders')

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

def test_3_2_best_epoch():
    h = pd.DataFrame({'train_loss': [1, .8, .6, .4, .2], 'valid_loss': [1, .7, .6, .65, .8]})
    _says(check('3.2', 3, history=h), True)
    _says(check('3.2', 2, history=h), False, 'numbered from 1')
    _says(check('3.2', 5, history=h), False, 'TRAINING loss')

def test_4_1_trainable_parameters(shapes):
    learn = prepare('shapes', 'tf_efficientnet_lite0', data=shapes, size=32, bs=8, cache_features=False).learn
    learn.freeze()
    ps = list(learn.model.parameters())
    want = sum(p.numel() for p in ps if p.requires_grad)
    _says(check('4.1', want, learn=learn), True)
    _says(check('4.1', sum(p.numel() for p in ps), learn=learn), False, 'every parameter')
    _says(check('4.1', sum(p.numel() for p in learn.model[1].parameters()), learn=learn), False, 'batch-norm')

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
