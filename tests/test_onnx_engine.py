"""ONNX Runtime as the engine of every pass that trains nothing: the same answer as torch or torch itself, one line
saying why when it falls back, one export per weights."""
import sys
import pytest, torch
from torch import nn
from cnn_course.inference import onnx_engine
from cnn_course.core.basics import cache_dir
from cnn_course.inference.outputs import folded, outputs
from cnn_course.models.classifier import create_model, encoder

@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home')); monkeypatch.delenv('CNN_COURSE_ENGINE', raising=False)
    monkeypatch.setattr(onnx_engine, '_PASSES', {}); monkeypatch.setattr(onnx_engine, '_SAID', set())

def _body():
    torch.manual_seed(0)
    return encoder(create_model('tf_efficientnet_lite0', 3, pretrained=False)).eval()

def _batches(n=3, bs=4, size=64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(bs, 3, size, size, generator=g) for _ in range(n)]

def _torch(module, batches):
    cl = lambda x: x.contiguous(memory_format=torch.channels_last)  # as `outputs` feeds it
    with torch.no_grad(): return torch.cat([folded(module)(cl(x)) for x in batches])

def test_outputs_run_through_onnx_runtime_and_equal_torch():
    body, xs = _body(), _batches()
    got = outputs(body, xs)
    assert list(cache_dir('onnx').glob('*.onnx')), 'the graph is exported and cached'
    tol = onnx_engine.TOLERANCE*max(1., float(got.abs().max()))
    torch.testing.assert_close(got, _torch(body, xs), rtol=0, atol=tol)
    assert not body.training

def test_a_graph_is_exported_once_per_weights(monkeypatch):
    body, xs = _body(), _batches()
    outputs(body, xs)
    calls = []
    monkeypatch.setattr(onnx_engine, 'export', lambda *a: calls.append(a))
    monkeypatch.setattr(onnx_engine, '_PASSES', {})  # a new process: the file on disk is found again
    outputs(body, xs)
    assert calls == []
    with torch.no_grad(): next(body.parameters()).mul_(2)  # other weights: another graph
    def refuse(*a): calls.append(a); raise RuntimeError('not exported')
    monkeypatch.setattr(onnx_engine, 'export', refuse)
    outputs(body, xs)
    assert len(calls) == 1

def test_without_onnxruntime_torch_runs_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` raises ImportError
    body, xs = _body(), _batches()
    got = outputs(body, xs); outputs(body, xs)
    assert torch.equal(got, _torch(body, xs))
    err = capsys.readouterr().err
    assert err.count('onnxruntime is not installed') == 1 and 'pip install onnxruntime' in err

def test_a_module_onnx_cannot_run_falls_back_to_torch_with_the_reason(capsys):
    class Unexportable(nn.Module):
        def forward(self, x):
            if torch.onnx.is_in_onnx_export(): raise RuntimeError('no such operator')
            return x.mean((2, 3))
    m = Unexportable()
    assert torch.equal(outputs(m, _batches()), _torch(m, _batches()))
    err = capsys.readouterr().err
    assert 'ONNX Runtime cannot run Unexportable' in err and 'no such operator' in err
    assert 'that pass runs in torch' in err

def test_a_graph_that_differs_from_torch_is_never_used(monkeypatch, capsys):
    body, xs = _body(), _batches()
    other = encoder(create_model('tf_efficientnet_lite0', 3, pretrained=False)).eval()  # other random weights
    real = onnx_engine.export
    wrong = lambda module, example, path: real(folded(other), example, path)  # the graph of other weights
    monkeypatch.setattr(onnx_engine, 'export', wrong)
    got = outputs(body, xs)
    assert torch.equal(got, _torch(body, xs))
    assert 'differs from torch' in capsys.readouterr().err
    assert not list(cache_dir('onnx').glob('*.onnx')), 'the wrong graph is removed'

def test_the_torch_engine_and_training_modules_never_export(monkeypatch):
    monkeypatch.setenv('CNN_COURSE_ENGINE', 'torch')
    body, xs = _body(), _batches()
    assert torch.equal(outputs(body, xs), _torch(body, xs))
    assert not cache_dir('onnx').exists() or not list(cache_dir('onnx').glob('*.onnx'))
    monkeypatch.delenv('CNN_COURSE_ENGINE')
    assert onnx_engine.onnx_pass(body.train(), xs[0]) is None
