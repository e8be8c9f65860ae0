"""Every bench script's small mode runs in CI, so a bench cannot rot between the runs that measure: each in a real
process, offline, on generated data, its JSON written to a temporary --out and never to bench/results.
tools/pin_source.py runs on a local clone."""
import hashlib, importlib.util, json, os, subprocess, sys
from pathlib import Path
from types import SimpleNamespace
import pytest

ROOT = Path(__file__).parents[1]
BENCH, RESULTS = ROOT/'bench', ROOT/'bench'/'results'
HELPERS = {'_cold.py'}  # imported by the scripts (cold runs, where the JSON goes), never run itself

def _module(path:Path):
    spec = importlib.util.spec_from_file_location(path.stem, path); m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m); return m

def _frac(x): return isinstance(x, (int, float)) and 0 <= x <= 1

def _augment_cache(res):
    assert [(x['dataset'], x['views']) for x in res['runs']] == [('shapes', 0), ('shapes', 2)]
    said = [x['augmentation'] for x in res['runs']]
    assert 'NOT applied' in said[0] and 'applied to 2 cached view(s)' in said[1]
    for x in res['runs']: assert _frac(x['test_accuracy']) and x['seconds']['features'] > 0 and x['n_test'] > 0
    assert set(res['gain']['shapes']) == {'valid', 'test', 'extra_feature_s'}

def _cli_start(res):
    assert res['small']
    assert [r['command'] for r in res['rows']] == ['cnn-course --help', 'cnn-course datasets', 'cnn-course backbones']
    for r in res['rows']:
        assert len(r['seconds']) == 1 and 0 < r['median_s'] < 60
        assert set(r['imports']) <= {'torch', 'torchvision', 'fastai', 'timm'}

def _fine_tune(res):
    assert [x['recipe'] for x in res['runs']] == ['head', 'top', 'fine_tune'] and set(res['summary']) == {
        'shapes/head', 'shapes/top', 'shapes/fine_tune'}
    for x in res['runs']: assert x['test_interval'][0] <= x['test_accuracy'] <= x['test_interval'][1]
    phases = [set(x['seconds']) for x in res['runs']]
    assert 'unfrozen' in phases[2] and 'top' in phases[1] and not {'top', 'unfrozen'} & phases[0]

def _grade_class(res):
    assert res['small'] and res['submissions'] == 5 and res['test_images'] > 0
    assert [(g['cls'], g['workers']) for g in res['gradings']] == [('distinct', 2), ('shared', 2)]
    for g in res['gradings']: assert sum(g['totals'].values()) == 5 and g['seconds'] > 0
    distinct, shared = res['gradings']
    assert len(distinct['accuracies']) == 5 and all(_frac(v) for v in distinct['accuracies'].values())
    assert len(shared['accuracies']) == 1  # copies of one run: one accuracy; the 4 broken ones have none

def _lessons(res):
    assert res['size'] == 'small' and [x['lesson'] for x in res['lessons']] == ['00_foundations'] and res['all_ok']
    (lesson,) = res['lessons']
    assert lesson['runs'] and all(r['dataset'] == 'shapes' and _frac(r['accuracy']) for r in lesson['runs'].values())
    assert lesson['thresholds'] and all({'run', 'passed', 'feedback'} <= set(t) for t in lesson['thresholds'].values())
    assert len(res['projects']) == 6 and res['projects_md'].startswith('| project |')

def _onnx_engine(res):
    assert res['small'] and res['dataset'] == 'shapes'
    (row,) = res['rows']
    assert row['within_tolerance'] and row['torch']['images'] == row['onnx']['images'] == 16 and row['speedup'] > 0
    assert row['onnx']['export_and_check_s'] > 0 and row['torch']['export_and_check_s'] == 0

def _throughput(res):
    assert res['small']
    assert [r['what'] for r in res['results']] == ['bare_train', 'ours_train', 'bare_infer', 'ours_infer']
    for r in res['results']: assert r['img_s'] > 0 and r['peak_mib'] > 0

