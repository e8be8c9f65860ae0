"NTS-Net: anchors, hard NMS, the ranking loss, the training/eval outputs, and end-to-end learning with fastai."
import time
import pytest, torch
from cnn_course.models.classifier import create_model, param_groups
from cnn_course.models.ntsnet import (NTSConfig, NTSLoss, NTSNet, create_ntsnet, hard_nms, make_anchors, ranking_loss,
                               toy_fine_grained)

torch.set_num_threads(2)

SMALL = NTSConfig(proposals=4, cat=2, sizes=(0.3, 0.45, 0.7), channels=32)

def test_paper_anchor_count_and_boxes_inside_the_image():
    a = make_anchors(NTSConfig(), [(14, 14), (7, 7), (4, 4)], 448, 448)
    assert a.shape == (1614, 4)
    assert (a >= 0).all() and (a <= 448).all() and (a[:, 2] > a[:, 0]).all() and (a[:, 3] > a[:, 1]).all()

def test_hard_nms_drops_overlaps_and_fills_up():
    boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 20, 10, 30]])
    scores = torch.tensor([0.9, 0.8, 0.5, 0.1])
    assert hard_nms(boxes, scores, 3, 0.25).tolist() == [0, 2, 3]
    assert hard_nms(boxes, scores, 4, 0.25).tolist() == [0, 2, 3, 1]

def test_ranking_loss_matches_the_papers_loop():
    torch.manual_seed(0)
    s, t = torch.randn(3, 5), torch.rand(3, 5)
    ref = sum(torch.relu((1 - s[:, i:i+1] + s) * (t > t[:, i:i+1]).float()).sum() for i in range(5)) / 3
    assert torch.allclose(ranking_loss(s, t), ref)

def test_outputs_loss_and_gradients():
    m = create_ntsnet(5, 'resnet18', pretrained=False, cfg=SMALL)
    x, y = torch.randn(3, 3, 64, 64), torch.tensor([0, 1, 4])
    raw, concat, parts, scores = m.train()(x)
    assert raw.shape == concat.shape == (3, 5) and parts.shape == (3, 4, 5) and scores.shape == (3, 4)
    assert m.concat_fc.in_features == 512 * 3  # K=2 parts + the whole image
    NTSLoss()((raw, concat, parts, scores), y).backward()
    assert all(p.grad is not None for p in m.parameters())  # navigator (ranking loss), body, all three classifiers
    m.eval()
    logits = m(x)
    assert logits.shape == (3, 5) and torch.isfinite(NTSLoss()(logits, y))
    boxes, sc = m.propose(x)
    assert boxes.shape == (3, 4, 4) and (sc[:, :-1] >= sc[:, 1:]).all()  # NMS keeps the navigator's order
    assert sum(map(len, param_groups(m))) == len(list(m.parameters()))

def test_registry_ntsnet_is_a_resnet50_ntsnet():
    m = create_model('ntsnet', 7, pretrained=False)
    assert isinstance(m, NTSNet) and m.cfg.base == 'resnet50' and m.raw_fc.in_features == 2048
    assert m.arch == 'ntsnet' and not m.pretrained
    with pytest.raises(ValueError, match='plain backbone'): create_ntsnet(3, 'ntsnet', pretrained=False)

def test_trains_end_to_end_on_a_fine_grained_toy_with_fastai():
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner
    from fastai.metrics import accuracy
    import fastai.callback.schedule  # noqa: F401 (adds fit_one_cycle)
    from fastai.torch_core import set_seed
    t = time.perf_counter()
    set_seed(0, reproducible=True)  # python's random too: fastai shuffles with it, so the tests run before could move the result
    xt, yt, _ = toy_fine_grained(384, seed=1)
    xv, yv, _ = toy_fine_grained(128, seed=2)  # held out: other positions, sizes and noise
    dls = DataLoaders(DataLoader(list(zip(xt, yt)), bs=32, shuffle=True, drop_last=True),
                      DataLoader(list(zip(xv, yv)), bs=64))
    learn = Learner(dls, create_ntsnet(4, 'simple_cnn', pretrained=False, cfg=SMALL), loss_func=NTSLoss(),
                    metrics=accuracy, splitter=param_groups)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, 1e-2)
        val_loss, acc = learn.validate()
        preds, targs = learn.get_preds()
    assert torch.allclose(preds.sum(1), torch.ones(len(preds)))  # NTSLoss.activation: probabilities
    assert acc >= 0.5, f'accuracy {acc} is not 2x chance (0.25)'
    print(f'NTS-Net toy: held-out accuracy {acc:.3f} in {time.perf_counter() - t:.1f}s')
