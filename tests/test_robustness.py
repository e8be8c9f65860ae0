"Issue #10, tried as a careless learner would: every bad input either works correctly or fails early, in one line."
import contextlib, io, json, os, shutil, signal, subprocess, sys
from typing import NamedTuple
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from cnn_course.cli import main
from cnn_course.data.fetch import make_shapes

CLI = [sys.executable, '-m', 'cnn_course.cli']

@pytest.fixture(scope='module')
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp('home')
    return {**os.environ, 'CNN_COURSE_HOME': str(home), 'CNN_COURSE_OFFLINE': '1', 'MPLBACKEND': 'Agg'}

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp('data')/'shapes', n_classes=3, size=40, n_per_class=24, seed=0)

class Ran(NamedTuple):
    "What a `cnn-course` command did: its exit code and what it printed."
    returncode:int; stdout:str; stderr:str

def cli(*args, env, cwd=None, extra=None, process=False):
    """Run `cnn-course ARGS`: in this process through `cli.main` (the same parser, errors and exit codes), or, with
    `process=True` or a kill point set, as a real subprocess (only that proves what a process prints and how it ends)."""
    env = {**env, **(extra or {})}
    if process or 'CNN_COURSE_KILL_AT' in env:
        return subprocess.run([*CLI, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for k, v in env.items():
            if os.environ.get(k) != v: mp.setenv(k, v)
        if cwd: mp.chdir(cwd)
        try: code = main(list(map(str, args)))
        except SystemExit as e: code = e.code if isinstance(e.code, int) else 1  # argparse's usage errors exit 2
    return Ran(code, out.getvalue(), err.getvalue())

def train_args(data, out, *more):
    return ['train', '--dataset', 'shapes', '--data', data, '--arch', 'simple_cnn', '--scratch', '--size', '32',
            '--bs', '16', '--epochs', '1', '--quiet', '--out', out, *more]

def one_line(p, code:int, *says):
    "The process failed with `code` and one line on stderr that says each of `says`, with no traceback."
    err = p.stderr.strip()
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], err[-3000:])
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    for s in says: assert s in err, err
    return err

# ---- arguments refused before any work ----------------------------------------------------------------------------

@pytest.mark.parametrize('args, says', [
    (['--lr', 'nan'], '--lr'), (['--lr', 'inf'], '--lr'), (['--lr', '0'], '--lr'), (['--lr', '-0.01'], '--lr'),
    (['--epochs', '-1'], '--epochs'), (['--epochs', '0'], 'nothing would be trained'),
    (['--size', '0'], '--size'), (['--size', '1'], '--size'), (['--bs', '0'], '--bs'), (['--top-epochs', '-1'], '--top-epochs')])
def test_bad_training_arguments_fail_before_training(shapes, tmp_path, env, args, says):
    p = cli(*train_args(shapes, tmp_path/'run'), *args, env=env)
    one_line(p, 2, says)
    assert not (tmp_path/'run').exists()

@pytest.mark.parametrize('mb', ['512MB', '-1', 'nan'])
def test_a_feature_cache_bound_that_is_not_a_size_is_named_not_ignored(shapes, tmp_path, env, mb):
    args = ['train', '--dataset', 'shapes', '--data', shapes, '--size', '32', '--bs', '16', '--quiet', '--out', tmp_path/'run']
    one_line(cli(*args, env=env, extra={'CNN_COURSE_FEATURE_CACHE_MB': mb}), 2, 'CNN_COURSE_FEATURE_CACHE_MB', 'not a size in MiB')
    assert not (tmp_path/'run').exists()

def test_out_that_is_a_file_or_holds_other_files_or_a_run_is_refused_before_training(shapes, tmp_path, env):
    (tmp_path/'file').write_text('x')
    one_line(cli(*train_args(shapes, tmp_path/'file'), env=env), 2, 'is a file')
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('keep me')
    one_line(cli(*train_args(shapes, tmp_path/'mine'), env=env), 2, 'notes.txt')
    assert (tmp_path/'mine'/'notes.txt').read_text() == 'keep me'
    (tmp_path/'run').mkdir(); (tmp_path/'run'/'model.json').write_text('{}')
    one_line(cli(*train_args(shapes, tmp_path/'run'), env=env), 2, 'already holds a saved run', '--overwrite')

def test_unusable_course_home_is_named(shapes, tmp_path, env):
    (tmp_path/'home').write_text('not a folder')
    p = cli(*train_args(shapes, tmp_path/'run'), env=env, extra={'CNN_COURSE_HOME': str(tmp_path/'home')})
    one_line(p, 1, '$CNN_COURSE_HOME', 'writable folder')
    if os.geteuid() != 0:  # root can write anywhere: a read-only folder is not read-only for it
        (tmp_path/'ro').mkdir(); (tmp_path/'ro').chmod(0o500)
        one_line(cli(*train_args(shapes, tmp_path/'run'), env=env, extra={'CNN_COURSE_HOME': str(tmp_path/'ro')}), 1, '$CNN_COURSE_HOME')