def _time_to_accuracy(res):
    assert res['small'] and 'error' not in json.dumps(res)
    (row,) = res['table']
    assert row['dataset'] == 'shapes'
    assert all(_frac(row[k]) for k in ('head_only', 'head_tta', 'finetuned', 'finetuned_tta'))
    assert row['finetune_s'] is not None and res['finetune_helps_on'] in (0, 1)
    assert res['plain_fastai']['epochs'][0]['phase'] == 'frozen' and _frac(res['plain_fastai']['test_accuracy'])
    assert set(res['flowers']) == {'cold_085', 'warm_085', 'cold_093'}
    for r in res['flowers'].values():
        assert isinstance(r['passed'], bool) and r['wall_s'] > 0 and _frac(r['test_accuracy'])
    cold, warm = (res['flowers'][k]['phases'] for k in ('cold_085', 'warm_085'))
    assert warm['features'] < cold['features']  # the warm run reads the features the cold one cached
    e = res['ensemble']  # the three Lites, their concatenation and their mean, chosen on valid
    lites = [f'tf_efficientnet_lite{i}' for i in range(3)]
    assert list(e['combinations']) == [*lites, 'concat', 'mean'] and e['chosen'] in e['combinations']
    assert e['target'] == '>= 0.93 test in <= 300 s, combination chosen on valid' and isinstance(e['passed'], bool)
    assert all(_frac(c['valid_accuracy']) and _frac(c['test_accuracy']) for c in e['combinations'].values())
    chosen = e['combinations'][e['chosen']]
    assert chosen['valid_accuracy'] == max(c['valid_accuracy'] for c in e['combinations'].values())
    assert (e['valid_accuracy'], e['test_accuracy']) == (chosen['valid_accuracy'], chosen['test_accuracy'])
    assert e['best_test_any'] == max(c['test_accuracy'] for c in e['combinations'].values())
    assert list(e['backbones']) == lites and all(b['size'] == 64 and b['features_s'] > 0 for b in e['backbones'].values())
    assert e['wall_s'] > max(b['features_s'] for b in e['backbones'].values()) and e['photos']['test'] > 0
    b = res['busy']  # quiet, one core kept busy, busy with a thread per core: the same run three times
    assert b['target'].startswith('one core kept busy') and isinstance(b['passed'], bool)
    assert all(_frac(b[k]['test_accuracy']) and b[k]['wall_s'] > 0 for k in ('quiet', 'one_core_busy', 'every_core_threads'))
    assert b['slowdown'] == round(b['one_core_busy']['wall_s'] / b['quiet']['wall_s'], 2) and b['passed'] == (b['slowdown'] <= 2)

SMALL = {  # script: (arguments besides --small and --out, check of the JSON it wrote)
    'augment_cache.py': (['--views', '2'], _augment_cache),
    'cli_start.py': ([], _cli_start),
    'fine_tune.py': ([], _fine_tune),
    'grade_class.py': ([], _grade_class),
    'lessons.py': ([], _lessons),
    'onnx_engine.py': ([], _onnx_engine),
    'throughput.py': ([], _throughput),
    'time_to_accuracy.py': ([], _time_to_accuracy),
}

def _results():
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(RESULTS.glob('*'))}

@pytest.fixture(scope='module')
def results_before(): return _results()

def test_every_bench_script_has_a_small_run_here():
    "A new bench script cannot land without a small mode that this file runs."
    have = {p.name for p in BENCH.glob('*.py')}
    assert set(SMALL) | HELPERS == have, f'{sorted(have - set(SMALL) - HELPERS)}: give it --small and an entry in SMALL'
    for name in SMALL: assert "'--small'" in (BENCH/name).read_text(), name
    for name in HELPERS: assert '__main__' not in (BENCH/name).read_text(), f'{name} became a script: move it to SMALL'

