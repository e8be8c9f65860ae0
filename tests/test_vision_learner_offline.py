"Plain fastai `vision_learner` gets the shipped EfficientNet-Lite weights offline: named by file, or installed once."
import json, os, subprocess, sys
import pytest, timm, torch
from fastai.vision.all import ImageDataLoaders, Resize, accuracy, vision_learner
from cnn_course.models.backbones import get_backbone
from cnn_course.core.basics import UsageError
from cnn_course.data.shapes import make_shapes
from cnn_course.models.weights import (HUB_SNAPSHOT, course_weights_file, install_timm_weights, package_file, read_state_dict,
                                resolve_weights, timm_weights_file)

LITES = [f'tf_efficientnet_lite{i}' for i in range(3)]
LITE0 = LITES[0]

def shipped_stem(arch): return read_state_dict(package_file(get_backbone(arch).package))['_conv_stem.weight']
def random_stem(arch): torch.manual_seed(0); return timm.create_model(arch, pretrained=False).conv_stem.weight

@pytest.fixture
def offline_hf(offline_home, tmp_path, monkeypatch):
    "`offline_home`, and empty Hugging Face and torch caches under `tmp_path` with the hub offline: the hub cache."
    for k, sub in [('HF_HOME', 'hf'), ('TORCH_HOME', 'torch'), ('XDG_CACHE_HOME', 'xdg')]:
        monkeypatch.setenv(k, str(tmp_path/sub))
    for k in ('HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    return tmp_path/'hf'/'hub'

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp('d')/'shapes', n_classes=2, size=64, n_per_class=6, seed=0)

def tiny_dls(path): return ImageDataLoaders.from_folder(path, bs=4, item_tfms=Resize(64), num_workers=0)

def test_timm_weights_file_has_timm_names_and_is_written_once(offline_hf):
    f = timm_weights_file(LITE0)
    assert f == course_weights_file(LITE0) and f.is_file()
    timm.create_model(LITE0, pretrained=False).load_state_dict(read_state_dict(f), strict=True)
    assert torch.equal(read_state_dict(f)['conv_stem.weight'], shipped_stem(LITE0))
    mtime = f.stat().st_mtime_ns
    assert timm_weights_file(LITE0) == f and f.stat().st_mtime_ns == mtime  # not converted again
    assert resolve_weights(LITE0)[1] == f'course weights folder: {f}'  # the course reads the same file
    assert not list(f.parent.glob('.*.tmp'))  # written atomically: no temporary file left
    with pytest.raises(UsageError, match='timm backbones: .*tf_efficientnet_lite0'): timm_weights_file('alexnet')

def test_vision_learner_with_the_file_overlay(offline_hf, shapes):
    "Every Lite: plain fastai, timm's `pretrained_cfg_overlay` names the file, the stem holds the shipped weights."
    dls = tiny_dls(shapes)
    for arch in LITES:
        learn = vision_learner(dls, arch, metrics=accuracy, pretrained_cfg_overlay=dict(file=timm_weights_file(arch)))
        stem = learn.model[0].model.conv_stem.weight
        assert type(learn.model[0]).__module__ == 'fastai.vision.learner'  # fastai's own body and head
        assert torch.equal(stem, shipped_stem(arch)), arch
        assert not torch.allclose(stem, random_stem(arch)), arch

SCRIPT = r'''
import json, logging, sys, torch
from fastai.vision.all import ImageDataLoaders, Resize, accuracy, vision_learner
from cnn_course.cli import main
logs = []
class Keep(logging.Handler):
    def emit(self, r): logs.append(r.getMessage())
logging.getLogger('timm').addHandler(Keep()); logging.getLogger('timm').setLevel(logging.INFO)
dls = ImageDataLoaders.from_folder(sys.argv[1], bs=4, item_tfms=Resize(64), num_workers=0)
out = {}
try: vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy); out['before'] = None
except Exception as e: out['before'] = [type(e).__name__, isinstance(e, FileNotFoundError), str(e)]
out['cli'] = main(['backbones', '--install-timm'])
learn = vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy)
torch.save(learn.model[0].model.conv_stem.weight.detach(), sys.argv[2])
out['logs'] = logs
print(json.dumps(out))
'''

def test_install_then_plain_vision_learner_offline(offline_hf, shapes, tmp_path):
    "A fresh process, hub offline: plain `vision_learner` fails; after `--install-timm` it loads the shipped weights."
    assert os.environ['HF_HUB_OFFLINE'] == os.environ['CNN_COURSE_OFFLINE'] == '1'
    r = subprocess.run([sys.executable, '-c', SCRIPT, str(shapes), str(tmp_path/'stem.pt')], capture_output=True,
                       text=True, timeout=600, env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    name, is_fnf, msg = out['before']  # timm's own error: what the notebook's prose tells the learner to do about
    assert name == 'LocalEntryNotFoundError' and is_fnf and 'cannot find the requested files in the local cache' in msg
    placed = offline_hf/'models--timm--tf_efficientnet_lite0.in1k'/'snapshots'/HUB_SNAPSHOT/'model.safetensors'
    assert out['cli'] == 0 and placed.is_file() and str(placed) in r.stdout
    for arch in LITES[1:]: assert f'models--timm--{arch}.in1k' in r.stdout
    assert 'Loading pretrained weights from Hugging Face hub (timm/tf_efficientnet_lite0.in1k)' in out['logs']
    stem = torch.load(tmp_path/'stem.pt')
    assert torch.equal(stem, shipped_stem(LITE0)) and not torch.allclose(stem, random_stem(LITE0))

def test_install_leaves_a_hub_download_alone(offline_hf):
    repo = offline_hf/f'models--timm--{LITE0}.in1k'; ref, commit = repo/'refs'/'main', 'a' * 40
    real = repo/'snapshots'/commit/'model.safetensors'; real.parent.mkdir(parents=True); ref.parent.mkdir()
    real.write_bytes(b'a real download'); ref.write_text(commit)
    assert install_timm_weights([LITE0]) == [(LITE0, real, 'a hub download: left alone')]
    real.unlink()  # a download of other files only: still not ours to change
    (arch, where, done), = install_timm_weights([LITE0])
    assert where == real.parent and 'left alone' in done and 'pretrained_cfg_overlay=dict(file=' in done
    assert ref.read_text() == commit and not (repo/'snapshots'/HUB_SNAPSHOT).exists()
    (arch, placed, done), = install_timm_weights([LITES[1]])  # an empty cache: placed, and only once
    assert done.startswith('copied from') and placed.is_file()
    mtime = placed.stat().st_mtime_ns
    assert install_timm_weights([LITES[1]]) == [(LITES[1], placed, 'already there')]
    assert placed.stat().st_mtime_ns == mtime
    ref1 = placed.parents[2]/'refs'/'main'; ref1.unlink()  # without its reference huggingface_hub would not find it
    assert install_timm_weights([LITES[1]]) == [(LITES[1], placed, 'refs/main restored')]
    assert ref1.read_text() == HUB_SNAPSHOT
