"Staging picks the files the grader reads whatever else a submission holds (issue 27, failure 5)."
import os, time
from pathlib import Path
from cnn_course.inference.runs import RUN_FILES
from cnn_course.grading.sandbox import stage_submission

MB = 2**20

def _run(d:Path, nb:str|None='notebook.ipynb') -> Path:
    "A fake run (the staging only copies bytes) and its notebook in `d`."
    d.mkdir(parents=True, exist_ok=True)
    (d/'model.json').write_text('{"arch": "resnet18"}'); (d/'model.safetensors').write_bytes(b'\0'*64)
    (d/'history.csv').write_text('epoch,train_loss\n0,1.0\n')
    if nb: (d/nb).write_text('{"cells": []}')
    return d

def _staged(dst:Path) -> list: return sorted(p.name for p in dst.iterdir())

def test_run_files_are_found_among_many_photos(tmp_path):
    "10,050 photos sorting before model.json: the run files and the notebook are still staged."
    s = _run(tmp_path/'s')
    for i in range(10_050): (s/f'a{i:05d}.jpg').touch()
    info = stage_submission(s, tmp_path/'dst', MB)
    assert set(RUN_FILES) | {'notebook.ipynb'} <= set(info['hashes']), sorted(info['hashes'])
    assert {*RUN_FILES, 'notebook.ipynb'} <= set(_staged(tmp_path/'dst'))
    assert info['notebook'] == 'notebook.ipynb' and not info['refused']

def test_notebook_ipynb_wins_over_notebooks_sorting_before_it(tmp_path):
    "Five scratch notebooks sort before notebook.ipynb: notebook.ipynb is staged and is the one graded."
    s = _run(tmp_path/'s')
    for i in range(5): (s/f'a_scratch{i}.ipynb').write_text('{"cells": [1]}')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert 'notebook.ipynb' in info['hashes'], sorted(info['hashes'])
    assert info['notebook'] == 'notebook.ipynb'
    assert sum(n.endswith('.ipynb') for n in info['hashes']) <= 5  # the others only up to max_notebooks

def test_one_top_folder_is_staged_with_a_note(tmp_path):
    "A Gradescope upload of one folder (plus macOS debris): staged from it, and the student is told."
    s = tmp_path/'s'; _run(s/'flowers_project'); (s/'__MACOSX'/'flowers_project').mkdir(parents=True)
    (s/'__MACOSX'/'flowers_project'/'._model.json').write_bytes(b'\0'); (s/'.DS_Store').write_bytes(b'\0')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert {*RUN_FILES, 'notebook.ipynb'} <= set(info['hashes']), (sorted(info['hashes']), info.get('notes'))
    assert info['root'] == 'flowers_project' and info['notebook'] == 'notebook.ipynb'
    assert any('flowers_project/' in n and 'top level' in n for n in info['notes']), info['notes']
    assert (tmp_path/'dst'/'model.json').read_text() == (s/'flowers_project'/'model.json').read_text()

def test_two_folders_with_runs_stage_nothing_and_name_both(tmp_path):
    s = tmp_path/'s'; _run(s/'try1'); _run(s/'try2'); (s/'photos').mkdir(); (s/'photos'/'rose.jpg').touch()
    info = stage_submission(s, tmp_path/'dst', MB)
    assert info['hashes'] == {} and _staged(tmp_path/'dst') == [] and info['root'] == ''
    note = ' '.join(info['notes'])
    assert 'try1/' in note and 'try2/' in note and 'photos' not in note, info['notes']

def test_a_symlinked_folder_is_named_not_entered(tmp_path):
    "A link to someone else's run is never followed, even when it is the only folder."
    other = _run(tmp_path/'other_student'); s = tmp_path/'s'; s.mkdir(); os.symlink(other, s/'project')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert info['hashes'] == {} and _staged(tmp_path/'dst') == [] and info['root'] == ''
    assert info['links'] == {'project': str(other)}
    assert any('project' in n and 'symbolic link' in n for n in info['notes']), info['notes']