@pytest.mark.parametrize('script', sorted(SMALL))
def test_small_mode_runs_and_writes_its_json(script, tmp_path, results_before):
    args, check = SMALL[script]
    out = tmp_path/'out'/'result.json'
    env = {**os.environ, 'CNN_COURSE_HOME': str(tmp_path/'home'), 'CNN_COURSE_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    env.pop('CNN_COURSE_DATA', None)  # a small run needs no photos
    r = subprocess.run([sys.executable, str(BENCH/script), '--small', *args, '--out', str(out)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    assert r.stdout.rstrip().endswith(text.rstrip())  # printed as written
    check(json.loads(text))
    assert _results() == results_before, 'a small run changed bench/results'

def test_a_small_run_refuses_to_write_into_bench_results(tmp_path):
    cold = _module(BENCH/'_cold.py')
    with pytest.raises(SystemExit, match='never writes into'): cold.out_file(RESULTS/'throughput.json', small=True)
    assert cold.out_file(None, small=True) is None
    assert cold.out_file(None, small=False, default='x.json') == RESULTS/'x.json'
    assert cold.out_file(tmp_path/'a'/'b.json', small=True) == tmp_path/'a'/'b.json' and (tmp_path/'a').is_dir()
    r = subprocess.run([sys.executable, str(BENCH/'throughput.py'), '--small', '--out', str(RESULTS/'throughput.json')],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and 'never writes into' in r.stderr and not (RESULTS/'throughput.json').exists()

# tools/pin_source.py talks to no network: it reads a clone. Here, a local repository stands in for GitHub's.
PIN_SOURCE = ROOT/'tools'/'pin_source.py'

def _git(*args, cwd=None):
    return subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

def test_pin_source_recomputes_the_digest_from_a_local_clone(tmp_path, monkeypatch, capsys):
    from cnn_course.data.sources import Pin, git_blob_id, plan, selection_digest
    files = {f'photos/{c}/{c}_{i:02d}.jpg': f'{c} {i}'.encode() for c in ('cat', 'dog') for i in range(10)}
    files.update({'README.md': b'not a photo', 'photos/dog/dog_00 copy.jpg': b'dog 0'})  # a byte-identical copy, kept
    src = tmp_path/'src'
    for p, data in files.items(): (src/p).parent.mkdir(parents=True, exist_ok=True); (src/p).write_bytes(data)
    _git('init', '-q', str(src)); _git('add', '-A', cwd=src); _git('commit', '-qm', 'photos', cwd=src)
    bare = tmp_path/'src.git'; _git('clone', '-q', '--bare', str(src), str(bare))
    pin = Pin('someone/photos', _git('rev-parse', 'HEAD', cwd=src), (('photos', ''),), '', 0, 1 << 20)
    # what `lay_out` computes from the archive's bytes: the same digest must come from `git ls-tree` of the clone
    picked = plan(pin, [(p, git_blob_id(d), len(d)) for p, d in files.items()])
    tool = _module(PIN_SOURCE)
    right, wrong = selection_digest(picked), '0' * 64
    for digest, code, said in ((right, 0, 'matches the registry'), (wrong, 1, f'the registry has {wrong}')):
        spec = SimpleNamespace(pin=pin._replace(digest=digest), classes=())
        monkeypatch.setattr(tool, 'get_dataset', lambda name: spec)
        assert tool.main(['pets', str(bare)]) == code
        out = capsys.readouterr().out
        assert said in out and f'{len(files)} files, {sum(map(len, files.values())):,} bytes' in out
        n = {s: sum(x[0] == s for x in picked) for s in ('train', 'valid', 'test')}
        assert f"per split: train {n['train']} / valid {n['valid']} / test {n['test']} (2 classes)" in out
        assert sum(n.values()) == 21

def test_pin_source_command_line_says_what_to_do(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, str(PIN_SOURCE), *a], capture_output=True, text=True, timeout=60)
    r = run('--help'); assert r.returncode == 0 and 'git_dir' in r.stdout and 'clone' in r.stdout
    r = run('shapes', str(tmp_path)); assert r.returncode == 2 and 'no pinned source; the pinned ones: ' in r.stderr
    assert 'eggs' in r.stderr
    r = run('nope', str(tmp_path)); assert r.returncode == 2 and "unknown dataset 'nope'" in r.stderr
    r = run('eggs', str(tmp_path)); assert r.returncode == 2 and 'git clone --bare https://github.com/' in r.stderr
