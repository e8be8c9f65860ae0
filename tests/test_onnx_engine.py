"""ONNX Runtime as the engine of every pass that trains nothing: the same answer as torch or torch itself, one line
saying why when it falls back, one export per architecture that any weights of it use."""
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
    monkeypatch.setattr(onnx_engine, '_GRAPHS', {})
    # the reference below runs with torch's thread count: a pass that counted a busy core as taken would sum in another order
    monkeypatch.setenv('CNN_COURSE_THREADS', str(torch.get_num_threads()))

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

def test_one_graph_per_architecture_serves_any_weights_of_it(monkeypatch):
    body, xs = _body(), _batches()
    outputs(body, xs)
    calls = []
    monkeypatch.setattr(onnx_engine, 'export', lambda *a: calls.append(a))
    monkeypatch.setattr(onnx_engine, '_PASSES', {}); monkeypatch.setattr(onnx_engine, '_GRAPHS', {})  # a new process
    outputs(body, xs)
    with torch.no_grad(): next(body.parameters()).mul_(2)  # other weights (a fine-tuned body, a student's): the same graph
    got = outputs(body, xs)
    assert calls == [], 'no second export'
    torch.testing.assert_close(got, _torch(body, xs), rtol=0, atol=onnx_engine.TOLERANCE*max(1., float(got.abs().max())))
    assert not torch.allclose(got, outputs(_body(), xs), atol=1e-3), 'each body gets its own answers'
    graph = next(cache_dir('onnx').glob('*.onnx')).read_bytes()
    for w in onnx_engine._weights(folded(body)).values():
        if w.size > 16: assert w.tobytes() not in graph, 'the cached graph holds nobody\'s weights'
    def refuse(*a): calls.append(a); raise RuntimeError('not exported')
    monkeypatch.setattr(onnx_engine, 'export', refuse)
    outputs(body, _batches(size=96))  # another image size: another graph
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
    real = onnx_engine._weights
    def stale(module):  # one weight left as the probe's: the graph computes something else than this body
        w = real(module); k = next(k for k, v in w.items() if v.ndim == 4); del w[k]; return w
    monkeypatch.setattr(onnx_engine, '_weights', stale)
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
