"A real class of careless and hostile submissions graded to completion: one row each, fair whatever the others did, nothing leaked."
import csv, io, json, os, re, resource, shutil, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path
import pytest, torch
from cnn_course.models.backbones import HeadCfg
from cnn_course.models.classifier import create_model
from cnn_course.grading.project_class import InstructorError, grade_class, preflight
from cnn_course.grading.hidden_test import TestSet
from cnn_course.grading.gradebook import merge_lms, read_csv, safe_name
from cnn_course.grading.owned import MANIFEST
from cnn_course.data.fetch import make_shapes
from cnn_course.evaluation.rubric import parse_rubric
from cnn_course.inference.runs import load_run, save_run
from cnn_course.training.recipes import train
from conftest import RUBRIC, code_cell, head_key, tamper_run, write_notebook

CLASS_RUBRIC = RUBRIC.replace('time_limit = 120', 'time_limit = 60').replace('memory_gb = 4', 'memory_gb = 1')

pytestmark = pytest.mark.usefixtures('offline_home')  # every test: a fresh, offline course home

def _meta(d, **kw):
    m = json.loads((d/'model.json').read_text()); m.update(kw); (d/'model.json').write_text(json.dumps(m))

def _sized(meta:dict, size:int) -> dict:
    "A model.json that declares another image size consistently (its recipe records the size too)."
    return {**meta, 'size': size, **({'recipe': {**meta['recipe'], 'size': size}} if meta.get('recipe') else {})}

def _hidden(public, dst):
    "The hidden test set: the public test images under names that appear nowhere else."
    for c in sorted((public/'test').iterdir()):
        for i, f in enumerate(sorted(c.iterdir())):
            (dst/c.name).mkdir(parents=True, exist_ok=True); shutil.copy(f, dst/c.name/f'hid{c.name[:2]}{i:03d}q.png')
    return dst

def _deep_notebook(path): path.write_text('{"cells": [' + '['*50_000 + ']'*50_000 + ']}')

def _blank_png():
    import base64, io
    from PIL import Image
    b = io.BytesIO(); Image.new('RGB', (320, 240), 'white').save(b, 'PNG'); return base64.b64encode(b.getvalue()).decode()