# ---- the data ------------------------------------------------------------------------------------------------------

def test_single_class_dataset_is_refused(tmp_path, env):
    (d := tmp_path/'one'/'circle').mkdir(parents=True)
    for i in range(12): Image.new('RGB', (32, 32), (20*i, 0, 0)).save(d/f'{i}.png')
    one_line(cli(*train_args(tmp_path/'one', tmp_path/'run'), env=env), 1, 'needs at least 2')
    assert not (tmp_path/'run').exists()

def test_test_class_missing_from_train_fails_before_training(shapes, tmp_path, env):
    data = shutil.copytree(shapes, tmp_path/'shapes')
    (data/'test'/'hexagon').mkdir()
    Image.new('RGB', (40, 40), 'blue').save(data/'test'/'hexagon'/'h.png')
    p = cli(*train_args(data, tmp_path/'run'), '--epochs', '50', env=env)  # 50 epochs would take minutes: it fails first
    one_line(p, 1, 'no training images: hexagon')
    assert not (tmp_path/'run').exists()

def test_batch_size_above_the_training_images_is_lowered_and_said(tmp_path, env):
    data = make_shapes(tmp_path/'small', n_classes=2, size=32, n_per_class=8, seed=0)
    n_train = len(list((data/'train').rglob('*.png')))
    p = cli(*train_args(data, tmp_path/'run', '--bs', '64'), env=env)
    assert p.returncode == 0, p.stderr
    assert f'batch size 64 is larger than the {n_train} training images' in p.stderr
    meta = json.loads((tmp_path/'run'/'model.json').read_text())
    assert meta['recipe']['bs'] == n_train and len(json.loads(p.stdout)) > 0

def test_a_diverging_learning_rate_stops_training_and_saves_nothing(shapes, tmp_path, env):
    p = cli(*train_args(shapes, tmp_path/'run', '--lr', '1e30'), env=env)
    one_line(p, 1, 'Lower --lr')
    assert not (tmp_path/'run').exists()

def test_oversized_png_is_reported_by_data_check_and_left_out_of_training(shapes, tmp_path, env, monkeypatch):
    data = shutil.copytree(shapes, tmp_path/'shapes')
    bomb = data/'train'/'circle'/'bomb.png'
    Image.new('L', (13000, 13000)).save(bomb)
    assert bomb.stat().st_size < 1_000_000  # 169 megapixels, small on disk
    p = cli('data', 'check', data, env=env)
    assert p.returncode == 0 and 'too-large' in p.stdout and str(bomb) in p.stdout, p.stdout
    from cnn_course.data.loaders import split_items
    monkeypatch.setenv('CNN_COURSE_HOME', env['CNN_COURSE_HOME'])
    items = split_items('shapes', data)
    assert bomb not in items['train'] and len(items['train']) == len(split_items('shapes', shapes)['train'])

# ---- saved runs: schema, predict, report ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def run(shapes, tmp_path_factory, env):
    "A run trained with seed 0, from a working folder, with the data given by a relative path."
    work = tmp_path_factory.mktemp('work')
    shutil.copytree(shapes, work/'shapes')
    p = cli(*train_args('shapes', 'run'), '--seed', '0', env=env, cwd=work)
    assert p.returncode == 0, p.stderr
    return work/'run'

@pytest.mark.parametrize('content, says', [('[1, 2]', 'JSON object'), ('null', 'JSON object'), ('{"arch": "simple_cnn"}', 'lacks'),
                                            ('{not json', 'not valid JSON')])
def test_broken_model_json_is_named(run, tmp_path, env, content, says):
    bad = shutil.copytree(run, tmp_path/'bad')
    (bad/'model.json').write_text(content)
    one_line(cli('predict', '--model', bad, 'x.png', env=env), 1, says, 'model.json')

def test_run_from_a_newer_format_is_refused(run, tmp_path, env):
    bad = shutil.copytree(run, tmp_path/'new')
    meta = json.loads((bad/'model.json').read_text()); meta['format'] = 99
    (bad/'model.json').write_text(json.dumps(meta))
    one_line(cli('predict', '--model', bad, 'x.png', env=env), 1, 'upgrade cnn_course')

