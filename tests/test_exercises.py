"Every exercise's self-check: right answers pass, and each common mistake gets its own specific feedback."
import math
import numpy as np, pandas as pd, pytest, torch
from cnn_course.data.fetch import make_shapes
from cnn_course.data.loaders import class_counts, get_dls
from cnn_course.evaluation.metrics import metrics_from_predictions, wilson_interval
from cnn_course.course.lessons import EXERCISES, ExerciseError, check
from cnn_course.course.exercises import ANSWER_MIME
from cnn_course.course.graded_runs import THRESHOLDS, CHOICES
from cnn_course.course.lesson_exercises import class_weights, datablock_summary, trainable_after_freeze
from cnn_course.models.ntsnet import NTSConfig, create_ntsnet
from cnn_course.training.recipes import prepare
from cnn_course.training.lr_finder import LRSuggestions, SUGGESTERS

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
    assert len(EXERCISES) >= 26 and all(e.task for e in EXERCISES.values())
    for i in EXERCISES: _says(check(i, ...), None, 'Replace the `...`')

def test_every_lesson_has_code_a_choice_and_a_written_answer_and_few_points_for_handing_in():
    for lesson in range(1, 8):
        exs = [e for e in EXERCISES.values() if e.lesson == lesson and e.points > 0]
        assert len(exs) >= 3 and {'code', 'choice', 'written'} <= {e.kind for e in exs}, (lesson, exs)
    assert sum(e.points for e in EXERCISES.values() if e.kind in ('threshold', 'hand-in')) <= 4
    assert set(THRESHOLDS) | set(CHOICES) == {e.id for e in EXERCISES.values() if e.kind in ('threshold', 'choice')}

def test_the_answer_is_recorded_in_the_output_with_the_verdict_never_trusted():
    counts = pd.DataFrame({'train': [90, 10, 5], 'test': [30, 5, 5]}, index=['a', 'b', 'c'])
    rec = check('1.3', np.float64(0.75), counts=counts)._repr_mimebundle_()[ANSWER_MIME]
    assert rec == {'exercise': '1.3', 'answer': 0.75, 'self_check': True, 'format': 1}
    assert check('1.3', 'x', counts=counts)._repr_mimebundle_()[ANSWER_MIME]['answer'] == 'x'

def test_strict_under_nbdev_test(monkeypatch):
    monkeypatch.setenv('IN_TEST', '1')
    with pytest.raises(ExerciseError, match='Not answered'): check('1.3', ...)
    monkeypatch.setenv('CNN_COURSE_LEARNER_VERSION', '1')  # the learner version: unanswered is expected, wrong is not
    assert check('1.3', ...).ok is None
    with pytest.raises(ExerciseError, match='Not yet'):
        check('1.3', 7., counts=pd.DataFrame({'train': [1, 2], 'test': [1, 2]}, index=['a', 'b']))

def test_1_1_counts(shapes):
    dls = get_dls('shapes', shapes, bs=8)
    cc = class_counts(dls)
    _says(check('1.1', cc['train'].to_dict(), dls=dls), True)
    _says(check('1.1', (cc['train'] + cc['valid']).to_dict(), dls=dls), False, 'train and valid together')
    _says(check('1.1', cc['valid'].to_dict(), dls=dls), False, 'validation counts')
    _says(check('1.1', {'circle': 1}, dls=dls), False, 'The classes are')
    _says(check('1.1', 12, dls=dls), False, 'Give a dict')

def test_1_3_majority_baseline():
    counts = pd.DataFrame({'train': [90, 10, 5], 'test': [30, 5, 5]}, index=['a', 'b', 'c'])
    _says(check('1.3', 0.75, counts=counts), True, "'a'")
    _says(check('1.3', 1/3, counts=counts), False, 'guessing uniformly')
    _says(check('1.3', 75, counts=counts), False, 'not a percentage')
    _says(check('1.3', 90/105, counts=counts), False, 'TRAINING class')

def test_written_answers_are_recorded_for_the_instructor():
    _says(check('1.4', 'because'), False, 'at least 12')
    _says(check('1.4', 42), False, 'as text')
    text = 'If the test split chose, its accuracy would be optimistic: it would have helped to pick the model it measures.'
    fb = check('1.4', text)
    _says(fb, True, 'instructor')
    assert fb._repr_mimebundle_()[ANSWER_MIME]['answer'] == text