@pytest.fixture(scope='module')
def klass(tmp_path_factory):
    mp = pytest.MonkeyPatch(); mp.setenv('CNN_COURSE_OFFLINE', '1')  # undone after the module: no test leaks it
    root = tmp_path_factory.mktemp('class')
    public = make_shapes(root/'public', n_classes=3, size=40, n_per_class=30, seed=0)
    hidden = _hidden(public, root/'hidden')
    good = train('shapes', data=public, size=64, out=root/'good_run').path  # the default recipe: see tests/test_grade.py
    concat = train('shapes', data=public, size=64, head=HeadCfg(pool='concat'), out=root/'concat_run').path
    subs = root/'subs'
    def sub(name, run=good, **kw):
        d = subs/name; shutil.copytree(run, d); write_notebook(d/'notebook.ipynb', **kw); return d
    sub('good'); sub('concat', run=concat); sub('copycat')
    w = sub('below'); tamper_run(w, lambda sd: (sd[head_key(sd, 3)].zero_(),
                                                sd[head_key(sd, 3).replace('weight', 'bias')].copy_(torch.tensor([5., 0, 0]))))
    m = subs/'minmeta'; r = load_run(good); meta = {k: r.meta[k] for k in ('arch', 'classes', 'size', 'mean', 'std', 'head', 'pretrained')}
    save_run(m, r.model, meta); write_notebook(m/'notebook.ipynb')
    (sub('metalist')/'model.json').write_text('[1, 2, 3]')
    _meta(sub('classesint'), classes=5); _meta(sub('classesnull'), classes=[1, None, 'square'])
    _meta(sub('size8000'), size=8000)
    (sub('bigmem')/'model.json').write_text(json.dumps(_sized(json.loads((good/'model.json').read_text()), 1024)))
    _meta(sub('htmlarch'), arch='<b>x</b>|y')
    f = sub('fifo'); (f/'model.json').unlink(); os.mkfifo(f/'model.json')
    n = sub('nbnull'); nb = json.loads((n/'notebook.ipynb').read_text())
    for c in nb['cells']: c['outputs'] = None
    (n/'notebook.ipynb').write_text(json.dumps(nb))
    (sub('nbints')/'notebook.ipynb').write_text('{"cells": [1, 2, 3], "nbformat": 4}')
    _deep_notebook(sub('nbdeep')/'notebook.ipynb')
    e = sub('emptyplot'); (e/'notebook.ipynb').write_text(json.dumps({'cells': [code_cell('# loss accuracy', img=False)] + [
        {**code_cell('plot(loss); plot(accuracy)'),
         'outputs': [{'output_type': 'display_data', 'data': {'image/png': _blank_png()}, 'metadata': {}}]},
        code_cell('run.predict("mine.jpg")', "[('circle', 0.9)]")]}))
    l = sub('linker'); (l/'model.safetensors').unlink(); os.symlink(subs/'good'/'model.safetensors', l/'model.safetensors')
    hid = sorted(p.name for p in hidden.rglob('*.png'))
    sub('hiddenphoto', photo=hid[0])
    n = sub('nan'); tamper_run(n, lambda sd: sd[head_key(sd, 3)].fill_(float('nan')))
    p = sub('pickle'); (p/'model.safetensors').unlink(); (p/'model.pkl').write_bytes(b'\x80\x04N.')
    sub('L' * 250); sub('=HYPERLINK("evil.example";"click")')
    for n in NAMES: sub(n)  # names that must come back unchanged from every output
    sub('cafe').rename(subs/os.fsdecode(b'caf\xe9'))  # a folder name that is not UTF-8
    save_run(subs/'r18', create_model('resnet18', 3, pretrained=False), dict(arch='resnet18', classes=['circle', 'square', 'triangle'],
             size=64, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], head={}, pretrained=True, weights_source='timm hub'))
    write_notebook(subs/'r18'/'notebook.ipynb')
    _meta(sub('permuted'), classes=['triangle', 'square', 'circle'])
    nest = subs/'nested'/'flowers_project'; shutil.copytree(good, nest); write_notebook(nest/'notebook.ipynb')
    many = sub('manyfiles')
    for i in range(10_050): (many/f'a{i:05d}.jpg').write_bytes(b'')
    five = sub('fivenbs')
    for i in range(5): write_notebook(five/f'a_scratch{i}.ipynb', plots=False)
    for s in (1015, 1016, 1017): (subs/f'tiny{s}').mkdir(); (subs/f'tiny{s}'/'model.json').write_text(
        json.dumps(_sized(json.loads((good/'model.json').read_text()), s)))
    (subs/'linkdir').symlink_to(subs/'good'); (subs/'hw.zip').write_bytes(b'PK\x05\x06' + bytes(18))
    (subs/'notes.txt').write_text('not a submission'); (subs/'.DS_Store').write_bytes(b'\0')
    rubric = parse_rubric(CLASS_RUBRIC, 'class rubric')
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tmp = root/'tmp'; tmp.mkdir(); disk = _peak_disk(tmp)
    t0 = time.perf_counter(); g = grade_class(subs, hidden, rubric, out=root/'grades', data=public, progress=False)
    secs, peak, disk_mb = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, disk()
    rows = {r['student']: r for r in read_csv((root/'grades'/'grades.csv').read_bytes().decode())}
    print(f'\nclass of {len(rows)}: graded in {secs:.0f} s, grader memory growth {(peak - peak0)/1024:.0f} MB, '
          f'peak temporary disk {disk_mb:.0f} MB')  # shown with -s
    yield dict(root=root, subs=subs, public=public, hidden=hidden, rubric=rubric, g=g, rows=rows, secs=secs,
                growth_mb=(peak - peak0)/1024, disk_mb=disk_mb)
    mp.undo()

NAMES = ['cr\rname', 'lf\nname', 'x', "'x", '=x', 'tab\tname', 'comma, "quoted"', 'ünï 名前 ✓']

def _peak_disk(folder):
    "Make `folder` every temporary folder's home (grading work included) and measure its peak size (MB) until called."
    tempfile.tempdir, stop, peak = str(folder), threading.Event(), [0]
    def poll():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], sum(f.stat().st_size for f in folder.rglob('*') if f.is_file() and not f.is_symlink()))
    t = threading.Thread(target=poll, daemon=True); t.start()
    def done(): stop.set(); t.join(); tempfile.tempdir = None; return peak[0] / 2**20
    return done

