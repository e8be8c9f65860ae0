"""LMS exports: Gradescope's results.json (checked against its documented fields), the autograder bundle run as Gradescope
runs it, and the Canvas/Moodle CSV."""
import csv, io, json, os, shutil, stat, subprocess, sys, zipfile
from pathlib import Path
import pytest
from cnn_course.grading.project_class import grade_class
from cnn_course.grading.gradebook import merge_lms
from cnn_course.data.fetch import make_shapes
from cnn_course.evaluation.rubric import parse_rubric
from cnn_course.training.recipes import train
from conftest import RUBRIC, write_notebook

# Gradescope autograder specification: results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
TOP = {'score', 'execution_time', 'output', 'output_format', 'test_output_format', 'test_name_format', 'visibility',
       'stdout_visibility', 'extra_data', 'tests', 'leaderboard'}
TEST = {'score', 'max_score', 'status', 'name', 'name_format', 'number', 'output', 'output_format', 'tags', 'visibility', 'extra_data'}
VIS = {'hidden', 'after_due_date', 'after_published', 'visible'}

def check_results(res, rubric):
    assert set(res) <= TOP and isinstance(res['tests'], list)
    assert isinstance(res['execution_time'], (int, float)) and res['visibility'] in VIS and res['stdout_visibility'] in VIS
    assert [t['number'] for t in res['tests']] == [c.id for c in rubric.criteria]
    for t, c in zip(res['tests'], rubric.criteria):
        assert set(t) <= TEST and t['max_score'] == c.points and 0 <= t['score'] <= t['max_score']
        assert t['status'] == ('passed' if t['score'] == t['max_score'] else 'failed') and t['visibility'] in VIS
        assert isinstance(t['output'], str) and t['output'] and isinstance(t['name'], str)
    assert res['score'] == sum(t['score'] for t in res['tests'])
    for e in res.get('leaderboard', []): assert set(e) == {'name', 'value', 'order'} and e['order'] in ('asc', 'desc')

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    os.environ['CNN_COURSE_OFFLINE'] = '1'
    root = tmp_path_factory.mktemp('lms')
    shapes = make_shapes(root/'shapes', n_classes=3, size=40, n_per_class=30, seed=0)
    run = train('shapes', data=shapes, size=64, out=root/'run').path  # the default recipe: see tests/test_grade.py
    subs = root/'subs'
    for s in ('s001', 's002'): shutil.copytree(run, subs/s); write_notebook(subs/s/'notebook.ipynb', plots=s == 's001')
    (root/'rubric.toml').write_text(RUBRIC)
    return dict(root=root, shapes=shapes, subs=subs, rubric=parse_rubric(RUBRIC))

def test_gradescope_results_and_canvas_csv(setup, tmp_path):
    g = grade_class(setup['subs'], setup['shapes']/'test', setup['rubric'], out=tmp_path/'g', progress=False,
                    formats=('gradescope', 'canvas'))
    for s, total in (('s001', 3), ('s002', 2)):
        res = json.loads((tmp_path/'g'/'gradescope'/f'{s}.json').read_text())
        check_results(res, setup['rubric']); assert res['score'] == total
        assert res['leaderboard'][0]['value'] == round(100 * next(r.accuracy for r in g.results if r.student == s), 2)
    rows = list(csv.reader(io.StringIO((tmp_path/'g'/'lms.csv').read_text())))
    assert rows == [['Student ID', 'shapes'], ['s001', '3.0'], ['s002', '2.0']]
    both = merge_lms({'P1': tmp_path/'g'/'grades.csv', 'P2': "student,total\ns002,1.0\ns003,2.0\n"})
    assert both.splitlines() == ['Student ID,P1,P2', 's001,3.0,', 's002,2.0,1.0', 's003,,2.0']

def test_bundle_run_autograder_as_gradescope_does(setup, tmp_path):
    z = tmp_path/'autograder.zip'
    r = subprocess.run([str(Path(sys.executable).parent/'cnn-course'), 'gradescope', 'bundle', '--rubric', str(setup['root']/'rubric.toml'),
                        '--test-data', str(setup['shapes']/'test'), '--out', str(z)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(z) as f:
        names = f.namelist()
        assert {'setup.sh', 'run_autograder', 'rubric.toml', 'cnn_course_src/pyproject.toml',
                'cnn_course_src/cnn_course/grading/project.py'} <= set(names)
        assert all((f.getinfo(n).external_attr >> 16) & stat.S_IXUSR for n in ('setup.sh', 'run_autograder'))
        ag = tmp_path/'autograder'; f.extractall(ag/'source')
    assert len([n for n in names if n.startswith('test_data/')]) == len(list((setup['shapes']/'test').rglob('*.png')))
    assert subprocess.run(['bash', '-n', str(ag/'source'/'setup.sh')]).returncode == 0
    shutil.copytree(setup['subs']/'s001', ag/'submission')  # Gradescope: /autograder/submission
    env = {**os.environ, 'AUTOGRADER_ROOT': str(ag), 'CNN_COURSE_CLI': str(Path(sys.executable).parent/'cnn-course')}
    r = subprocess.run(['bash', str(ag/'source'/'run_autograder')], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((ag/'results'/'results.json').read_text())
    check_results(res, setup['rubric']); assert res['score'] == 3
    shutil.rmtree(ag/'submission'); (ag/'submission').mkdir(); os.mkfifo(ag/'submission'/'model.json')  # hostile: still a results.json
    (ag/'results'/'results.json').unlink()  # what follows is this run's, not the first one's left behind
    r = subprocess.run(['bash', str(ag/'source'/'run_autograder')], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and (ag/'results'/'results.json').is_file(), r.stderr[-2000:]
    res = json.loads((ag/'results'/'results.json').read_text())
    check_results(res, setup['rubric']); assert res['score'] == 0 and 'not a regular file' in res['tests'][0]['output']

def test_lms_csv_keeps_distinct_students_and_never_replaces_a_file_unasked(tmp_path):
    "`x` and `'x` (and a name holding a carriage return) stay distinct rows with their own totals; --out is not clobbered."
    from cnn_course.grading.gradebook import _csv, read_csv
    g = tmp_path/'g'; g.mkdir()
    (g/'grades.csv').write_bytes(_csv(['student', 'total'], [['x', 1.0], ["'x", 2.0], ['a\rb', 3.0]]).encode())
    cli, out = str(Path(sys.executable).parent/'cnn-course'), tmp_path/'all.csv'
    r = subprocess.run([cli, 'lms-csv', f'P1={g}', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {row['Student ID']: row['P1'] for row in read_csv(out.read_bytes().decode())} == {'x': '1.0', "'x": '2.0', 'a\rb': '3.0'}
    out.write_text('my gradebook')
    r = subprocess.run([cli, 'lms-csv', f'P1={g}', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and '--overwrite' in r.stderr and out.read_text() == 'my gradebook'
    r = subprocess.run([cli, 'lms-csv', f'P1={g}', '--out', str(out), '--overwrite'], capture_output=True, text=True)
    assert r.returncode == 0 and 'a\rb' in out.read_bytes().decode()