def test_2_1_datablock_by_hand(shapes):
    from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, GrandparentSplitter, Resize, aug_transforms, Normalize, parent_label
    from cnn_course.data.loaders import split_items
    items, st = split_items('shapes', shapes), ([0.5]*3, [0.5]*3)
    def dls(size=160, aug=True, items_=items):
        tf = [*aug_transforms()] if aug else []
        return DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=lambda _: items_['train'] + items_['valid'],
                         splitter=GrandparentSplitter(valid_name='valid'),
                         get_y=parent_label, item_tfms=Resize(size),
                         batch_tfms=[*tf, Normalize.from_stats(*st)]).dataloaders(shapes, bs=8, num_workers=0)
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

def test_thresholds_and_choices_on_the_saved_run_and_on_given_metrics(tmp_path, monkeypatch):
    m = metrics_from_predictions([0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 0, 2, 2, 2, 2], ['hat', 'outer', 'top'])
    _says(check('6.2', 'runs/lesson6/runs/project', metrics=m, where='hidden test'), True, 'hidden test', '87.5%')
    _says(check('6.2', 'runs/other', metrics=m), False, "Save the run to 'runs/lesson6/runs/project'")
    # a choice: the best setting on validation, and the run saved with it measured (balanced: the mean per-class accuracy)
    _says(check('2.4', 'balanced', valid={'plain': .80, 'balanced': .86}, metrics=m), False,
          'mean per-class', '83.3%', 'below the threshold')
    right = metrics_from_predictions([0, 0, 1, 1, 2, 2, 2, 2], [0, 0, 1, 1, 2, 2, 2, 2], ['hat', 'outer', 'top'])
    _says(check('2.4', 'balanced', valid={'plain': .80, 'balanced': .86}, metrics=right), True, '100.0%')
    _says(check('2.4', 'plain', valid={'plain': .80, 'balanced': .86}, metrics=m), False, 'choose the best on validation')
    _says(check('2.4', 'oversampled', valid={'plain': .80, 'balanced': .86}, metrics=m), False, 'Choose one of the settings')
    _says(check('2.4', 'balanced', valid={'balanced': .86}, metrics=m), False, 'at least two settings')
    _says(check('2.4', 'balanced', valid={'plain': .8, 'balanced': 86}, metrics=m), False, 'not a fraction')
    probs = np.eye(10)[[0, 1, 2, 3]]; labels = np.array([0, 1, 2, 3])
    _says(check('7.1', 20, valid={5: .7, 20: .7}, probs=probs, labels=labels), True, 'top-5', 'best of 2')  # a tie: either
    rec = check('7.1', 20, valid={5: .7, 20: .7}, probs=probs, labels=labels)._repr_mimebundle_()[ANSWER_MIME]['answer']
    assert rec == {'choice': 20, 'valid': {'5': .7, '20': .7}}
    monkeypatch.chdir(tmp_path)  # no saved run there
    _says(check('1.2', 20, valid={5: .8, 20: .9}), False, 'could not be checked')

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

def test_5_confusions_and_worst_class():
    m = metrics_from_predictions([0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 2, 2, 0], ['cat', 'dog', 'fox'])
    _says(check('5.4', ('cat', 'dog'), metrics=m), True, '2 images')
    _says(check('5.4', ('dog', 'cat'), metrics=m), False, 'Reversed')
    _says(check('5.4', ('fox', 'cat'), metrics=m), False, 'confused 1 times')
    m = metrics_from_predictions([0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1, 1, 2], ['cat', 'dog', 'fox'])
    _says(check('5.3', 'fox', metrics=m), True, '50%')
    _says(check('5.3', 'dog', metrics=m), False, 'PRECISION')
    _says(check('5.3', 'cow', metrics=m), False, 'Choose one of')

def test_5_2_per_class_accuracy_matches_sklearn():
    from sklearn.metrics import confusion_matrix, recall_score
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    classes = ['hat', 'outer', 'shoes', 'top']
    m = metrics_from_predictions(y, p, classes)
    cm = confusion_matrix(y, p)
    mine = {c: cm[i, i]/cm[i].sum() for i, c in enumerate(classes)}
    assert np.allclose(list(mine.values()), recall_score(y, p, average=None))
    _says(check('5.2', mine, metrics=m), True)
    _says(check('5.2', {c: cm[i, i]/cm[:, i].sum() for i, c in enumerate(classes)}, metrics=m), False, 'precisions')
    _says(check('5.2', {'hat': 1.}, metrics=m), False, 'The classes are')

