"A generated class of lesson submissions graded from their recorded answers and saved runs, never running their code."
import csv, json, os, shutil, subprocess, sys
from dataclasses import asdict
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image
from cnn_course.models.backbones import HeadCfg, get_backbone
from cnn_course.grading.project_class import InstructorError
from cnn_course.data.loaders import class_counts
from cnn_course.data.registry import get_dataset
from cnn_course.evaluation.metrics import wilson_interval
from cnn_course.course.exercises import ANSWER_MIME
from cnn_course.course.lessons import check
from cnn_course.grading.project import pack_submission, self_check
from cnn_course.grading.lesson_class import grade_lessons, lessons_rubric
from cnn_course.models.classifier import create_model, encoder
from cnn_course.evaluation.rubric import load_rubric
from cnn_course.inference.runs import normalize, save_run, to_pixels

SIZE, ARCH = 32, 'simple_cnn'
CLASSES = sorted(get_dataset('flowers').classes)
COLOURS = [(230, 40, 40), (40, 200, 40), (40, 40, 230), (230, 230, 40), (200, 40, 230)]

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home')); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    monkeypatch.delenv('IN_TEST', raising=False)

def _photos(folder, n, seed, extra=0):
    "`n` noisy photos of the first flower class (`extra` more for each next one), one colour per class: any small CNN separates them."
    rng = np.random.default_rng(seed)
    for c, rgb in zip(CLASSES, COLOURS):
        (folder/c).mkdir(parents=True, exist_ok=True)
        for i in range(n + extra*CLASSES.index(c)):
            a = np.clip(np.array(rgb) + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(folder/c/f'{c[:3]}{seed}_{i:03d}.png')

def _fit_run(train:Path, out:Path) -> Path:
    "A saved run whose head is fitted on the body's features of the training photos (seconds, no fastai)."
    torch.manual_seed(0)
    b, model = get_backbone(ARCH), create_model(ARCH, len(CLASSES), pretrained=False).eval()
    files = sorted(train.rglob('*.png'))
    x = normalize(torch.stack([to_pixels(f, SIZE) for f in files]), b.mean, b.std)
    y = torch.tensor([CLASSES.index(f.parent.name) for f in files])
    with torch.no_grad(): feats = encoder(model)(x)
    opt, head = torch.optim.Adam(model.head.parameters(), 1e-2), model.head.train()
    for _ in range(150):
        opt.zero_grad(); torch.nn.functional.cross_entropy(head(feats), y).backward(); opt.step()
    model.eval()
    meta = dict(arch=ARCH, classes=CLASSES, size=SIZE, mean=list(b.mean), std=list(b.std),
                head=asdict(HeadCfg()), pretrained=False, dataset='flowers')
    return save_run(out, model, meta)

def _below(run:Path, out:Path) -> Path:
    "A copy of `run` that answers 'daisy' whatever the photo: below every threshold."
    from safetensors.torch import load_file, save_file
    shutil.copytree(run, out)
    sd = load_file(out/'model.safetensors')
    k = [k for k, v in sd.items() if k.endswith('weight') and v.ndim == 2 and v.shape[0] == len(CLASSES)][-1]
    sd[k].zero_(); sd[k.replace('weight', 'bias')].copy_(torch.tensor([5., 0, 0, 0, 0]))
    save_file(sd, out/'model.safetensors'); return out

def _cell(src, fb=None):
    "A code cell as Jupyter saves it: the source, and the check's output with every MIME type of its display."
    outs = [] if fb is None else [{'output_type': 'execute_result', 'execution_count': 1, 'metadata': {}, 'data': fb._repr_mimebundle_()}]
    return {'cell_type': 'code', 'execution_count': 1, 'metadata': {}, 'source': src, 'outputs': outs}

def _notebook(path, cells):
    path.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})); return path

def _edit_to_passed(path):
    "What a student might try: every recorded self-check and its text turned into 'passed'."
    nb = json.loads(path.read_text())
    for c in nb['cells']:
        for o in c['outputs']:
            o['data'][ANSWER_MIME]['self_check'] = True
            o['data']['text/markdown'] = '✅ passed'; o['data']['text/plain'] = 'passed'
    path.write_text(json.dumps(nb))

