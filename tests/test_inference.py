"Every path that evaluates a saved run gives the same predictions for the same images: they all go through `inference`."
import numpy as np, pytest, torch
from cnn_course.models.backbones import HeadCfg, get_backbone
from cnn_course.data.loaders import folder_dl
from cnn_course.data.fetch import class_dirs, image_files, make_shapes
from cnn_course.evaluation.evaluate import evaluate
from cnn_course.grading.hidden_test import TestSet, run_logits
from cnn_course.inference.outputs import EVAL_BS, outputs, predictions
from cnn_course.models.classifier import create_model, encoder
from cnn_course.evaluation.report import predict_photos
from cnn_course.inference.runs import load_run, save_run

@pytest.fixture(scope='module')
def run_and_images(tmp_path_factory):
    d = tmp_path_factory.mktemp('inference')
    data = make_shapes(d/'shapes', n_classes=3, size=48, n_per_class=60, noise=0.05)
    b, classes = get_backbone('simple_cnn'), [c.name for c in class_dirs(data/'test')]
    torch.manual_seed(0)
    model = create_model('simple_cnn', len(classes), pretrained=False, head=HeadCfg(hidden=16))
    with torch.no_grad():  # running statistics far from (0, 1): a path that forgot eval mode would not match
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1); m.running_var.uniform_(0.5, 2)
    meta = dict(arch='simple_cnn', classes=classes, size=32, mean=b.mean, std=b.std, head={'hidden': 16},
                pretrained=False)
    run = load_run(save_run(d/'run', model, meta))
    files = [f for c in class_dirs(data/'test') for f in sorted(image_files(c))]
    return run, data/'test', files

def test_every_path_gives_the_same_predictions(run_and_images):
    run, test, files = run_and_images
    assert len(files) > EVAL_BS  # more than one batch
    ref = run.probabilities(files)
    ts = TestSet(test, run.classes)
    assert [str(p) for p in ts.files] == [str(f) for f in files]  # the same images, in the same order
    graded = run_logits(run, ts).softmax(1)  # the grader: cached body features, then the head
    ev = evaluate(run, folder_dl(test, run.classes, run.size, (run.meta['mean'], run.meta['std'])), split_name='test')
    where = {str(f): i for i, f in enumerate(files)}
    order = np.argsort([where[str(p)] for p in ev.predictions['path']])  # the loader's order, back to the files' order
    evaluated = torch.from_numpy(np.asarray(ev.probs))[order]
    shown = torch.tensor([[q for _, q in sorted(p.top, key=lambda t: run.classes.index(t[0]))] for p in
                          predict_photos(run, files, k=len(run.classes))])
    for name, p in [('grade.run_logits', graded), ('evaluate.evaluate', evaluated), ('report.predict_photos', shown)]:
        assert p.shape == ref.shape, name
        assert torch.allclose(p.float(), ref, atol=1e-5), f'{name} differs by {(p - ref).abs().max():.2e}'
        assert torch.equal(p.argmax(1), ref.argmax(1)), name
    top = run.predict(files[:2], k=1)
    assert [t[0][0] for t in top] == [run.classes[i] for i in ref[:2].argmax(1)]

def test_outputs_restores_mode_and_matches_the_parts(run_and_images):
    run, _, files = run_and_images
    x = run.preprocess(files[:5])
    run.model.train()
    whole = outputs(run.model, [x])
    assert run.model.training  # the training flag is restored
    assert torch.allclose(outputs(run.model.head, [outputs(encoder(run.model), [x])]), whole, atol=1e-6)
    p, y = predictions(run.model, [(x, torch.arange(5))])
    assert torch.allclose(p, whole.softmax(1)) and torch.equal(y, torch.arange(5))
    run.model.eval()