EXPECTED = {  # student: (transfer, plots, accuracy, words in the reason of each zero / the feedback)
    'good': (1, 1, 1, 'hidden test accuracy'), 'copycat': (1, 1, 1, 'hidden test accuracy'), 'minmeta': (1, 1, 1, 'not recorded'),
    'below': (1, 1, 0, 'margin'), 'metalist': (0, 1, 0, 'must hold a JSON object'), 'classesint': (0, 1, 0, "field 'classes'"),
    'classesnull': (0, 1, 0, "field 'classes'"), 'size8000': (0, 1, 0, "field 'size'"), 'htmlarch': (0, 1, 0, "field 'arch'"),
    'fifo': (0, 1, 0, 'not a regular file'), 'bigmem': (1, 1, 0, 'memory'), 'nbnull': (1, 0, 1, 'no loss plot found'),
    'nbints': (1, 0, 1, 'no loss plot found'), 'nbdeep': (1, 0, 1, 'nested too deeply'), 'emptyplot': (1, 0, 1, 'no loss plot found'),
    'linker': (0, 1, 0, 'symbolic link'), 'hiddenphoto': (1, 1, 1, 'a photo of your own'), 'nan': (0, 1, 0, 'not finite'),
    'pickle': (0, 1, 0, 'only the pickle(s)'), 'L' * 250: (1, 1, 1, 'hidden test accuracy'),
    '=HYPERLINK("evil.example";"click")': (1, 1, 1, 'hidden test accuracy'),
    **{n: (1, 1, 1, 'hidden test accuracy') for n in NAMES}, 'caf\\xe9': (1, 1, 1, 'hidden test accuracy'),
    'r18': (0, 1, 0, 'no pretrained weights for resnet18'), 'permuted': (1, 1, 0, 'in another order'),
    'nested': (1, 1, 1, 'were found in the folder flowers_project/'), 'manyfiles': (1, 1, 1, 'hidden test accuracy'),
    'fivenbs': (1, 1, 1, 'hidden test accuracy'), **{f'tiny{s}': (0, 0, 0, 'model.safetensors') for s in (1015, 1016, 1017)},
    'linkdir': (0, 0, 0, 'symbolic link'), 'hw.zip': (0, 0, 0, 'archive'), 'notes.txt': (0, 0, 0, 'single file')}

def _feedback(klass, student):
    return (klass['root']/'grades'/'feedback'/f'{safe_name(student)}.md').read_text()

@pytest.mark.parametrize('student', EXPECTED, ids=lambda s: s[:20])
def test_each_student_gets_expected_points_and_a_reason(klass, student):
    t, p, a, why = EXPECTED[student]
    r = next(r for r in klass['g'].results if r.student == student)
    assert (r.points['transfer'], r.points['plots'], r.points['accuracy']) == (t, p, a), r.reasons
    assert all(r.reasons[c] for c, v in r.points.items() if v == 0), r.reasons
    assert why in ' '.join(r.reasons.values()) + ' '.join(r.notes), r.reasons
    assert why.split("'")[0].replace('|', '') in _feedback(klass, student).replace('\\', '')

def test_one_row_per_student_and_the_class_completes(klass):
    n = len([p for p in klass['subs'].iterdir() if not p.name.startswith('.')])
    assert len(klass['rows']) == n >= 40 and {r.student for r in klass['g'].results} == set(EXPECTED) | {'concat'}
    assert (klass['root']/'grades'/'summary.md').exists() and len(list((klass['root']/'grades'/'feedback').glob('*.md'))) == n