@pytest.fixture(scope='module')
def klass(tmp_path_factory):
    mp = pytest.MonkeyPatch(); mp.setenv('CNN_COURSE_OFFLINE', '1'); mp.delenv('IN_TEST', raising=False)  # undone after the module
    root = tmp_path_factory.mktemp('lessons')
    flowers = root/'data'/'flowers'
    for split, n, seed in (('train', 12, 0), ('valid', 4, 1), ('test', 6, 2)): _photos(flowers/split, n, seed, extra=int(split == 'test'))
    _photos(root/'hidden'/'flowers', 8, 3)
    good = _fit_run(flowers/'train', root/'good_run')
    bad = _below(good, root/'bad_run')
    counts = class_counts('flowers', flowers)
    planted = root/'PLANTED.txt'

    def student(name, run=good, wrong=False, lesson6=True):
        d = root/'subs'/name; (d/'runs').mkdir(parents=True)
        for rel in ('runs/lesson1', 'runs/lesson6/runs/project', 'runs/lesson6/chosen'): shutil.copytree(run, d/rel)
        right_counts, baseline = counts['train'].to_dict(), counts['test'].max()/counts['test'].sum()
        valid = {5: 0.8, 20: 0.9}  # what the notebook measured on the validation split: 20 epochs is the choice
        here = os.getcwd(); os.chdir(d)  # a notebook checks its runs where it runs
        try:
            _notebook(d/'01_first_classifier.ipynb', [
                _cell(f'open({str(planted)!r}, "w").write("student code ran")\nimport os; os.system("touch {planted}")'),
                _cell('check("1.1", train_counts, dls=dls)',
                      check('1.1', (counts['train'] + counts['valid']).to_dict() if wrong else right_counts, counts=counts)),
                _cell('check("1.2", choice, valid=valid)', check('1.2', 5 if wrong else 20, valid=valid)),
                _cell('check("1.3", baseline, counts=counts)', check('1.3', 1/len(counts) if wrong else baseline, counts=counts)),
                _cell('check("1.4", why_valid)', check('1.4', f'{name} says: the test split reports once, so it must not choose, '
                                                              'or its number is optimistic.'))])
            if not lesson6: return d
            res = self_check(_notebook(root/f'{name}_project.ipynb', []), d/'runs/lesson6/runs/project', load_rubric(), data=flowers)
            lower = wilson_interval(round(res.accuracy*res.n_test), res.n_test)[0]
            packed = pack_submission(d/'01_first_classifier.ipynb', d/'runs/lesson6/runs/project', d/'runs/lesson6/submission')
            _notebook(d/'06_graded_project.ipynb', [
                _cell('check("6.1", lower, ...)', check('6.1', res.accuracy if wrong else lower, accuracy=res.accuracy, n=res.n_test)),
                _cell('check("6.2", "runs/lesson6/runs/project")', check('6.2', 'runs/lesson6/runs/project')),
                _cell('check("6.3", choice, valid=valid)', check('6.3', 'smoothed' if wrong else 'project',
                                                                        valid={'project': .9, 'smoothed': .85})),
                _cell('check("6.4", packed)', check('6.4', packed)),
                _cell('check("6.5", who)', check('6.5', 'Neither: the intervals of 50 and 736 photos overlap, '
                                                        'so these test sets cannot tell them apart.'))])
        finally: os.chdir(here)
        return d

    student('all_right'); student('some_wrong', wrong=True); student('below', run=bad); student('missing', lesson6=False)
    for f in student('edited', wrong=True).glob('*.ipynb'): _edit_to_passed(f)
    out = root/'grades'
    cmd = [sys.executable, '-m', 'cnn_course.cli', 'grade-lessons', str(root/'subs'), '--lessons', '1', '6',
           '--test-data', str(root/'hidden'),
           '--data', str(root/'data'), '--out', str(out), '--format', 'gradescope', '--format', 'canvas']
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root, env={**os.environ, 'MPLBACKEND': 'Agg'})
    rows = {r['student']: r for r in csv.DictReader(open(out/'grades.csv'))} if (out/'grades.csv').exists() else {}
    yield dict(root=root, out=out, proc=p, rows=rows, planted=planted)
    mp.undo()