def test_predict_reports_unreadable_files_one_by_one_and_predicts_the_rest(run, shapes, tmp_path, env):
    good = sorted((shapes/'test'/'circle').glob('*.png'))[:2]
    (tmp_path/'page.jpg').write_text('<html>Not found</html>')
    p = cli('predict', '--model', run, good[0], tmp_path/'page.jpg', tmp_path/'missing.jpg', good[1],
            'https://example.org/daisy.jpg', env=env)
    assert p.returncode == 1
    assert [l.split(':')[0] for l in p.stdout.splitlines()] == [str(good[0]), str(good[1])]
    errs = p.stderr.strip().splitlines()
    assert len(errs) == 3 and 'Traceback' not in p.stderr, p.stderr
    assert 'page.jpg' in errs[0] and 'missing.jpg' in errs[1] and 'offline' in errs[2] and 'https:/e' not in p.stderr

def _rgba_and_16bit(folder:Path) -> list:
    rng = np.random.default_rng(0)
    a = np.zeros((40, 40, 4), np.uint8); a[10:30, 10:30] = [200, 40, 40, 255]  # a shape on a transparent (black) ground
    Image.fromarray(a, 'RGBA').save(folder/'rgba.png')
    deep = (rng.integers(0, 65535, (40, 40))).astype(np.uint16); deep[8:32, 8:32] = 60000
    Image.fromarray(deep).save(folder/'deep.png')
    return [folder/'rgba.png', folder/'deep.png']

def test_rgba_and_16bit_png_give_the_same_answer_in_predict_and_report_photo(run, tmp_path, env):
    from cnn_course.evaluation.report import predict_photos
    from cnn_course.inference.runs import load_run
    photos, r = _rgba_and_16bit(tmp_path), load_run(run)
    p = cli('predict', '--model', run, *photos, '-k', '3', env=env)
    assert p.returncode == 0, p.stderr
    printed = [l.split(': ', 1)[1] for l in p.stdout.splitlines()]
    shown = [', '.join(f'{c} {q:.1%}' for c, q in pp.top) for pp in predict_photos(r, photos, k=3)]
    assert printed == shown
    old = r.probabilities([Image.open(photos[0]).convert('RGB')])  # what `report --photo` did before: black ground
    assert not np.allclose(old.numpy(), r.probabilities([photos[0]]).numpy(), atol=1e-3)
    rep = cli('report', '--model', run, '--out', tmp_path/'rep', '--photo', photos[0], '--photo', photos[1], env=env)
    assert rep.returncode == 0, rep.stderr