def test_grades_do_not_depend_on_order_or_workers(klass, tmp_path):
    "The same class in reverse order with two workers, and the good student alone, first and last: identical rows."
    subs = sorted(klass['subs'].iterdir())
    grade_class(subs[::-1], klass['hidden'], klass['rubric'], out=tmp_path/'rev', data=klass['public'], progress=False, workers=2)
    assert (tmp_path/'rev'/'grades.csv').read_bytes() == (klass['root']/'grades'/'grades.csv').read_bytes()
    good = klass['subs']/'good'
    for order in ([good], [good, klass['subs']/'concat'], [klass['subs']/'concat', klass['subs']/'below', good]):
        g = grade_class(order, klass['hidden'], klass['rubric'], data=klass['public'], progress=False)
        assert next(r for r in g.rows() if r['student'] == 'good') == next(r for r in klass['g'].rows() if r['student'] == 'good')
    concat = next(r for r in klass['g'].results if r.student == 'concat')
    assert concat.accuracy is not None and 'running_mean' not in ' '.join(concat.reasons.values())

def test_hidden_test_names_never_reach_feedback(klass):
    names = [p.name for p in klass['hidden'].rglob('*.png')]
    assert len(names) >= 12
    for f in (klass['root']/'grades'/'feedback').iterdir():
        text = f.read_text()
        assert not [n for n in names if n in text or Path(n).stem in text], f
    assert str(klass['hidden']) not in (klass['root']/'grades'/'grades.csv').read_text()

def test_outputs_are_safe_to_open(klass):
    text = (klass['root']/'grades'/'grades.csv').read_bytes().decode()
    cells = [r['student'] for r in csv.DictReader(io.StringIO(text, newline=''))]
    assert '\'=HYPERLINK("evil.example";"click")' in cells and not [c for c in cells if c[:1] in '=+-@']
    md = _feedback(klass, 'htmlarch')
    assert '<b>' not in md
    assert {len(re.findall(r'(?<!\\)\|', l)) for l in md.splitlines() if l.startswith('| ')} == {6}
    assert all(len(f.name) <= 80 for f in (klass['root']/'grades'/'feedback').iterdir())
    assert not [f for f in (klass['root']/'grades'/'feedback').iterdir() if str(klass['root']) in f.read_text()]  # no grader paths

def test_identical_models_and_links_are_listed_for_review(klass):
    s = (klass['root']/'grades'/'summary.md').read_text()
    line = next(l for l in s.splitlines() if 'identical model weights' in l)
    assert 'copycat' in line and 'good' in line
    assert 'linker: model.safetensors is a symbolic link' in s.replace('\\', '')
    assert next(r for r in klass['g'].results if r.student == 'copycat').total == 3  # listed, not penalised

def test_hostile_inputs_are_refused_for_what_they_are_and_memory_stays_bounded(klass):
    """A FIFO is refused from its `stat` (opening one would block), an 8000 px size from model.json, a huge model by the
    memory limit: each with its reason and no accuracy; the grader process itself never holds a student's model."""
    res = {r.student: r for r in klass['g'].results}
    for student, says in (('fifo', 'not a regular file'), ('size8000', "field 'size'"), ('bigmem', 'memory')):
        r = res[student]
        assert r.accuracy is None and any(says in why for why in r.reasons.values()), (student, r.reasons)
    assert klass['growth_mb'] < 500, klass['growth_mb']

def test_out_with_an_earlier_grading_needs_overwrite_and_is_replaced_whole(klass, tmp_path):
    out = tmp_path/'g'; two = [klass['subs']/'good', klass['subs']/'below']
    grade_class(two, klass['hidden'], klass['rubric'], out=out, progress=False)
    with pytest.raises(InstructorError, match='--overwrite'):
        grade_class(two[:1], klass['hidden'], klass['rubric'], out=out, progress=False)
    (out/'feedback'/'stale_student.md').write_text('added by hand')
    with pytest.raises(InstructorError, match='did not write.*stale_student.md'):
        grade_class(two[:1], klass['hidden'], klass['rubric'], out=out, progress=False, overwrite=True)
    (out/'feedback'/'stale_student.md').unlink()
    grade_class(two[:1], klass['hidden'], klass['rubric'], out=out, progress=False, overwrite=True)
    assert sorted(p.name for p in (out/'feedback').iterdir()) == ['good.html', 'good.md']
    (tmp_path/'other').mkdir(); (tmp_path/'other'/'thesis.tex').write_text('x')
    with pytest.raises(InstructorError, match='not a grading folder'):
        grade_class(two, klass['hidden'], klass['rubric'], out=tmp_path/'other', overwrite=True, progress=False)