# Which exercises each student passes: the points come from the rubric, never from this table.
PASSES = {'all_right': {'1.1', '1.2', '1.3', '6.1', '6.2', '6.3', '6.4'}, 'some_wrong': {'6.2', '6.4'},
          'edited': {'6.2', '6.4'}, 'below': {'1.1', '1.3', '6.1', '6.4'}, 'missing': {'1.1', '1.2', '1.3'}}
WRITTEN = {'1.4', '6.5'}  # graded by the instructor: blank in the gradebook until then

def test_the_command_grades_the_class(klass):
    assert klass['proc'].returncode == 0, klass['proc'].stderr[-3000:]
    assert 'Wrote' in klass['proc'].stdout

def test_the_gradebook_has_one_column_per_exercise_and_the_expected_points(klass):
    rubric = lessons_rubric([1, 6])
    assert set(klass['rows']) == set(PASSES)
    for name, row in klass['rows'].items():
        assert list(row)[1:-2] == [c.id for c in rubric.criteria]
        pending = WRITTEN if name != 'missing' else {'1.4'}
        want = {c.id: (c.points if c.id in PASSES[name] else 0.) for c in rubric.criteria if c.id not in pending}
        assert {c.id: float(row[c.id]) for c in rubric.criteria if c.id not in pending} == want, (name, row)
        assert all(row[i] == '' for i in pending), (name, row)
        assert float(row['total']) == sum(want.values())

def test_editing_the_recorded_checks_gains_nothing(klass):
    rows = klass['rows']
    assert {k: v for k, v in rows['edited'].items() if k != 'student'} == {k: v for k, v in rows['some_wrong'].items() if k != 'student'}

def test_feedback_says_why_and_how_to_fix(klass):
    fb = {n: (klass['out']/'feedback'/f'{n}.md').read_text() for n in PASSES}
    assert 'hidden test' in fb['all_right'] and 'interval' in fb['all_right']
    assert 'train and valid together' in fb['some_wrong'] and 'accuracy itself' in fb['some_wrong']
    assert 'threshold is 85%' in fb['below'] and 'below the threshold' in fb['below']
    assert 'choose the best on validation' in fb['some_wrong']
    assert 'says: the test split reports once' in fb['all_right']  # the written answer, for the instructor
    assert 'no notebook of lesson 6' in fb['missing']
    assert str(klass['root']) not in ''.join(fb.values())  # the grader's folders are not shown to students

def test_lms_exports_and_summary(klass):
    out = klass['out']
    g = json.loads((out/'gradescope'/'all_right.json').read_text())
    assert g['score'] == lessons_rubric([1, 6]).total - 2 and set(PASSES['all_right']) <= {t['number'] for t in g['tests']}
    lms = list(csv.reader(open(out/'lms.csv')))
    assert lms[0][0] == 'Student ID' and len(lms) == len(PASSES) + 1
    assert '5 submissions' in (out/'summary.md').read_text()

def test_no_student_code_ran(klass):
    assert not klass['planted'].exists()
    assert not list(klass['root'].rglob('PLANTED*'))

def test_instructor_problems_stop_before_grading(klass, tmp_path):
    with pytest.raises(InstructorError, match='hidden test set for clothing'):
        grade_lessons(klass['root']/'subs', [5], tmp_path, data=klass['root']/'data', progress=False)
    with pytest.raises(InstructorError, match='has no submission folders'):
        (tmp_path/'none').mkdir(); grade_lessons(tmp_path/'none', [1], klass['root']/'hidden', data=klass['root']/'data', progress=False)

def _with_meta(run:Path, out:Path, **kw) -> Path:
    shutil.copytree(run, out); m = json.loads((out/'model.json').read_text()); m.update(kw)
    (out/'model.json').write_text(json.dumps(m)); return out

