"""No lesson grade rests on what the notebook claims: every value an exercise is judged against is the grader's own,
or the exercise waits for the instructor; a non-finite number costs its own answer only."""
import json
from dataclasses import asdict
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from cnn_course.models.backbones import HeadCfg, get_backbone
from cnn_course.data.registry import get_dataset
from cnn_course.grading.answers import build_sets, counts_of, grade_lesson
from cnn_course.course.exercises import ANSWER_MIME
from cnn_course.grading.hidden_test import run_logits
from cnn_course.models.classifier import create_model
from cnn_course.inference.runs import load_run, save_run

SIZE = 32

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home')); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    monkeypatch.delenv('IN_TEST', raising=False)

def _photos(folder:Path, classes, n:int, seed:int):
    "`n` noisy photos per class, one colour per class."
    rng = np.random.default_rng(seed)
    for i, c in enumerate(classes):
        rgb = np.array([(53*i) % 256, (97*i + 80) % 256, (151*i + 160) % 256])
        (folder/c).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            a = np.clip(rgb + rng.normal(0, 20, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(folder/c/f'{i}_{seed}_{j:02d}.png')

CLOTHES = sorted(dict(get_dataset('fashion5').mapping))
DATA = {'clothing': CLOTHES,  # the data folder of each dataset of lessons 1 to 4, and its classes
        **{d.dir_name: sorted(d.classes) for d in map(get_dataset, ('flowers', 'eggs', 'anime', 'grocery10'))}}

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "Public data and hidden test sets of lessons 1 to 4 (small photos), and the grader's sets built from them."
    root = tmp_path_factory.mktemp('claims')
    for folder, classes in DATA.items():
        for split, n, seed in (('train', 6, 0), ('valid', 2, 1), ('test', 2, 2)):
            _photos(root/'data'/folder/split, classes, n, seed)
        _photos(root/'hidden'/folder, classes, 2, 3)
    sets = build_sets([1, 2, 3, 4], root/'hidden', root/'data')
    return dict(root=root, sets=sets)

def _record(i, answer) -> dict:
    "A code cell whose output records `answer` to exercise `i` (as `check` writes it, verdict 'passed')."
    data = {'text/plain': 'passed', ANSWER_MIME: {'exercise': i, 'answer': answer, 'self_check': True, 'format': 1}}
    return {'cell_type': 'code', 'execution_count': 1, 'metadata': {}, 'source': f'check({i!r}, ...)',
            'outputs': [{'output_type': 'execute_result', 'execution_count': 1, 'metadata': {}, 'data': data}]}

def _grade(world, tmp_path, lesson:int, answers:dict, raw:dict|None=None) -> dict:
    "Grade `lesson` of a submission whose notebook records `answers`; `raw` puts JSON tokens in place of strings."
    nb = {'cells': [_record(i, a) for i, a in answers.items()], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    text = json.dumps(nb)
    for k, v in (raw or {}).items(): text = text.replace(json.dumps(k), v)
    nb = tmp_path/f'{lesson:02d}_lesson.ipynb'; nb.write_text(text)
    return grade_lesson(lesson, str(tmp_path), str(nb), world['sets'])

def _waits(g, i):
    "Exercise `i` is left to the instructor: no automatic points, flagged, and the reason says so."
    assert g['points'][i] == 0. and i in g.get('instructor', ()), g
    assert g['reasons'][i].startswith('For the instructor'), g['reasons'][i]

# 3.1: the rate is judged on the grader's own lr_find curve, never on the one recorded with it

LRS = np.geomspace(1e-7, 10, 100)

def test_3_1_a_nan_curve_does_not_pass(world, tmp_path):
    nan = {'suggestions': {'valley': 'NAN'}, 'lrs': LRS.tolist(), 'losses': ['NAN']*100}
    g = _grade(world, tmp_path, 3, {'3.1': {'lr': 1e-7, 'curve': nan}}, raw={'NAN': 'NaN'})  # every rate was good on it
    assert g['points']['3.1'] == 0. and "NaN at answer['curve']" in g['reasons']['3.1'], g['reasons']['3.1']
    nan = json.loads(json.dumps(nan).replace('NAN', 'nan'))  # as `check` records a NaN: the grader never reads it
    g = _grade(world, tmp_path, 3, {'3.1': {'lr': 1e-7, 'curve': nan}})
    assert g['points']['3.1'] == 0. and 'too low' in g['reasons']['3.1'], g['reasons']['3.1']
    assert "grader's own lr_find curve" in g['reasons']['3.1']
    g = _grade(world, tmp_path, 3, {'3.1': {'lr': 1e-3, 'curve': nan}})
    assert g['points']['3.1'] == 1., g['reasons']['3.1']  # a good rate passes whatever curve was recorded

def test_3_1_a_made_up_smooth_curve_does_not_pass(world, tmp_path):
    x = np.log10(LRS)  # falls fastest near 1.0, lowest near 3: there 1.0 would look good
    loss = 2.3 - 1.6/(1 + np.exp(-2.5*x)) + 2*np.exp(2.5*(x - 1))
    made_up = {'suggestions': {'valley': 1.0}, 'lrs': LRS.tolist(), 'losses': loss.tolist()}
    g = _grade(world, tmp_path, 3, {'3.1': {'lr': 1.0, 'curve': made_up}})
    assert g['points']['3.1'] == 0. and 'too high' in g['reasons']['3.1'], g['reasons']['3.1']
    assert _grade(world, tmp_path, 3, {'3.1': 1e-3})['points']['3.1'] == 1.  # the rate alone is enough

# 2.1, 2.3, 3.2: what the notebook or a run's own files claim cannot be recomputed: the instructor decides

def test_2_1_a_forged_datablock_summary_waits_for_the_instructor(world, tmp_path):
    items, b = world['sets']['items', 'fashion5'], get_backbone('tf_efficientnet_lite0')
    forged = dict(vocab=sorted(get_dataset('fashion5').classes), n_train=len(items['train']),
                  n_valid=len(items['valid']), size=160, normalize=[list(b.mean), list(b.std)], augment=True)
    g = _grade(world, tmp_path, 2, {'2.1': forged})
    _waits(g, '2.1')
    assert f"'n_train': {len(items['train'])}" in g['reasons']['2.1']  # the recorded summary, shown

def test_2_3_forged_sampling_weights_wait_for_the_instructor(world, tmp_path):
    counts = counts_of('fashion5', world['sets']['items', 'fashion5'])['train']
    g = _grade(world, tmp_path, 2, {'2.3': {'weights': {c: 1/int(n) for c, n in counts.items()}}})
    _waits(g, '2.3')
    assert 'weights' in g['reasons']['2.3'] and '20%' in g['reasons']['2.3']  # the draws those weights would give

def test_3_2_an_edited_history_waits_for_the_instructor(world, tmp_path):
    import pandas as pd
    run = _run(tmp_path/'runs/lesson3/overfit', 'simple_cnn', DATA['eggs'])
    pd.DataFrame(dict(epoch=[1, 2, 3], phase=['frozen']*3, train_loss=[1, .8, .6], valid_loss=[1, .5, .9],
                      accuracy=[.5]*3)).to_csv(run/'history.csv', index=False)
    g = _grade(world, tmp_path, 3, {'3.2': 2})
    _waits(g, '3.2')
    assert 'epoch 2' in g['reasons']['3.2']

def _run(out:Path, arch:str, classes, **meta) -> Path:
    "A saved run of `arch` with random weights (only what the grader measures on it counts)."
    torch.manual_seed(len(arch)); b = get_backbone(arch)
    m = dict(arch=arch, classes=list(classes), size=SIZE, mean=list(b.mean), std=list(b.std), head=asdict(HeadCfg()),
             pretrained=False)
    return save_run(out, create_model(arch, len(classes), pretrained=False), {**m, **meta})

def test_4_2_a_choice_is_judged_on_the_hidden_test_set_never_on_what_the_run_or_notebook_claims(world, tmp_path):
    "model.json says 99% and the recorded validation table backs the choice: the grader measures the run on hidden photos."
    _run(tmp_path/'runs/lesson4/chosen', 'tf_efficientnet_lite0', DATA['grocery'], metrics={'test_accuracy': .99, 'n_test': 20})
    g = _grade(world, tmp_path, 4, {'4.2': {'choice': 'tf_efficientnet_lite0', 'valid': {'tf_efficientnet_lite0': .99, 'simple_cnn': .1}}})
    why, ts = g['reasons']['4.2'], world['sets']['hidden', 'grocery10']
    run = load_run(tmp_path/'runs/lesson4/chosen')
    acc = float((run_logits(run, ts).argmax(1) == ts.labels).float().mean())
    assert f'accuracy {acc:.1%} on {len(ts.labels)} hidden test images' in why and '99.0%' in why, why  # 99%: the recorded validation
    assert g['points']['4.2'] == (2. if acc >= .70 else 0.)
    g = _grade(world, tmp_path, 4, {'4.2': 'tf_efficientnet_lite0'})  # a bare value, not what `check` records for a choice
    assert g['points']['4.2'] == 0. and 'validation accuracies' in g['reasons']['4.2'], g['reasons']['4.2']

# a number that is not finite costs its own answer, and says which

@pytest.mark.parametrize('where,token,named', [('1.3', 'Infinity', 'Infinity'), ('1.3', 'NaN', 'NaN'),
                                               ('1.1', '-Infinity', '-Infinity'), ('1.3', '1' + '0'*400, '401 digits'),
                                               ('1.3', '9'*5000, 'Infinity')])  # past Python's int() limit
def test_a_non_finite_number_costs_that_answer_only(world, tmp_path, where, token, named):
    counts = counts_of('flowers', world['sets']['items', 'flowers'])
    right = {'1.1': counts['train'].to_dict(), '1.3': counts['test'].max()/counts['test'].sum()}
    answers = {**right, where: 'BAD' if where == '1.3' else {**right['1.1'], 'daisy': 'BAD'}}
    g = _grade(world, tmp_path, 1, answers, raw={'BAD': token})
    assert g['points'][where] == 0. and named in g['reasons'][where], g['reasons'][where]
    other = ({'1.1', '1.3'} - {where}).pop()
    assert g['points'][other] == 1., g['reasons'][other]

def test_an_infinite_rate_is_named(world, tmp_path):
    g = _grade(world, tmp_path, 3, {'3.1': 'INF'}, raw={'INF': 'Infinity'})
    assert g['points']['3.1'] == 0. and 'Infinity' in g['reasons']['3.1']
