"The course notebooks: the learner version has no solutions and no outputs; every exercise is wired to its check."
import ast, json, re
from pathlib import Path
import pytest
from cnn_course.cli import main
from cnn_course.course.lessons import BEGIN, END, EXERCISES, check, learner_notebook, learner_version

LESSONS = Path(__file__).parents[1]/'lessons'
NBS = sorted(LESSONS.glob('[0-9]*.ipynb'))
CHECK_RE = re.compile(r"check\('(\d+\.\d+)',\s*(\w+)")

def _code(nb): return [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']

def _solutions(nb) -> list[str]:
    "Every line inside a solution block of `nb`."
    lines, inside = [], False
    for src in _code(nb):
        for line in src.splitlines():
            s = line.strip()
            if s in (BEGIN, END): inside = s == BEGIN; continue
            if inside and s: lines.append(s)
    return lines

def _executed(nb):
    "`nb` as if run: every code cell with an output, an execution count, and widget state in the metadata."
    for i, c in enumerate(x for x in nb['cells'] if x['cell_type'] == 'code'):
        c['outputs'] = [{'output_type': 'execute_result', 'data': {'text/plain': ['42']}, 'metadata': {}, 'execution_count': i+1}]
        c['execution_count'] = i+1
    nb['metadata']['widgets'] = {'application/vnd.jupyter.widget-state+json': {'state': {}}}
    return nb

# Lessons graded on a hidden test set: 0 to 7. Lesson 8 trains on the learner's own photos, of which no instructor holds a
# hidden test set: its automatic checks are practice, its written answer is graded.
GRADED = [p for p in NBS if int(p.name[:2]) <= 7]

def _checked(p) -> list:
    "Exercise ids in the order the lesson's cells check them."
    return [i for i, _ in CHECK_RE.findall('\n'.join(_code(json.loads(p.read_text()))))]

def test_every_lesson_has_exercises_in_order():
    assert [p.name[:2] for p in NBS] == ['00', '01', '02', '03', '04', '05', '06', '07', '08']
    for p in NBS:
        ids = _checked(p)
        assert len(ids) >= 3, f'{p.name} has {len(ids)} self-checked exercises'
        assert all(i.split('.')[0] == str(int(p.name[:2])) for i in ids), (p.name, ids)
        assert ids == sorted(set(ids), key=lambda i: int(i.split('.')[1])), f'{p.name} checks {ids}: once each, in order'

@pytest.mark.parametrize('path', GRADED, ids=lambda p: p.name)
def test_every_graded_lesson_asks_for_code_a_choice_on_validation_and_a_written_answer(path):
    kinds = {EXERCISES[i].kind for i in _checked(path) if EXERCISES[i].points}
    assert {'code', 'choice', 'written'} <= kinds, (path.name, kinds)

def test_few_points_for_handing_a_folder_in():
    assert sum(e.points for e in EXERCISES.values() if e.kind in ('threshold', 'hand-in')) <= 4

def _assigning(code:list, name:str) -> list:
    "The lines that assign `name` or an item of it."
    pat = re.compile(rf'^\s*{name}(?:\[[^\]]*\])?\s*=(?!=)')
    return [l for c in code for l in c.splitlines() if pat.search(l)]

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_no_choice_reads_the_test_split(path):
    "What a choice is made on (`valid=...` of its check) is built from validation numbers, never from the test split."
    code = _code(json.loads(path.read_text()))
    for src in code:
        for ex, table in re.findall(r"check\('(\d+\.\d+)',\s*\w+,\s*valid=(\w+)", src):
            assert EXERCISES[ex].kind == 'choice', ex
            made = _assigning(code, table)
            assert made, f'{path.name}: nothing assigns {table}'
            for line in made: assert 'test' not in line and 'valid' in line, (path.name, ex, line)

def test_every_registered_exercise_is_used_in_its_lesson():
    used = {i for p in NBS for i in _checked(p)}
    assert used == set(EXERCISES)

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_learner_version_has_no_solution_code_and_no_outputs(path):
    nb = _executed(json.loads(path.read_text()))
    sols = _solutions(nb)
    assert sols, f'{path.name} holds no solutions'
    learner = learner_notebook(nb, path.name)
    code = _code(learner)
    learner_lines = {l.strip() for src in code for l in src.splitlines()}
    assert not learner_lines & {BEGIN, END}
    assert not learner_lines & set(sols), learner_lines & set(sols)
    for c in learner['cells']:
        if c['cell_type'] == 'code': assert c['outputs'] == [] and c['execution_count'] is None
    assert 'widgets' not in learner['metadata']
    for src in code: ast.parse(src)  # still valid Python
    # the instructor's prose and the rest of the code are kept
    assert [c['cell_type'] for c in learner['cells']] == [c['cell_type'] for c in nb['cells']]

@pytest.mark.parametrize('path', NBS, ids=lambda p: p.name)
def test_learner_exercises_are_placeholders_the_check_reports_as_unanswered(path):
    code = '\n'.join(_code(learner_notebook(json.loads(path.read_text()), path.name)))
    for ex, name in CHECK_RE.findall(code):
        assert re.search(rf'^{name} = \.\.\.  # YOUR CODE HERE$', code, re.M), (ex, name)
        assert check(ex, ...).ok is None

def test_learner_command_writes_every_lesson_and_keeps_a_learners_work(tmp_path, capsys):
    assert main(['lessons', 'learner', '--src', str(LESSONS), '--out', str(tmp_path/'learner')]) == 0
    out = sorted(p.name for p in (tmp_path/'learner').glob('*.ipynb'))
    assert out == sorted(p.name for p in LESSONS.glob('*.ipynb'))
    assert 'solutions removed' in capsys.readouterr().out
    mine = tmp_path/'learner'/NBS[0].name
    mine.write_text('{"my": "work"}')
    assert main(['lessons', 'learner', '--src', str(LESSONS), '--out', str(tmp_path/'learner')]) != 0
    assert 'may hold a learner' in capsys.readouterr().err
    assert mine.read_text() == '{"my": "work"}'

def test_unbalanced_markers_are_refused_before_anything_is_written(tmp_path):
    nb = dict(cells=[dict(cell_type='code', source=f'{BEGIN}\nx = 1\n', metadata={}, outputs=[], execution_count=None)],
              metadata={}, nbformat=4, nbformat_minor=5)
    (tmp_path/'src').mkdir(); (tmp_path/'src'/'01_a.ipynb').write_text(json.dumps(nb))
    with pytest.raises(ValueError, match='01_a.ipynb cell 1: ### BEGIN SOLUTION is never closed'):
        learner_version(tmp_path/'src', tmp_path/'out')
    assert not (tmp_path/'out').exists()

# --- the fastai a learner types ---------------------------------------------------------------------------------------

# Each step of the fastai workflow, as the calls a learner types for it.
STEPS = {'DataBlock': r'\bDataBlock\(|\bget_block\(', 'dataloaders': r'\.(?:weighted_)?dataloaders\(', 'show_batch': r'\.show_batch\(',
         'Learner': r'\bvision_learner\(|\bLearner\(', 'lr_find': r'\.lr_find\(',
         'fine_tune': r'\.fine_tune\(', 'freeze_to': r'\.freeze_to\(', 'fit': r'\.fit_one_cycle\(|\.fit\(',
         'show_results': r'\.show_results\(',
         'interpretation': r'\bClassificationInterpretation\.from_learner\(', 'confusion_matrix': r'\.plot_confusion_matrix\(',
         'top_losses': r'\.plot_top_losses\(', 'most_confused': r'\binterp\w*\.most_confused\('}
# The course's wrappers that would do a step for the learner (fastai has these steps; the lessons show fastai's).
WRAPPERS = {'dataloaders': ['get_dls'], 'Learner': ['course_learner', 'prepare', 'train', 'quickstart'], 'lr_find': ['find_lr', 'train'],
            'fine_tune': ['train', 'fit_recipe'], 'fit': ['train', 'fit_recipe'],
            'interpretation': ['evaluate', 'build_evaluation'], 'confusion_matrix': ['confusion_figure'],
            'top_losses': ['top_losses_figure'], 'most_confused': ['most_confused']}
# What each lesson teaches (lesson 6 trains through the project notebook it runs).
TEACHES = {'01': ['DataBlock', 'dataloaders', 'show_batch', 'Learner', 'lr_find', 'fine_tune', 'show_results'],
           '02': ['DataBlock', 'dataloaders', 'show_batch', 'Learner', 'lr_find', 'fine_tune', 'interpretation'],
           '03': ['DataBlock', 'dataloaders', 'show_batch', 'Learner', 'lr_find', 'fine_tune', 'freeze_to', 'fit', 'show_results'],
           '04': ['DataBlock', 'dataloaders', 'show_batch', 'Learner', 'lr_find', 'fine_tune', 'fit'],
           '05': ['DataBlock', 'dataloaders', 'Learner', 'lr_find', 'fine_tune',
                  'interpretation', 'confusion_matrix', 'top_losses', 'most_confused'],
           '06': ['DataBlock', 'dataloaders', 'Learner', 'lr_find', 'fine_tune'],
           '07': ['DataBlock', 'dataloaders', 'Learner', 'lr_find', 'fine_tune', 'fit', 'interpretation', 'top_losses', 'most_confused']}
PROJECT = LESSONS/'_project_flowers.ipynb'

def _calls(code:str) -> list:
    "Names called in `code` as plain functions (`f(...)`, not `x.f(...)`), from its syntax tree."
    return [n.func.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]

def fastai_calls(paths) -> dict:
    "How many times the code cells of the notebooks at `paths` type each step of `STEPS`."
    code = '\n'.join(src for p in paths for src in _code(json.loads(Path(p).read_text())))
    return {step: len(re.findall(rx, code)) for step, rx in STEPS.items()}

def _lesson(n): return [p for p in NBS if p.name.startswith(n)] + ([PROJECT] if n == '06' else [])

def test_every_pretrained_learner_is_fastais_vision_learner():
    "Each lesson that trains a pretrained body types `vision_learner(` with the one callback; none calls `course_learner(`."
    for n in TEACHES:
        code = '\n'.join(src for p in _lesson(n) for src in _code(json.loads(Path(p).read_text())))
        assert 'course_learner(' not in code, n
        calls = re.findall(r'[^\n]*\bvision_learner\([^\n]*', code)  # whole lines
        assert calls and all('cbs=CachedBody(' in c for c in calls if 'fit_frozen_body' not in c), (n, calls)

def test_every_lesson_types_the_fastai_steps_it_teaches():
    table = {n: fastai_calls(_lesson(n)) for n in TEACHES}
    missing = {n: [s for s in steps if not table[n][s]] for n, steps in TEACHES.items()}
    assert not any(missing.values()), missing
    total = {s: sum(t[s] for t in table.values()) for s in STEPS}
    assert total['fine_tune'] >= 7 and total['interpretation'] >= 3 and total['lr_find'] >= 7, total
    # the DataBlock is built by hand once, with every one of its four answers
    lesson2 = '\n'.join(_code(json.loads(_lesson('02')[0].read_text())))
    assert all(k in lesson2 for k in ('DataBlock(blocks=', 'get_items=', 'splitter=', 'get_y=', 'item_tfms=', 'batch_tfms='))

@pytest.mark.parametrize('n', TEACHES)
def test_no_lesson_does_a_step_it_teaches_through_a_course_wrapper(n):
    code = '\n'.join(src for p in _lesson(n) for src in _code(json.loads(p.read_text())))
    called = set(_calls(code))
    used = {s: sorted(called & set(WRAPPERS.get(s, []))) for s in TEACHES[n]}
    assert not any(used.values()), f'lesson {n} does these steps through course wrappers: {used}'
    assert 'cnn_course.training.recipes import' not in code

def test_the_counter_sees_a_wrapper(tmp_path):
    "The rule above fails on a lesson that trains through the course's `train` instead of fastai's lines."
    nb = dict(cells=[dict(cell_type='code', source="t = train('flowers')\nlearn.fine_tune(1)",
                          metadata={}, outputs=[], execution_count=None)],
              metadata={}, nbformat=4, nbformat_minor=5)
    (tmp_path/'x.ipynb').write_text(json.dumps(nb))
    assert fastai_calls([tmp_path/'x.ipynb'])['fine_tune'] == 1 and fastai_calls([tmp_path/'x.ipynb'])['Learner'] == 0
    assert 'train' in set(_calls(_code(nb)[0])) & set(WRAPPERS['fine_tune'])