def test_the_other_lessons_are_graded_from_runs_curves_and_models(klass, tmp_path):
    "3.x, 4.1 and 7.3 on the grader's side: a saved history (for the instructor), its own lr_find curve, the registry's models."
    from cnn_course.course.exercises import EXERCISES
    from cnn_course.grading.answers import Submission, grade_exercise
    from cnn_course.models.ntsnet import NTSConfig, create_ntsnet
    from cnn_course.training.lr_finder import LRSuggestions
    good, s = klass['root']/'good_run', Submission(tmp_path, {})
    rec = lambda i, a, **ctx: check(i, a, **ctx)._repr_mimebundle_()[ANSWER_MIME]['answer']
    grade = lambda i, a: grade_exercise(EXERCISES[i], s, a)
    # 3.2: the saved over-fitting run's history
    assert not grade('3.2', 3)[0] and "save_run('runs/lesson3/overfit'" in grade('3.2', 3)[1]
    h = dict(epoch=[1, 2, 3, 4, 5], phase=['frozen']*5, train_loss=[1, .8, .6, .4, .2], valid_loss=[1, .7, .6, .65, .8], accuracy=[.5]*5)
    run = _with_meta(good, tmp_path/'runs/lesson3/overfit')
    (run/'history.csv').write_text(__import__('pandas').DataFrame(h).to_csv(index=False))
    ok, why = grade('3.2', 3)
    assert ok is None and why.startswith('For the instructor') and 'after epoch 3 of 5' in why, why  # history.csv is the notebook's
    # 3.1: the rate judged on the grader's own curve (here a given one), never on the one recorded with it
    lrs = np.geomspace(1e-7, 10, 100); x = np.log10(lrs)
    loss = 2.3 - 1.6/(1 + np.exp(-2.5*(x + 3))) + 2*np.exp(2.5*(x + .5))
    curve = LRSuggestions({'valley': 1e-3}, lrs.tolist(), loss.tolist()); s.sets['lr_find', 'eggs'] = curve
    assert grade('3.1', rec('3.1', 1e-3, sugg=curve))[0]
    assert 'too high' in grade('3.1', rec('3.1', 1.0, sugg=curve))[1]
    assert grade('3.1', {'lr': 1e-3})[0] and grade('3.1', 1e-3)[0]  # no recorded curve needed
    # 4.1 and 7.2: counted on the registry's models (random weights: only the shapes count)
    m = create_model('tf_efficientnet_lite0', len(get_dataset('grocery10').classes), pretrained=False)
    bn = sum(p.numel() for mod in m.body.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)
             for p in mod.parameters(recurse=False))
    want = sum(p.numel() for p in m.parameters()) - sum(p.numel() for p in m.body.parameters()) + bn
    assert grade('4.1', want)[0] and not grade('4.1', sum(p.numel() for p in m.parameters()))[0]
    nts = create_ntsnet(4, 'tf_efficientnet_lite0', pretrained=False, cfg=NTSConfig(proposals=4, cat=2, sizes=(0.25, 0.4, 0.6)))
    assert grade('7.3', sum(p.numel() for p in nts.parameters()) - sum(p.numel() for p in nts.body.parameters()))[0]

def test_exercises_for_the_instructor_are_blank_in_the_gradebook_and_listed():
    "An exercise the grader cannot judge is no zero: a blank cell, a 📝 in the feedback, a line in the summary."
    from cnn_course.grading.gradebook import Result
    from cnn_course.grading.gradebook import ClassGrades, read_csv
    from cnn_course.grading.lesson_class import _pending
    rub = lessons_rubric([2]); r = Result('ann', rub)
    for c in rub.criteria: r.set(c, c.id != '2.1', 'For the instructor' if c.id == '2.1' else 'ok')
    r.pending = {'2.1'}
    row = read_csv(ClassGrades(rub, [r]).csv())[0]
    assert row['2.1'] == '' and float(row['total']) == sum(c.points for c in rub.criteria if c.id != '2.1')
    assert '📝' in r.markdown() and '?/' in r.markdown()
    assert _pending([r]) == [next(l for l in _pending([r]) if l.startswith('exercise 2.1 is yours to grade') and l.endswith('ann'))]