def test_6_1_wilson_lower_bound():
    acc, n = 0.95, 40  # few images: the Wilson interval and the textbook one differ
    lo = wilson_interval(round(acc*n), n)[0]
    p, z = round(acc*n)/n, 1.96
    by_hand = (p + z**2/(2*n) - z*math.sqrt(p*(1-p)/n + z**2/(4*n**2)))/(1 + z**2/n)  # the formula the lesson gives
    from scipy.stats import binomtest
    assert math.isclose(by_hand, binomtest(round(acc*n), n).proportion_ci(method='wilson').low, abs_tol=1e-4)
    _says(check('6.1', lo, accuracy=acc, n=n), True)
    _says(check('6.1', by_hand, accuracy=acc, n=n), True)
    p = round(acc*n)/n
    _says(check('6.1', p, accuracy=acc, n=n), False, 'accuracy itself')
    _says(check('6.1', p - 1.96*math.sqrt(p*(1-p)/n), accuracy=acc, n=n), False, 'normal approximation')

def test_6_4_packed_folder(tmp_path):
    (tmp_path/'sub').mkdir()
    for f in ('notebook.ipynb', 'model.safetensors', 'model.json', 'history.csv'): (tmp_path/'sub'/f).write_text('x')
    _says(check('6.4', tmp_path/'sub'), True)
    (tmp_path/'sub'/'model.pkl').write_text('x')
    _says(check('6.4', tmp_path/'sub'), False, 'model.pkl')
    (tmp_path/'sub'/'model.safetensors').unlink()
    _says(check('6.4', tmp_path/'sub'), False, 'Missing: model.safetensors')
    _says(check('6.4', tmp_path/'nowhere'), False, 'not a folder')

def test_7_2_top5_matches_sklearn():
    from sklearn.metrics import top_k_accuracy_score
    rng = np.random.default_rng(1)
    probs, labels = rng.random((80, 10)), rng.integers(0, 10, 80)
    _says(check('7.2', top_k_accuracy_score(labels, probs, k=5, labels=range(10)), probs=probs, labels=labels), True)
    _says(check('7.2', float((probs.argmax(1) == labels).mean()), probs=probs, labels=labels), False, 'top-1')

def test_7_3_ntsnet_added_parameters():
    m = create_ntsnet(4, 'simple_cnn', pretrained=False, cfg=NTSConfig(proposals=4, cat=2, sizes=(0.3, 0.45, 0.7), channels=32))
    n = lambda x: sum(p.numel() for p in x.parameters())
    _says(check('7.3', n(m) - n(m.body), model=m), True)
    _says(check('7.3', n(m.navigator), model=m), False, 'navigator alone')
    _says(check('7.3', n(m), model=m), False, 'subtract')

def test_a_threshold_exercise_refuses_a_run_on_generated_shapes(tmp_path, monkeypatch):
    "A lesson run without its photos trains on shapes: its threshold exercise says it cannot be graded, and how to fix it."
    from cnn_course.models.backbones import get_backbone
    from cnn_course.course.exercises import check
    from cnn_course.models.classifier import create_model
    from cnn_course.inference.runs import save_run
    import cnn_course.course.lessons  # noqa: F401  (registers the lessons' checks)
    b, d = get_backbone('simple_cnn'), tmp_path/'runs'/'lesson1'
    save_run(d, create_model('simple_cnn', 3, pretrained=False), dict(
        arch='simple_cnn', classes=['circle', 'square', 'triangle'], size=32, mean=list(b.mean), std=list(b.std), head={},
        pretrained=False, dataset='shapes', metrics={'test_accuracy': 0.99, 'n_test': 30}))
    monkeypatch.delenv('IN_TEST', raising=False)
    monkeypatch.chdir(tmp_path)
    fb = check('1.2', 20, valid={5: .8, 20: .9})
    assert fb.ok is False and 'cannot be graded' in str(fb) and 'data get' in str(fb), str(fb)
