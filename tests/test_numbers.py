"""Numbers that cannot drift: every measured number in lessons/README.md and in the lessons' prose is one a bench
JSON (bench/results/*.json) holds, and the README's measured regions are what tools/render_numbers.py renders."""
import importlib.util, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('render_numbers', ROOT/'tools'/'render_numbers.py')
R = sys.modules['render_numbers'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)

def _cli(*args):
    cmd = [sys.executable, str(ROOT/'tools'/'render_numbers.py'), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)

def test_readme_regions_match_their_rendering():
    r = _cli('--check')
    assert r.returncode == 0, r.stdout + r.stderr

def test_check_names_the_region_that_drifted(tmp_path):
    text = R.README.read_text()
    assert '<!-- measured:projects -->' in text and '<!-- measured:lessons -->' in text
    start = text.index('<!-- measured:projects -->')
    i = text.index('%', start)
    f = tmp_path/'README.md'; f.write_text(text[:i - 1] + ('1' if text[i - 1] != '1' else '2') + text[i:])  # one digit
    r = _cli('--check', '--file', str(f))
    assert r.returncode == 1 and 'projects' in r.stderr and 'lessons,' not in r.stderr, r.stderr
    assert f.read_text() != text  # --check changes nothing
    r = _cli('--file', str(f))
    assert r.returncode == 0 and f.read_text() == text  # rendering puts the measured number back

def test_finder_sees_numbers_with_units_and_skips_shapes():
    got = [(n['shown'], n['kind']) for n in R.find_numbers(
        'It reached 91.3% (0.913) in 104 s, 2.6× faster, 42 img/s, ±2 points; the project 72–85%; '
        'a 7×7 map, 224x224 px, Accuracy of hat: 72 %, 1.5 minutes, on 2026-12-03 with 736 photos.')]
    assert got == [('91.3%', 'percent'), ('0.913', 'fraction'), ('104 s', 'seconds'), ('2.6×', 'ratio'),
                   ('42 img/s', 'rate'), ('2 points', 'points'), ('72%', 'percent'), ('85%', 'percent'),
                   ('72%', 'percent'), ('1.5 minutes', 'minutes')]

def test_a_number_is_in_the_json_when_it_rounds_to_a_json_value(tmp_path):
    (tmp_path/'x.json').write_text('{"acc": 0.913043, "seconds": {"frozen": 96.6}, "lr": 0.0014454, '
                                   '"feedback": "accuracy 65.8% on 38 images; '
                                   'the threshold is 70% (the flowers rubric)"}')
    R.json_values.cache_clear()
    try:
        found = lambda text: [R.in_json(n, tmp_path) for n in R.find_numbers(text)]
        assert found('91.3% 91% 0.913 0.91 97 s 96.6 s 1.6 minutes 65.8%') == [True] * 8
        assert found('91.4% 0.914 96 s 0.0015 67%') == [False] * 5  # not what was measured, to the precision shown
    finally: R.json_values.cache_clear()

def test_settings_and_conventions_are_allowed_with_a_reason():
    assert all(why and callable(ok) for why, ok in R.ALLOWED)
    t = R.threshold_rows()[0]
    ok = lambda text: [R.allowed(n) for n in R.find_numbers(text)]
    assert all(ok(f"Reach **{100*t['value']:.0f}% test accuracy** on the hidden set"))  # a threshold of the registry
    assert all(ok('### Exercise 2.1 (graded: 2 points)'))  # an exercise's points
    assert all(ok('the 95% interval of an accuracy'))  # a convention
    assert all(ok('VGG16 reached 87.5%'))  # what an original project reported
    assert not any(ok('our run reached 91.4% in 96 s'))

def test_readme_quotes_no_number_that_no_json_holds():
    found = R.drift([R.README])
    assert not found, '\n'.join(f"{d['file']} {d['where']}: {d['number']}  …{d['ctx']}…" for d in found)

def test_lessons_quote_no_number_that_no_json_holds():
    files = R.lesson_files()
    assert len(files) >= 7
    found = R.drift(files)
    assert not found, '\n'.join(f"{d['file']} {d['where']}: {d['number']}  …{d['ctx']}…" for d in found)
