"Lesson 0's checks (cnn_course.course.foundations): right answers pass, each usual mistake gets its own hint, torch is the reference."
import importlib, math
import pytest, torch
import torch.nn.functional as F
from cnn_course.course.exercises import EXERCISES, ANSWER_MIME, check

@pytest.fixture(scope='module')
def fd():
    "The module; `cnn_course.course.lessons` registers every lesson's exercises (lesson 0's choice is in `graded_runs`)."
    importlib.import_module('cnn_course.course.lessons')
    return importlib.import_module('cnn_course.course.foundations')

@pytest.fixture(autouse=True)
def _feedback_not_exceptions(monkeypatch): monkeypatch.delenv('IN_TEST', raising=False)

ROWS = lambda t: torch.arange(len(t))
def ce_stable(x, t):
    z = x - x.max(1, keepdim=True).values
    return -(z - z.exp().sum(1, keepdim=True).log())[ROWS(t), t].mean()
def ce_naive(x, t):  # no max subtraction: right on ordinary logits, overflows on large ones
    p = x.exp() / x.exp().sum(1, keepdim=True)
    return -p[ROWS(t), t].log().mean()

def _says(res, ok, *words):
    assert res[0] is ok, res
    for w in words: assert w in res[1], (w, res[1])

def test_lesson0_registers_its_exercises_in_order_with_the_kinds_the_course_asks_for(fd):
    ids = sorted(i for i in EXERCISES if i.startswith('0.'))
    assert ids == ['0.1', '0.2', '0.3', '0.4', '0.5', '0.6']
    kinds = {i: EXERCISES[i].kind for i in ids}
    assert kinds['0.1'] == kinds['0.2'] == 'code' and kinds['0.3'] == 'choice' and kinds['0.4'] == 'written'
    assert sum(EXERCISES[i].points for i in ids) == 5 and EXERCISES['0.5'].points == EXERCISES['0.6'].points == 0

def test_cross_entropy_right_answers_pass_and_match_torch(fd):
    _says(fd.check_cross_entropy(ce_stable), True, 'matches')
    _says(fd.check_cross_entropy(lambda x, t: F.cross_entropy(x, t)), True)
    _says(fd.check_cross_entropy(ce_naive), True, 'overflows')  # accepted, with a note
    for x, t in fd.example_batches():
        assert torch.allclose(ce_stable(x.double(), t), F.cross_entropy(x.double(), t))

@pytest.mark.parametrize('wrong, hint', [
    (lambda x, t: -x.softmax(1)[ROWS(t), t].log10().mean(), 'natural logarithm'),
    (lambda x, t: -torch.log2(x.softmax(1)[ROWS(t), t]).mean(), 'natural logarithm'),
    (lambda x, t: -x.log_softmax(1)[ROWS(t), t].sum(), 'summed over the batch'),
    (lambda x, t: -x.log_softmax(0)[ROWS(t), t].mean(), 'wrong axis'),
    (lambda x, t: x.log_softmax(1)[ROWS(t), t].mean(), 'sign'),
    (lambda x, t: -x[ROWS(t), t].mean(), 'probabilities first'),
    (lambda x, t: -x.log_softmax(1).mean(), 'TRUE class'),
    (lambda x, t: -x.log_softmax(1)[ROWS(t), t], 'one loss per example'),
    (lambda x, t: x.softmax(1)[ROWS(t), t].mean(), 'mean probability'),
    (lambda x, t: 1/0, 'ZeroDivisionError'),
    (lambda x, t: torch.zeros(2), 'one number'),
])
def test_cross_entropy_mistakes_get_their_own_hint(fd, wrong, hint):
    _says(fd.check_cross_entropy(wrong), False, hint)

def test_cross_entropy_unfinished_is_not_answered_and_the_record_keeps_source_and_reference(fd):
    def unfinished(x, t): z = ...  # noqa: F841  (the learner version's placeholder)
    assert fd.check_cross_entropy(unfinished)[0] is None
    _says(fd.check_cross_entropy(1.6), False, 'function itself')
    rec = check('0.1', ce_stable)._repr_mimebundle_()[ANSWER_MIME]['answer']
    x, t = fd.example_batches()[0]
    assert 'def ce_stable' in rec['source'] and math.isclose(rec['on_example'], rec['reference'], rel_tol=1e-6)
    assert math.isclose(rec['reference'], float(F.cross_entropy(x, t)), rel_tol=1e-6)

def test_grad_logits_matches_autograd_and_mistakes_get_hints(fd):
    right = lambda x, t: (x.softmax(1) - F.one_hot(t, x.shape[1])) / len(t)
    _says(fd.check_grad_logits(right), True, 'autograd')
    x, t = fd.example_batches()[1]
    xg = x.clone().requires_grad_(); F.cross_entropy(xg, t).backward()
    assert torch.allclose(fd.autograd_grad(x, t).float(), xg.grad, atol=1e-6)
    _says(fd.check_grad_logits(lambda x, t: x.softmax(1) - F.one_hot(t, x.shape[1])), False, 'Divide by the number')
    _says(fd.check_grad_logits(lambda x, t: (F.one_hot(t, x.shape[1]) - x.softmax(1)) / len(t)), False, 'sign')
    _says(fd.check_grad_logits(lambda x, t: x.softmax(1) / len(t)), False, 'one-hot')
    _says(fd.check_grad_logits(lambda x, t: (x.softmax(0) - F.one_hot(t, x.shape[1])) / len(t)), False, 'dim=1')
    _says(fd.check_grad_logits(lambda x, t: x.sum(1)), False, 'shape')
    _says(fd.check_grad_logits(lambda x, t: x * 0), False, 'autograd')

def test_the_learning_rate_is_chosen_on_validation(fd):
    from cnn_course.evaluation.metrics import metrics_from_predictions
    m = metrics_from_predictions([0]*9 + [1], [0]*9 + [1], ['daisy', 'rose'])  # the saved run's predictions: 100%
    valid, ch = {1e-4: 0.52, 1e-3: 0.83, 1e-2: 0.90, 1e-1: 0.895}, EXERCISES['0.3'].check
    _says(ch(1e-2, valid=valid, metrics=m), True, 'best of 4')
    _says(ch(0.1, valid=valid, metrics=m), True, 'within 1%')
    _says(ch(1e-4, valid=valid, metrics=m), False, 'choose the best on validation')
    _says(ch(3e-3, valid=valid, metrics=m), False, 'Choose one of the settings')

def test_written_and_practice_checks(fd):
    assert EXERCISES['0.4'].check('too short to be an answer')[0] is False
    assert EXERCISES['0.4'].check(' '.join(['word']*40))[0] is True
    _says(fd.check_uniform_loss(math.log(5)), True)
    _says(fd.check_uniform_loss(math.log10(5)), False, 'log10')
    _says(fd.check_uniform_loss(0.2), False, 'probability')
    _says(fd.check_steps(39, n=2476, bs=64), True)
    _says(fd.check_steps(38, n=2476, bs=64), False, 'Rounded down')
    _says(fd.check_steps(2476, n=2476, bs=64), False, 'per example')

def test_loss_curves_draws_one_line_per_run(fd):
    import matplotlib; matplotlib.use('Agg')
    fig = fd.loss_curves({'a': [3, 2, 1], 'b': torch.tensor([3., 3., 2.9])}, ylim=(0, 4))
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_ylim() == (0, 4)