def test_report_from_another_folder_evaluates_the_recorded_seed0_split(run, tmp_path, env):
    meta = json.loads((run/'model.json').read_text())
    assert Path(meta['data_path']).is_absolute() and meta['split']['seed'] == 0
    p = cli('report', '--model', run, '--out', tmp_path/'rep', env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    from cnn_course.data.loaders import split_items
    items = split_items('shapes', meta['data_path'], seed=0)
    preds = (tmp_path/'rep'/'predictions.csv').read_text().splitlines()[1:]
    assert sorted(l.split(',')[0] for l in preds) == sorted(map(str, items['test']))
    assert json.loads((tmp_path/'rep'/'metrics.json').read_text())['n'] == meta['split']['test']['n']

def test_report_fails_clearly_when_the_recorded_test_files_changed(run, tmp_path, env):
    meta = json.loads((run/'model.json').read_text())
    data = shutil.copytree(meta['data_path'], tmp_path/'copy')
    next((data/'test').rglob('*.png')).unlink()
    one_line(cli('report', '--model', run, '--data', data, '--out', tmp_path/'rep', env=env), 1, 'not the one this run was evaluated on')

def test_seed0_on_a_folder_without_splits_is_evaluated_on_its_own_split(tmp_path, env):
    src = make_shapes(tmp_path/'src', n_classes=2, size=32, n_per_class=20, seed=0)
    for f in src.rglob('*.png'):  # one folder per class: the split is drawn from the seed
        (tmp_path/'flat'/f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tmp_path/'flat'/f.parent.name/f'{f.parent.parent.name}-{f.name}')
    assert cli(*train_args(tmp_path/'flat', tmp_path/'run'), '--seed', '0', env=env).returncode == 0
    assert cli('report', '--model', tmp_path/'run', '--out', tmp_path/'rep', env=env).returncode == 0
    from cnn_course.data.loaders import split_items
    seed0, seed42 = split_items('shapes', tmp_path/'flat', seed=0), split_items('shapes', tmp_path/'flat', seed=42)
    tested = {l.split(',')[0] for l in (tmp_path/'rep'/'predictions.csv').read_text().splitlines()[1:]}
    assert tested == set(map(str, seed0['test'])) and not tested & set(map(str, seed0['train']))
    assert tested & set(map(str, seed42['train']))  # the old `seed or 42` would have tested on training images

def test_test_folder_evaluates_any_labelled_folder(run, shapes, tmp_path, env):
    folder = tmp_path/'new'
    for c in ('circle', 'square'): shutil.copytree(shapes/'test'/c, folder/c)
    p = cli('report', '--model', run, '--test-folder', folder, '--out', tmp_path/'rep', env=env)
    assert p.returncode == 0, p.stderr
    m = json.loads((tmp_path/'rep'/'metrics.json').read_text())
    assert m['n'] == len(list(folder.rglob('*.png'))) and m['per_class']['triangle']['support'] == 0
    shutil.copytree(shapes/'test'/'circle', folder/'hexagon')
    one_line(cli('report', '--model', run, '--test-folder', folder, '--out', tmp_path/'rep2', env=env), 1, 'does not know: hexagon')

# ---- a run is written whole ----------------------------------------------------------------------------------------

def test_a_kill_while_overwriting_leaves_exactly_the_old_or_the_new_run(run, tmp_path, env):
    from cnn_course.inference.runs import load_run
    old_meta, old_weights = json.loads((run/'model.json').read_text()), (run/'model.safetensors').read_bytes()
    outcomes = {}
    for point in ('weights', 'meta', 'moved-old', 'swapped'):
        out = shutil.copytree(run, tmp_path/point/'run')
        p = cli(*train_args(old_meta['data_path'], out, '--overwrite', '--seed', '7'), env=env, extra={'CNN_COURSE_KILL_AT': point})
        assert p.returncode == -signal.SIGKILL, (point, p.returncode, p.stderr[-2000:])
        r = load_run(out)  # finishes a swap the kill interrupted
        if r.meta['seed'] == old_meta['seed']:
            assert r.meta == old_meta and (out/'model.safetensors').read_bytes() == old_weights
            outcomes[point] = 'old'
        else:
            assert r.meta['seed'] == 7 and r.meta['created'] != old_meta['created'] and len(r.history) == 1
            assert (out/'model.safetensors').read_bytes() != old_weights
            outcomes[point] = 'new'
        assert sorted(q.name for q in out.iterdir()) == ['history.csv', 'model.json', 'model.safetensors']
    assert outcomes == {'weights': 'old', 'meta': 'old', 'moved-old': 'new', 'swapped': 'new'}
    p = cli(*train_args(old_meta['data_path'], tmp_path/'swapped'/'run', '--overwrite', '--seed', '8'), env=env)
    assert p.returncode == 0 and sorted(q.name for q in (tmp_path/'swapped').iterdir()) == ['run']  # leftovers cleaned

# ---- every sub-command: one line, the right exit code --------------------------------------------------------------

@pytest.mark.parametrize('args, code, says', [
    (['datasets', '--bogus'], 2, 'unrecognized arguments'),
    (['backbones', '--bogus'], 2, 'unrecognized arguments'),
    (['data', 'check', '/no/such/folder'], 1, 'no such folder'),
    (['train', '--dataset', 'flower', '--out', 'x'], 1, 'flowers'),
    (['lr-find', '--dataset', 'shapes', '--size', '0'], 2, '--size'),
    (['predict', '--model', '/no/such/run', 'x.jpg'], 1, 'not a saved run'),
    (['predict', '--model', '/no/such/run', 'x.jpg', '-k', 'two'], 2, 'invalid int'),
    (['report', '--model', '/no/such/run', '--out', 'rep'], 1, 'not a saved run'),
    (['report', '--model', '/no/such/run', '--out', 'rep', '--target', '85'], 2, '--target'),
    (['compare', '/no/such/run'], 1, 'no model.json'),
    (['quickstart', '--bogus'], 2, 'unrecognized arguments')])
def test_every_subcommand_fails_in_one_line(tmp_path, env, args, code, says):
    # three as real processes (an argparse error, a course error, a usage error: their exit codes and all they print),
    # the others through `main` in this process, which takes the same path without paying a new process's imports
    p = cli(*args, env=env, cwd=tmp_path, process=args[0] in ('datasets', 'lr-find') or args[-1] == 'x.jpg')
    err = p.stderr.strip()
    assert p.returncode == code and 'Traceback' not in err and says in err, (p.returncode, err)
    if code == 1: assert len(err.splitlines()) <= 8, err  # one message (a not-found message lists where it looked)

def test_debug_shows_the_traceback(tmp_path, env):
    p = cli('--debug', 'predict', '--model', '/no/such/run', 'x.jpg', env=env, process=True)
    assert p.returncode == 1 and 'Traceback' in p.stderr and 'RunError' in p.stderr