def test_a_huge_folder_is_scanned_in_bounded_time(tmp_path):
    "20,000 entries: staged in well under a second or two; the scan bound is recorded when it is reached."
    s = _run(tmp_path/'s')
    for i in range(20_000): (s/f'z{i:05d}.jpg').touch()
    t0 = time.perf_counter(); info = stage_submission(s, tmp_path/'dst', MB); secs = time.perf_counter() - t0
    assert secs < 5, secs
    assert {*RUN_FILES, 'notebook.ipynb'} <= set(info['hashes']) and info['scan_stopped'] is False
    t0 = time.perf_counter(); info = stage_submission(s, tmp_path/'dst2', MB, max_entries=1_000)
    assert time.perf_counter() - t0 < 5
    assert info['scan_stopped'] is True and any('1,000' in n for n in info['notes']), info['notes']
    assert {*RUN_FILES, 'notebook.ipynb'} <= set(info['hashes'])  # named files never depend on the scan

def test_a_single_notebook_of_another_name_is_graded_with_a_note(tmp_path):
    s = _run(tmp_path/'s', nb='my_project.ipynb')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert info['notebook'] == 'my_project.ipynb' and 'my_project.ipynb' in info['hashes']
    assert any('my_project.ipynb' in n and 'notebook.ipynb' in n for n in info['notes']), info['notes']

def test_several_notebooks_of_other_names_pick_none_and_say_why(tmp_path):
    s = _run(tmp_path/'s', nb='flowers.ipynb'); (s/'scratch.ipynb').write_text('{}')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert info['notebook'] is None
    note = ' '.join(info['notes'])
    assert 'flowers.ipynb' in note and 'scratch.ipynb' in note, note
    assert 'name the one to be graded notebook.ipynb' in note, note

def test_a_refused_notebook_ipynb_is_not_replaced_by_another(tmp_path):
    "notebook.ipynb is a link: it is refused with its reason, and no other notebook is graded in its place."
    s = _run(tmp_path/'s', nb='scratch.ipynb'); os.symlink(s/'scratch.ipynb', s/'notebook.ipynb')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert info['notebook'] is None and 'symbolic link' in info['refused']['notebook.ipynb']

def test_lesson_patterns_pick_each_lessons_notebook_first(tmp_path):
    "Glob patterns: each lesson's first notebook is staged before any other, whatever the cap on the rest."
    s = tmp_path/'s'; s.mkdir()
    for i in range(30): (s/f'00_extra{i:02d}.ipynb').write_text('{}')
    for l in (1, 2, 7): (s/f'{l:02d}_lesson.ipynb').write_text('{}')
    pats = tuple(f'{l:02d}_*.ipynb' for l in (1, 2, 7))
    info = stage_submission(s, tmp_path/'dst', MB, max_notebooks=4, notebooks=pats)
    assert info['notebooks'] == {p: p[:3] + 'lesson.ipynb' for p in pats}
    assert {'01_lesson.ipynb', '02_lesson.ipynb', '07_lesson.ipynb'} <= set(info['hashes'])
    assert sum(n.endswith('.ipynb') for n in info['hashes']) == 4

def test_the_total_byte_cap_never_pushes_out_the_run_or_the_notebook(tmp_path):
    s = _run(tmp_path/'s'); (s/'model.safetensors').write_bytes(b'\0'*900)
    (s/'notebook.ipynb').write_bytes(b'{}' + b' '*900)
    for i in range(3): (s/f'a{i}.ipynb').write_bytes(b' '*600)
    info = stage_submission(s, tmp_path/'dst', 1000, max_total=1500)
    assert {*RUN_FILES, 'notebook.ipynb'} <= set(info['hashes'])
    assert not any(n.startswith('a') for n in info['hashes']) and not info['refused']

def test_pickles_links_and_fifos_are_recorded_without_blocking(tmp_path):
    s = _run(tmp_path/'s'); (s/'model.json').unlink(); os.mkfifo(s/'model.json')
    (s/'best.PTH').write_bytes(b'\x80'); os.symlink('/etc/passwd', s/'history.csv.bak'); (s/'history.csv').unlink()
    os.symlink('/etc/passwd', s/'history.csv')
    info = stage_submission(s, tmp_path/'dst', MB)
    assert 'not a regular file' in info['refused']['model.json'] and 'symbolic link' in info['refused']['history.csv']
    assert info['pickles'] == ['best.PTH'] and (tmp_path/'dst'/'best.PTH').stat().st_size == 0
    assert info['links'] == {'history.csv': '/etc/passwd', 'history.csv.bak': '/etc/passwd'}
    assert _staged(tmp_path/'dst') == ['best.PTH', 'model.safetensors', 'notebook.ipynb']
