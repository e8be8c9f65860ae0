"The bench scripts' small modes run in CI, so a bench cannot rot between the runs that measure."
import json, os, subprocess, sys
from pathlib import Path
BENCH = Path(__file__).parents[1]/'bench'

def test_augment_cache_small_measures_both_sides(tmp_path):
    out = tmp_path/'augment_cache.json'
    r = subprocess.run([sys.executable, str(BENCH/'augment_cache.py'), '--small', '--views', '2', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [(x['dataset'], x['views']) for x in res['runs']] == [('shapes', 0), ('shapes', 2)]
    said = [x['augmentation'] for x in res['runs']]
    assert 'NOT applied' in said[0] and 'applied to 2 cached view(s)' in said[1]
    for x in res['runs']: assert 0 <= x['test_accuracy'] <= 1 and x['seconds']['features'] > 0 and x['n_test'] > 0
    assert set(res['gain']['shapes']) == {'valid', 'test', 'extra_feature_s'}

def test_fine_tune_small_runs_the_three_recipes(tmp_path):
    out = tmp_path/'fine_tune.json'
    r = subprocess.run([sys.executable, str(BENCH/'fine_tune.py'), '--small', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [x['recipe'] for x in res['runs']] == ['head', 'top', 'fine_tune'] and set(res['summary']) == {
        'shapes/head', 'shapes/top', 'shapes/fine_tune'}
    for x in res['runs']: assert x['test_interval'][0] <= x['test_accuracy'] <= x['test_interval'][1]
    phases = [set(x['seconds']) for x in res['runs']]
    assert 'unfrozen' in phases[2] and 'top' in phases[1] and not {'top', 'unfrozen'} & phases[0]
