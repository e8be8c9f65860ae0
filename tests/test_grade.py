"Autograder: a class of generated submissions graded on a hidden test set, never unpickling or running student code."
import argparse, builtins, csv, json, pickle, shutil
from pathlib import Path
import pytest, torch
from cnn_course.data.fetch import make_shapes
from conftest import RUBRIC, head_key, tamper_run, write_notebook
from cnn_course.evaluation.rubric import RubricError, load_rubric, parse_rubric
from cnn_course.grading.project_class import add_commands
from cnn_course.grading.project import notebook_checks, pack_submission, read_notebook, self_check
from cnn_course.grading.project_class import grade_class
from cnn_course.training.recipes import train

class Evil:
    "Unpickling this creates `path`: proof that something was loaded."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (builtins.open, (self.path, 'w'))

pytestmark = pytest.mark.usefixtures('offline_home')  # every test: a fresh, offline course home

@pytest.fixture(scope='module')
def klass(tmp_path_factory):
    "A hidden test set and a class of submissions built from one good pretrained run and one random-init run."
    root = tmp_path_factory.mktemp('klass')
    shapes = make_shapes(root/'shapes', n_classes=3, size=40, n_per_class=30, seed=0)
    # The default recipe (head, then the top stage): a good run must clear the rubric's 80% whatever the seed; one
    # unfrozen epoch on 60 synthetic images moves test accuracy between 0.67 and 0.92 over seeds 0-5.
    good = train('shapes', data=shapes, size=64, out=root/'good_run').path
    scratch = train('shapes', 'simple_cnn', data=shapes, pretrained=False, size=32, bs=16, epochs=2, out=root/'scratch_run').path
    subs = root/'subs'
    def sub(name, run=good, **kw):
        d = subs/name; shutil.copytree(run, d); write_notebook(d/'notebook.ipynb', **kw); return d
    sub('good'); sub('noplots', plots=False); sub('scratch', run=scratch); sub('datasetphoto', photo='shapes/test/circle/0001.png')
    w = sub('weak')
    tamper_run(w, lambda sd: (sd[head_key(sd, 3)].zero_(), sd[head_key(sd, 3).replace('weight', 'bias')].copy_(torch.tensor([5., 0, 0]))))
    n = sub('nan'); tamper_run(n, lambda sd: sd[head_key(sd, 3)].fill_(float('nan')))
    def grow(sd):
        k = head_key(sd, 3); b = k.replace('weight', 'bias')
        sd[k], sd[b] = torch.cat([sd[k], sd[k][:1]]), torch.cat([sd[b], sd[b][:1]])
    x = sub('wrongclasses'); tamper_run(x, grow, classes=['circle', 'extra', 'square', 'triangle'])
    c = sub('corrupt'); wf = c/'model.safetensors'; wf.write_bytes(wf.read_bytes()[:len(wf.read_bytes())//2])
    p = sub('pickle'); (p/'model.safetensors').unlink()
    marker = root/'MARKER_unpickled'
    for name in ('model.pkl', 'model.pt', 'learner.pth'): (p/name).write_bytes(pickle.dumps(Evil(marker)))
    (subs/'good'/'extra.pkl').write_bytes(pickle.dumps(Evil(marker)))  # a stray pickle next to a good run is ignored
    b = sub('badnotebook'); (b/'notebook.ipynb').write_text('{"cells": [ truncated')
    rubric = parse_rubric(RUBRIC, 'test rubric')
    g = grade_class(subs, shapes/'test', rubric, out=root/'grades', data=shapes, progress=False)
    return dict(root=root, shapes=shapes, good=good, g=g, marker=marker, rubric=rubric,
                rows={r['student']: r for r in csv.DictReader(open(root/'grades'/'grades.csv'))})

EXPECTED = {  # student: (transfer, plots, accuracy, words the feedback must contain)
    'good': (1, 1, 1, 'pickle files are never loaded'), 'noplots': (1, 0, 1, 'no loss plot found'),
    'scratch': (0, 1, 0, 'random init'), 'datasetphoto': (1, 0, 1, 'no photo prediction found'),
    'weak': (1, 1, 0, 'margin'), 'nan': (0, 1, 0, 'not finite'), 'wrongclasses': (1, 1, 0, 'has 4 classes'),
    'corrupt': (0, 1, 0, 'Re-save the run'), 'pickle': (0, 1, 0, 'only the pickle(s)'),
    'badnotebook': (1, 0, 1, 'cannot be read as a notebook')}

@pytest.mark.parametrize('student', EXPECTED)
def test_each_submission_gets_expected_points_and_reason(klass, student):
    t, p, a, why = EXPECTED[student]
    row = klass['rows'][student]
    assert (float(row['transfer']), float(row['plots']), float(row['accuracy'])) == (t, p, a), (row, klass['g'].results)
    assert float(row['total']) == t + p + a
    fb = (klass['root']/'grades'/'feedback'/f'{student}.md').read_text()
    assert why in fb, fb
    assert why.split('(')[0].strip() in (klass['root']/'grades'/'feedback'/f'{student}.html').read_text()

def test_scratch_run_fails_transfer_on_weights_not_only_meta(klass, tmp_path):
    "A run that claims pretrained=True in model.json but holds random-init weights still fails."
    d = tmp_path/'liar'; shutil.copytree(klass['root']/'subs'/'scratch', d)
    meta = json.loads((d/'model.json').read_text())
    meta.update(arch='tf_efficientnet_lite0', pretrained=True, weights_source='package efficientnet-lite0')
    from cnn_course.models.classifier import create_model
    from safetensors.torch import save_model
    m = json.loads((klass['good']/'model.json').read_text())
    meta.update(head=m['head'], size=m['size'], mean=m['mean'], std=m['std'], recipe=m['recipe'])
    save_model(create_model('tf_efficientnet_lite0', 3, pretrained=False,
                            head=__import__('cnn_course.models.backbones', fromlist=['HeadCfg']).HeadCfg(**m['head'])),
               str(d/'model.safetensors'))
    (d/'model.json').write_text(json.dumps(meta))
    r = self_check(d/'notebook.ipynb', d, klass['rubric'], data=klass['shapes'])
    assert r.points['transfer'] == 0 and 'look like a random init' in r.reasons['transfer'], r.reasons

def test_nothing_is_ever_unpickled(klass, tmp_path):
    assert not klass['marker'].exists()
    probe = tmp_path/'probe'; pickle.loads(pickle.dumps(Evil(probe)))
    assert probe.exists()  # the planted pickles really would have written the marker

def test_summary_and_rendering(klass):
    g = klass['g']
    s = (klass['root']/'grades'/'summary.md').read_text()
    assert '10 submissions' in s and '| 3 |' in s and g._repr_markdown_() == s
    good = next(r for r in g.results if r.student == 'good')
    assert 'hidden test accuracy' in good._repr_markdown_() and '95% CI' in good.reasons['accuracy']

def test_limits_time_and_size(klass, tmp_path):
    subs = tmp_path/'subs'; shutil.copytree(klass['root']/'subs'/'good', subs/'a')
    slow = parse_rubric(RUBRIC.replace('time_limit = 120', 'time_limit = 0'))
    r = grade_class(subs, klass['shapes']/'test', slow, progress=False).results[0]
    assert r.points['accuracy'] == 0 and 'time limit' in r.reasons['accuracy']
    small = parse_rubric(RUBRIC.replace('max_mb = 200', 'max_mb = 1'))
    r = grade_class(subs, klass['shapes']/'test', small, progress=False).results[0]
    assert r.points['accuracy'] == 0 and 'MB limit' in r.reasons['accuracy']

def test_self_check_uses_public_test_split(klass):
    d = klass['root']/'subs'/'good'
    r = self_check(d/'notebook.ipynb', d, klass['rubric'], data=klass['shapes'])
    assert r.total == 3 and r.student == 'self-check'

def test_pack_submission_and_cli(klass, tmp_path):
    nb = write_notebook(tmp_path/'mine.ipynb')
    run = tmp_path/'run'; shutil.copytree(klass['good'], run); (run/'model.pkl').write_bytes(b'x')
    p = argparse.ArgumentParser(); add_commands(p.add_subparsers())
    a = p.parse_args(['submit', '--notebook', str(nb), '--run', str(run), '--out', str(tmp_path/'subs'/'me')]); a.func(a)
    assert sorted(f.name for f in (tmp_path/'subs'/'me').iterdir()) == ['history.csv', 'mine.ipynb', 'model.json', 'model.safetensors']
    with pytest.raises(FileExistsError): pack_submission(nb, run, tmp_path/'subs'/'me')
    (run/'model.safetensors').unlink()
    with pytest.raises(ValueError, match='pickles'): pack_submission(nb, run, tmp_path/'other')
    a = p.parse_args(['grade', str(tmp_path/'subs'), '--test-data', str(klass['shapes']/'test'), '--out', str(tmp_path/'g'),
                      '--rubric', str(Path(tmp_path/'r.toml'))])
    (tmp_path/'r.toml').write_text(RUBRIC)
    assert a.func(a) == 0 and 'me,1.0,1.0,1.0,3.0' in (tmp_path/'g'/'grades.csv').read_text()

def test_rubric_errors_name_the_problem(tmp_path):
    with pytest.raises(RubricError, match='line'): parse_rubric('[[criterion]\nid=1')
    with pytest.raises(RubricError, match='Valid kinds'): parse_rubric(RUBRIC.replace('kind = "accuracy"', 'kind = "acc"'))
    with pytest.raises(RubricError, match='lacks points'):
        parse_rubric(RUBRIC.replace('points = 1\ndescription = "Accuracy', 'description = "Accuracy'))
    with pytest.raises(RubricError, match='unknown field'): parse_rubric(RUBRIC.replace('threshold = 0.8', 'treshold = 0.8'))
    with pytest.raises(FileNotFoundError, match='write_default_rubric'): load_rubric(tmp_path/'none.toml')
    assert load_rubric().total == 3

def test_notebook_heuristics(tmp_path):
    nb = read_notebook(write_notebook(tmp_path/'n.ipynb'))
    assert all(notebook_checks(nb, ['circle', 'square']).values())
    assert notebook_checks(nb, ['circle'], {'my_drawing.png'})['photo_prediction'] is None  # a file of the dataset
    nb['cells'][-1]['outputs'] = [{'output_type': 'error', 'ename': 'FileNotFoundError', 'evalue': '', 'traceback': []}]
    assert notebook_checks(nb, ['circle'])['photo_prediction'] is None
    nb['cells'][2]['outputs'] = []  # the loss figure was not kept
    assert notebook_checks(nb, ['circle'])['loss_plot'] is None
