"Issue #27, failure 7: what a run reads is checked, never used silently when it is wrong (cache, counts, model.json)."
import json, os, shutil, subprocess, sys
import pytest, torch
from safetensors import safe_open
from safetensors.torch import save_file
from cnn_course.cli import main
from cnn_course.core.basics import UsageError, cache_dir
from cnn_course.data.loaders import split_items
from cnn_course.data.fetch import make_shapes
from cnn_course.inference.feature_cache import cache_files, cached
from cnn_course.grading.project import grade_model
from cnn_course.grading.hidden_test import TestSet
from cnn_course.evaluation.report import build_report
from cnn_course.evaluation.rubric import parse_rubric
from cnn_course.inference.runs import RunError, load_run
from cnn_course.training.recipes import train
from conftest import RUBRIC

@pytest.fixture(scope='module')
def home(tmp_path_factory):
    "One offline course home for the module: the cold run fills its feature cache, the warm run reads it."
    with pytest.MonkeyPatch.context() as mp:
        h = tmp_path_factory.mktemp('home'); mp.setenv('CNN_COURSE_HOME', str(h)); mp.setenv('CNN_COURSE_OFFLINE', '1')
        yield h

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp('data')/'shapes', n_classes=3, size=40, n_per_class=30, seed=0)

@pytest.fixture(scope='module')
def cold(home, shapes, tmp_path_factory):
    "The default recipe (head, then the top stage, on cached features) trained on an empty feature cache."
    assert not cache_files()
    return train('shapes', data=shapes, size=64, out=tmp_path_factory.mktemp('runs')/'cold')

# ---- the feature cache checks what it reads -----------------------------------------------------------------------

def _garble(p) -> bool:
    "Finite garbage in place of the features (or maps) of cache file `p`; its metadata (key, digest) and labels kept."
    with safe_open(p, 'pt') as f: meta, ts = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    if 'x' not in ts: return False  # an `lr_find` curve, not features
    g = torch.Generator().manual_seed(0)
    save_file({k: torch.randn(v.shape, generator=g).to(v.dtype) if v.is_floating_point() else v for k, v in ts.items()},
              str(p), metadata=meta)
    return True

def _notices(err:str) -> list: return [l for l in err.splitlines() if 'recomputed' in l]

def test_cached_recomputes_a_changed_entry_once(offline_home, capsys):
    calls = []
    def compute(): calls.append(1); return {'x': torch.arange(6.).view(2, 3), 'y': torch.tensor([0, 1])}
    key = 'f7'*32
    cached(key, compute); p = cache_dir('features')/f'{key}.safetensors'
    assert _garble(p)
    out = cached(key, compute)
    assert len(calls) == 2 and torch.equal(out['x'], torch.arange(6.).view(2, 3))  # the garbage was used before
    notes = _notices(capsys.readouterr().err)
    assert len(notes) == 1 and key[:12] in notes[0], notes
    assert torch.equal(cached(key, compute)['x'], out['x']) and len(calls) == 2  # rewritten: a hit again, said nothing
    assert not _notices(capsys.readouterr().err)

def test_garbage_in_cached_features_is_recomputed_not_trained_on(cold, shapes, tmp_path, capsys):
    garbled = [p.name for p in cache_files() if _garble(p)]
    assert garbled
    capsys.readouterr()
    warm = train('shapes', data=shapes, size=64, out=tmp_path/'warm')
    assert warm.metrics == cold.metrics  # test accuracy fell from 0.35 to 0.20 on the garbage
    notes = _notices(capsys.readouterr().err)
    named = [n for n in garbled if any(n[:12] in l for l in notes)]
    assert notes and len(named) == len(notes) == len(set(notes)), (notes, garbled)  # one line per entry read

# ---- --max-per-class is a count like the others --------------------------------------------------------------------

@pytest.mark.parametrize('bad', [0, -3, 2.5, True, '5'])
def test_max_per_class_must_be_a_positive_whole_number(home, shapes, tmp_path, bad):
    with pytest.raises(UsageError, match=f'--max-per-class must be a whole number >= 1.*got {bad!r}'):
        train('shapes', data=tmp_path/'no-such-folder', out=tmp_path/'run', max_per_class=bad)  # before any data scan
    with pytest.raises(UsageError, match='--max-per-class'): split_items('shapes', shapes, max_per_class=bad)

def test_cli_max_per_class_0_fails_in_one_line(home, shapes, tmp_path):
    args = ['train', '--dataset', 'shapes', '--data', str(shapes), '--arch', 'simple_cnn', '--scratch', '--size', '32',
            '--bs', '16', '--epochs', '1', '--quiet', '--out', str(tmp_path/'run'), '--max-per-class', '0']
    p = subprocess.run([sys.executable, '-m', 'cnn_course.cli', *args], env=os.environ.copy(), capture_output=True,
                       text=True, timeout=300)
    err = p.stderr.strip()
    assert p.returncode == 2 and len(err.splitlines()) == 1, (p.returncode, err)
    assert '--max-per-class' in err and 'got 0' in err, err
    assert not (tmp_path/'run').exists()

# ---- a model.json that disagrees with itself is refused by predict, report and the grader ---------------------------

def _edited(run, dst, **kw):
    shutil.copytree(run, dst); m = json.loads((dst/'model.json').read_text()); m.update(kw)
    (dst/'model.json').write_text(json.dumps(m)); return dst

@pytest.fixture(scope='module')
def rubric(): return parse_rubric(RUBRIC, 'test rubric')

@pytest.mark.parametrize('edit, says', [
    (dict(size=96), ["field 'size' is 96", 'recipe.size', '64']),
    (dict(classes=['circle', 'extra', 'square', 'triangle']), ["field 'classes'", '4 classes', 'outputs 3']),
    (dict(classes=['circle', 'square']), ["field 'classes'", '2 classes', 'outputs 3']),
    (dict(mean=[0.4, 0.5, 0.5]), ["field 'mean'", '[0.5, 0.5, 0.5]', 'edited'])])
def test_self_contradicting_model_json_is_refused(cold, shapes, rubric, tmp_path, capsys, edit, says):
    img = sorted((shapes/'test').rglob('*.png'))[0]
    assert load_run(cold.path).predict(img)  # the run as saved loads and predicts
    d = _edited(cold.path, tmp_path/'edited', **edit)
    assert main(['predict', '--model', str(d), str(img)]) == 1  # predicted with the edited size before
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'save_run' in err and all(s in err for s in says), err
    with pytest.raises(RunError) as e: build_report(d)
    assert all(s in str(e.value) for s in says), e.value
    reason = grade_model(d, rubric, TestSet(shapes/'test'))['reasons']['accuracy']
    assert all(s in reason for s in says), reason