def test_instructor_problems_stop_before_any_grading(klass, tmp_path):
    bad = tmp_path/'hidden'; shutil.copytree(klass['hidden'], bad)
    (next((bad/'circle').iterdir())).write_bytes(b'not an image')
    with pytest.raises(InstructorError, match='cannot be used') as e:
        grade_class([klass['subs']/'good'], bad, klass['rubric'], out=tmp_path/'g', progress=False)
    assert 'circle/' in str(e.value) and not (tmp_path/'g').exists()
    (bad/'square').rename(tmp_path/'gone'); (bad/'square').mkdir()
    with pytest.raises(InstructorError, match='square hold no images'):
        grade_class([klass['subs']/'good'], bad, klass['rubric'], progress=False)
    allowed = parse_rubric(CLASS_RUBRIC.replace('allowed = []', 'allowed = ["resnet18", "tf_efficientnet_lite0"]'))
    with pytest.raises(InstructorError, match='No pretrained weights on this machine for: no pretrained weights for resnet18'):
        grade_class([klass['subs']/'good'], klass['hidden'], allowed, progress=False)  # the instructor's own rubric names it

def test_ntsnet_runs_are_graded_for_transfer(klass, tmp_path):
    "NTS-Net's body is compared with its base backbone's pretrained weights (here a stand-in resnet50 file)."
    import timm
    from cnn_course.models.weights import course_weights_file, save_weights
    save_weights(timm.create_model('resnet50', pretrained=False).state_dict(), course_weights_file('resnet50'))
    meta = dict(classes=['circle', 'square', 'triangle'], size=64, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], head={},
                arch='ntsnet')
    claims = {**meta, 'pretrained': True, 'weights_source': 'course weights'}
    save_run(tmp_path/'subs'/'pre', create_model('ntsnet', 3, pretrained=True), claims)
    save_run(tmp_path/'subs'/'liar', create_model('ntsnet', 3, pretrained=False), claims)
    g = {r.student: r for r in grade_class(tmp_path/'subs', klass['hidden'], klass['rubric'], progress=False).results}
    assert g['pre'].points['transfer'] == 1, g['pre'].reasons
    assert g['liar'].points['transfer'] == 0 and 'random init' in g['liar'].reasons['transfer']
    assert g['pre'].accuracy is not None  # evaluated, not an error

# Issue: an instructor's data is sacred (each test below failed on the grader before it).

def _snapshot(folder): return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}

def test_overwrite_never_deletes_what_the_grader_did_not_write(klass, tmp_path):
    "A folder holding an instructor's files beside a summary.md (and the submissions, and the hidden test set) is never touched."
    out = tmp_path/'course'; out.mkdir(); (out/'summary.md').write_text('my own summary'); (out/'notes.txt').write_text('notes')
    shutil.copytree(klass['subs']/'good', out/'subs'/'good'); shutil.copytree(klass['hidden'], out/'hidden')
    before = _snapshot(out)
    for args in ((out/'subs', out/'hidden'), ([klass['subs']/'good'], klass['hidden'])):
        for overwrite in (False, True):
            with pytest.raises(InstructorError, match='holds the submissions|not a grading folder'):
                grade_class(args[0], args[1], klass['rubric'], out=out, overwrite=overwrite, progress=False)
    assert _snapshot(out) == before
    with pytest.raises(InstructorError, match='lies inside the submissions'):
        grade_class(klass['subs'], klass['hidden'], klass['rubric'], out=klass['subs']/'grades', progress=False)

def test_a_kill_between_the_renames_is_recovered_by_the_next_run(klass, tmp_path):
    out = tmp_path/'g'; one = [klass['subs']/'good']; mine = tmp_path/'mine.txt'; mine.write_text('instructor')
    grade_class(one, klass['hidden'], klass['rubric'], out=out, progress=False)
    code = (f'from cnn_course.grading.project_class import grade_class; from cnn_course.evaluation.rubric import parse_rubric\n'
            f'grade_class([{str(one[0])!r}], {str(klass["hidden"])!r}, parse_rubric({CLASS_RUBRIC!r}), out={str(out)!r}, '
            f'progress=False, overwrite=True, formats=("canvas",))')
    p = subprocess.run([sys.executable, '-c', code], env={**os.environ, 'CNN_COURSE_KILL_AT': 'moved-old'}, capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert not out.exists() and len(list(tmp_path.glob('.g.*'))) == 2  # both gradings beside it, as the kill left them
    grade_class(one, klass['hidden'], klass['rubric'], out=out, progress=False, overwrite=True)
    assert (out/'grades.csv').exists() and not (out/'lms.csv').exists() and not list(tmp_path.glob('.g.*'))
    assert mine.read_text() == 'instructor' and (out/MANIFEST).exists()

def test_out_dot_is_refused_before_any_grading(klass, tmp_path):
    cli = Path(sys.executable).parent/'cnn-course'
    p = subprocess.run([str(cli), 'grade', 'subs', '--test-data', str(klass['hidden']), '--out', '.'], cwd=klass['root'],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and 'holds the submissions' in p.stderr and 'Traceback' not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (klass['root']/MANIFEST).exists()

def test_names_round_trip_through_every_export(klass, tmp_path):
    names = [r.student for r in klass['g'].results]
    assert set(NAMES) | {'caf\\xe9'} <= set(names) and len(set(names)) == len(names)
    g = klass['g']; g.save(tmp_path/'g', formats=('gradescope', 'canvas'))
    csv_rows = read_csv((tmp_path/'g'/'grades.csv').read_bytes().decode())
    assert [r['student'] for r in csv_rows] == names and all(float(r['total']) == x.total for r, x in zip(csv_rows, g.results))
    lms = read_csv((tmp_path/'g'/'lms.csv').read_bytes().decode())
    assert sorted(r['Student ID'] for r in lms) == sorted(names)
    merged = read_csv(merge_lms({'P1': tmp_path/'g'/'grades.csv', 'P2': tmp_path/'g'/'grades.csv'}))
    assert sorted(r['Student ID'] for r in merged) == sorted(names) and all(r['P1'] == r['P2'] for r in merged)
    got = {json.loads(f.read_text())['extra_data']['student'] for f in (tmp_path/'g'/'gradescope').iterdir()}
    assert got == set(names)
    assert len({safe_name(n) for n in names}) == len(names)
    assert 'not UTF-8' in (klass['root']/'grades'/'summary.md').read_text()

def test_every_entry_gets_a_row_and_the_summary_names_what_was_not_graded(klass):
    s = (klass['root']/'grades'/'summary.md').read_text().replace('\\', '')
    assert 'not graded (a zero row with the reason): hw.zip, linkdir, notes.txt' in s and 'skipped hidden entries: .DS_Store' in s
    assert 'transfer could not be checked for r18' in s

def test_the_preflight_decodes_at_shared_sizes_only(klass, tmp_path):
    "Ten 1 KB submissions declaring sizes 1015-1024 once made the grader decode the test set ten times; now once, small."
    meta = json.loads((klass['subs']/'good'/'model.json').read_text())
    test = TestSet(klass['hidden'])
    refs, missing = preflight(test, klass['rubric'], [_sized(meta, s) for s in range(1015, 1025)], tmp_path)
    assert list(test.pixel_files) == [64] and sum(f.stat().st_size for f in tmp_path.glob('pixels_*')) < 2**20
    res = {r.student: r for r in klass['g'].results}
    assert all(res[f'tiny{s}'].seconds < 30 for s in (1015, 1016, 1017))

def test_a_class_of_forty_stays_within_memory_and_disk_bounds(klass):
    assert len(klass['g'].results) >= 40
    assert klass['growth_mb'] < 500, klass['growth_mb']  # the grader itself never holds a student's model
    # Temporary disk: the staged copies of what the class handed in (run files and notebooks, each capped), plus the
    # grader's own shared work (test-set pixels at the shared sizes, features), all removed at the end.
    handed_in = sum(f.stat().st_size for f in klass['subs'].rglob('*') if f.is_file() and not f.is_symlink()) / 2**20
    assert klass['disk_mb'] < handed_in + 32, (klass['disk_mb'], handed_in)
    assert not list(Path(klass['root']/'tmp').glob('cnn_course_*'))  # the grading's work folder is gone
