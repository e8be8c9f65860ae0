"Evaluation and reports: metrics against scikit-learn, fastai evaluation, saved reports, comparison, CLI, headless Chromium."
import argparse, json, math, shutil, subprocess
from pathlib import Path

import numpy as np, pandas as pd, pytest
from PIL import Image
from sklearn import metrics as skm

from cnn_course.core import basics as core
from cnn_course.evaluation.metrics import (Metrics, wilson_interval, metrics_from_predictions, accuracy_lines, per_class_table,
                                        synthetic_predictions, verdict, most_confused)
from cnn_course.evaluation.evaluate import diagnose, evaluate, evaluation_from_probs
from cnn_course.core.images import ImageError
from cnn_course.inference.runs import RunError
from cnn_course.evaluation import compare as compare_module
from cnn_course.evaluation.compare import compare_runs
from cnn_course.data.registry import Reported
from cnn_course.evaluation.report import Report, predict_photos, add_commands, report_html, history_figure, png

FLOWERS = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']

@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    "Caches go to a temporary home and the course stays offline: no test touches the network or ~/.cache."
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')

def _flowers_eval(paths=None, seed=0):
    y, p, cls = synthetic_predictions({'daisy': 60, 'dandelion': 90, 'roses': 65, 'sunflowers': 70, 'tulips': 80},
                                      {'daisy': .93, 'dandelion': .95, 'roses': .8, 'sunflowers': .9, 'tulips': .85}, seed)
    return evaluation_from_probs(p, y, cls, paths)

def _history(vl=(.7, .45, .38, .40, .47)):
    return pd.DataFrame({'epoch': [0, 0, 1, 2, 3], 'phase': ['frozen'] + ['unfrozen']*4,
                         'train_loss': [1.1, .6, .4, .25, .15], 'valid_loss': list(vl), 'accuracy': [.78, .85, .88, .88, .87]})

def _sk_check(m:Metrics, y, yp):
    "Every number of `m` equals scikit-learn's on the same predictions."
    labels = list(range(len(m.classes)))
    assert m.accuracy == pytest.approx(skm.accuracy_score(y, yp))
    np.testing.assert_array_equal(m.cm, skm.confusion_matrix(y, yp, labels=labels))
    p, r, f, s = skm.precision_recall_fscore_support(y, yp, labels=labels, zero_division=0)
    np.testing.assert_allclose(m.precision, p); np.testing.assert_allclose(m.recall, r)
    np.testing.assert_allclose(m.f1, f); np.testing.assert_array_equal(m.support, s)
    rep = skm.classification_report(y, yp, labels=labels, target_names=m.classes, output_dict=True, zero_division=0)
    for k in ('macro', 'weighted'):
        for q in ('precision', 'recall', 'f1'):
            sk_q = 'f1-score' if q == 'f1' else q
            assert m.averages()[k][q] == pytest.approx(rep[f'{k} avg'][sk_q])

# ---- metrics ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('k,n', [(85, 100), (0, 7), (7, 7), (631, 736), (1, 2)])
def test_wilson_matches_scipy(k, n):
    from scipy.stats import binomtest
    ci = binomtest(k, n).proportion_ci(confidence_level=.95, method='wilson')
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 300)
    yp = np.where(rng.random(300) < .7, y, rng.integers(0, 6, 300))
    yp[yp == 5] = 4  # class 5 is never predicted: precision 0 (zero_division=0)
    _sk_check(metrics_from_predictions(y, yp, list('abcdef')), y, yp)

def test_class_without_images_matches_sklearn():
    y, yp = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    m = metrics_from_predictions(y, yp, ['a', 'b', 'c'])
    _sk_check(m, y, yp)
    assert math.isnan(m.class_accuracy[2]) and per_class_table(m).flag[2] == 'no images'

def test_original_format_and_interval():
    m = metrics_from_predictions([0]*100 + [1]*50, [0]*92 + [1]*8 + [1]*45 + [0]*5, ['daisy', 'rose'])
    assert accuracy_lines(m).splitlines() == ['Accuracy of daisy : 92 %', 'Accuracy of rose : 90 %', 'total Accuracy: 91 %']
    m85 = metrics_from_predictions([0]*100, [0]*85 + [1]*15, ['a', 'b'])
    assert 'borderline' in verdict(m85, .85) and '76.7%' in m85.summary() and '90.7%' in m85.summary()
    assert 'below' in verdict(m85, .95) and 'above' in verdict(m85, .75)

def test_most_confused_order():
    m = metrics_from_predictions([0, 0, 0, 1, 2, 2], [1, 1, 2, 1, 0, 2], ['a', 'b', 'c'])
    assert most_confused(m) == [('a', 'b', 2), ('a', 'c', 1), ('c', 'a', 1)]
    with pytest.raises(ValueError, match='pass all 3 classes'): metrics_from_predictions([0, 3], [0, 0], ['a', 'b', 'c'])

@pytest.mark.parametrize('tl,vl,acc,kind', [
    ([1., .6, .4, .2, .1], [.8, .5, .45, .55, .7], [.7, .8, .82, .81, .8], 'over-fitting'),
    ([2., 1.6, 1.4], [1.2, 1.0, .9], [.5, .6, .65], 'under-fitting'),
    ([1., .7, .5], [.9, .7, .5], [.6, .7, .8], 'still improving'),
    ([.5, .45, .44], [.5, .47, .47], [.85, .86, .86], 'converged'),
    ([.5], [.5], [.8], 'too short')])
def test_diagnose(tl, vl, acc, kind):
    h = pd.DataFrame({'epoch': range(len(tl)), 'phase': 'unfrozen', 'train_loss': tl, 'valid_loss': vl, 'accuracy': acc})
    d = diagnose(h)
    assert d.kind == kind and d.text

# ---- evaluate with fastai -----------------------------------------------------------------------------------------

def _tiny_learner(root:Path, n=6):
    import torch
    from fastai.vision.all import (DataBlock, ImageBlock, CategoryBlock, get_image_files, parent_label,
                                   GrandparentSplitter, Learner, nn, CrossEntropyLossFlat)
    cols = {'red': (220, 30, 30), 'green': (30, 200, 30), 'blue': (30, 30, 220)}
    for split in ('train', 'valid', 'test'):
        for c, col in cols.items():
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for i in range(n): Image.new('RGB', (16, 16), tuple(max(0, v - 11*i) for v in col)).save(root/split/c/f'{i}.png')
    dls = DataBlock((ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                    splitter=GrandparentSplitter('train', 'valid')).dataloaders(root, bs=6, num_workers=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat())

def test_evaluate_learner_on_test_dl(tmp_path):
    from fastai.vision.all import get_image_files
    learn = _tiny_learner(tmp_path)
    files = get_image_files(tmp_path/'test')
    ev = evaluate(learn, dl=learn.dls.test_dl(files, with_labels=True))
    assert ev.metrics.split == 'test' and len(ev.predictions) == 18
    np.testing.assert_array_equal(ev.metrics.cm, ev.interp.confusion_matrix())
    pairs = most_confused(ev.metrics)
    assert pairs, 'the tiny untrained model must confuse some classes, or this comparison checks nothing'
    assert ev.interp.most_confused() == [tuple(p) for p in pairs]
    assert list(ev.predictions.path) == [str(f) for f in files]
    assert list(ev.predictions.label) == [f.parent.name for f in files]
    y = [ev.metrics.classes.index(c) for c in ev.predictions.label]
    yp = [ev.metrics.classes.index(c) for c in ev.predictions.prediction]
    _sk_check(ev.metrics, y, yp)
    np.testing.assert_allclose(ev.predictions.loss, ev.interp.losses.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ev.predictions.probability, ev.probs.max(1))
    assert ev.top_losses(3).loss.is_monotonic_decreasing

def test_evaluate_split_must_be_named(tmp_path):
    learn = _tiny_learner(tmp_path, n=2)
    with pytest.raises(ValueError, match="Choose 'test' or 'valid'"): evaluate(learn, split='tset')
    with pytest.raises(ValueError, match='pass `dl=`'): evaluate(learn)  # plain learner: no dataset to find a test split in
    ev = evaluate(learn, split='valid')
    assert ev.metrics.split == 'valid' and ev.metrics.n == 6
    assert 'come from the valid split' in report_html(Report(ev))

# ---- reports ------------------------------------------------------------------------------------------------------

def _images(folder:Path, n:int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder/f'{i}.png')
        Image.fromarray(np.full((24, 24, 3), rng.integers(0, 255, 3), dtype=np.uint8)).save(paths[-1])
    return paths

@pytest.fixture(scope='module')
def saved_report(tmp_path_factory):
    d = tmp_path_factory.mktemp('rep')
    ev = _flowers_eval(_images(d/'imgs', 365))
    rep = Report(ev, _history(), {'arch': 'resnet18', 'dataset': 'flowers', 'size': 64, 'epochs': 5}, target=.85)
    return rep, rep.save(d/'report')

def test_report_files_agree_with_sklearn(saved_report):
    rep, out = saved_report
    assert {f.name for f in out.iterdir()} >= {'report.html', 'metrics.json', 'predictions.csv', 'confusion.png',
                                               'history.png', 'per_class.png', 'top_losses.png', 'distribution.png'}
    assert not list(out.glob('*.part'))
    js, pr = json.loads((out/'metrics.json').read_text()), pd.read_csv(out/'predictions.csv')
    assert list(pr.columns[:4]) == ['path', 'label', 'prediction', 'probability']
    assert js['classes'] == FLOWERS and set(js['per_class']) == set(FLOWERS)
    y, yp = pr.label.map(FLOWERS.index), pr.prediction.map(FLOWERS.index)
    assert js['accuracy'] == pytest.approx(skm.accuracy_score(y, yp))
    assert js['confusion_matrix'] == skm.confusion_matrix(y, yp).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(y, yp, zero_division=0)
    for i, c in enumerate(FLOWERS):
        pc = js['per_class'][c]
        assert (pc['precision'], pc['recall'], pc['f1'], pc['support']) == pytest.approx((p[i], r[i], f[i], s[i]))
        assert pc['accuracy'] == pytest.approx(r[i])
    k = int((y == yp).sum())
    assert js['accuracy_ci95'] == pytest.approx(list(wilson_interval(k, len(y))))
    assert js['diagnosis'] == 'over-fitting'
    html = (out/'report.html').read_text()
    for c in FLOWERS: assert f'<td>{c}</td>' in html
    assert 'Accuracy of daisy : ' in html and 'total Accuracy: ' in html
    assert 'http://' not in html and 'https://' not in html and html.count('data:image/png;base64,') == 5

def test_report_renders_in_notebook(saved_report):
    rep, _ = saved_report
    h, md = rep._repr_html_(), rep._repr_markdown_()
    assert '<body' not in h and '.cnnr ' in h and 'data:image/png;base64,' in h
    assert 'resnet18 on flowers' in md and '| tulips |' in md

def test_imbalanced_minority_is_flagged(tmp_path):
    y, p, cls = synthetic_predictions({'circle': 200, 'square': 180, 'triangle': 190, 'star': 12},
                                      {'circle': .95, 'square': .93, 'triangle': .94, 'star': .4})
    rep = Report(evaluation_from_probs(p, y, cls))
    assert rep.metrics.accuracy > .9 and rep.metrics.averages()['weighted']['f1'] > .9  # the totals hide it...
    t = rep.metrics.table()
    assert t.loc[t.flag.str.startswith('weakest'), 'class'].tolist() == ['star']  # ...the per-class table does not
    out = rep.save(tmp_path/'r')
    assert '<tr class="weak"><td>star</td>' in (out/'report.html').read_text()
    assert json.loads((out/'metrics.json').read_text())['per_class']['star']['flag'] == 'weakest, below overall'
    assert '**weakest, below overall**' in rep._repr_markdown_()

def test_save_keeps_other_files(tmp_path, saved_report):
    rep, _ = saved_report
    (tmp_path/'notes.txt').write_text('mine')
    rep.save(tmp_path)
    assert (tmp_path/'notes.txt').read_text() == 'mine'

def test_history_figure_with_phases():
    h = _history()
    fig = history_figure(h)
    loss, acc = fig.axes[:2]
    x = list(range(1, len(h) + 1))
    curves = {l.get_label(): l for l in loss.lines + acc.lines}
    np.testing.assert_allclose(curves['train loss'].get_ydata(), h.train_loss)  # the numbers drawn are the history's
    np.testing.assert_allclose(curves['valid loss'].get_ydata(), h.valid_loss)
    np.testing.assert_allclose(curves['valid accuracy'].get_ydata(), h.accuracy)
    assert list(curves['train loss'].get_xdata()) == x
    switch = int((h.phase != h.phase.iloc[0]).values.argmax()) + 0.5  # the dotted line sits between the two phases
    assert [l.get_xdata()[0] for l in loss.lines if l.get_label() == 'unfrozen'] == [switch]
    assert fig._suptitle.get_text() == f'Diagnosis: {diagnose(h).kind}'
    assert png(fig).startswith(b'\x89PNG')

# ---- photos -------------------------------------------------------------------------------------------------------

def test_predict_photos_files_and_urls(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.delenv('CNN_COURSE_OFFLINE', raising=False)
    Image.new('RGB', (30, 30), 'yellow').save(f := tmp_path/'daisy.jpg')
    model = lambda ims: np.tile([.1, .6, .3], (len(ims), 1))
    preds = predict_photos(model, [f, f.as_uri()], classes=['a', 'b', 'c'], k=2)
    assert [p.top for p in preds] == [[('b', .6), ('c', .3)]]*2
    assert len(list((tmp_path/'home'/'photos').iterdir())) == 1  # the file:// URL went through core.download
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    with pytest.raises(core.OfflineError, match='file path instead'): predict_photos(model, ['https://example.org/x.jpg'], ['a', 'b', 'c'])
    with pytest.raises(ImageError, match='no such file'): predict_photos(model, [tmp_path/'nope.jpg'], ['a', 'b', 'c'])

# ---- comparison and CLI -------------------------------------------------------------------------------------------

def _fake_run(root:Path, name, arch, size, test, secs, dataset='sports100'):
    (r := root/name).mkdir(parents=True)
    met = {'valid_accuracy': (test or .8) + .01, **({'test_accuracy': test} if test else {})}
    (r/'model.json').write_text(json.dumps({'arch': arch, 'classes': FLOWERS, 'size': size, 'dataset': dataset,
        'pretrained': True, 'epochs': 4, 'seconds': {'frozen': 1, 'unfrozen': secs - 1, 'total': secs}, 'metrics': met}))
    _history().to_csv(r/'history.csv', index=False)
    return r

def test_compare_runs(tmp_path):
    runs = [_fake_run(tmp_path, 'r18', 'resnet18', 160, .81, 300), _fake_run(tmp_path, 'b0', 'efficientnet_b0', 224, .88, 520),
            _fake_run(tmp_path, 'nv', 'mobilenet', 128, None, 100)]
    c = compare_runs(runs)
    assert list(c.table.run) == ['b0', 'r18', 'nv'] and c.table['seconds'].tolist() == [520, 300, 100]
    assert c.accuracy().tolist() == pytest.approx([.88, .81, .81])
    assert [(r.label, r.accuracy) for r in c.reported] == [('EfficientNetB0', .97), ('ResNet50', .89)]
    c2 = compare_runs(runs[:1], reported={'VGG16 (original)': .9})
    assert c2.reported == (Reported('VGG16 (original)', .9),)
    c3 = compare_runs(runs[:1], reported=[('x', .85, 'target')])  # plain (label, accuracy, kind) tuples
    assert c3.reported[0].kind == 'target' and 'x: test accuracy >= 85% required' in c3._repr_markdown_()
    out = c.save(tmp_path/'cmp')
    assert pd.read_csv(out/'comparison.csv').shape[0] == 3 and (out/'comparison.png').stat().st_size > 1000
    with pytest.raises(RunError, match='no model.json'): compare_runs([tmp_path])

def _cli(*argv):
    ap = argparse.ArgumentParser(prog='cnn-course'); sub = ap.add_subparsers()
    add_commands(sub); compare_module.add_commands(sub)
    args = ap.parse_args([str(a) for a in argv])
    from cnn_course.cli import run_command  # as `cnn-course` runs it: an error is one line and an exit code
    return run_command(args)

def test_cli_compare(tmp_path, capsys):
    run = _fake_run(tmp_path, 'r18', 'resnet18', 160, .81, 300)
    assert _cli('compare', run, '--out', tmp_path/'o') == 0
    out = capsys.readouterr().out
    assert 'resnet18' in out and 'EfficientNetB0: 97%' in out and (tmp_path/'o'/'comparison.csv').exists()
    assert _cli('compare', tmp_path/'missing') == 1
    assert 'no model.json' in capsys.readouterr().err

# ---- headless Chromium --------------------------------------------------------------------------------------------

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
_PROBE = ("<script>addEventListener('load',()=>{const r={};for(const i of document.images){const b=i.getBoundingClientRect();"
          "r[i.alt]=[b.left,b.top,b.width,b.height,i.naturalWidth];}document.body.dataset.rects=JSON.stringify(r);});</script>")

def _chromium(url, tmp_path, *flags):
    user = tmp_path/f'profile{len(list(tmp_path.glob("profile*")))}'
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync', f'--user-data-dir={user}',
           '--window-size=1200,2400', '--hide-scrollbars', *flags, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

@pytest.mark.skipif(not CHROMIUM, reason='chromium is not installed (apt-get install chromium)')
def test_report_html_in_headless_chromium(saved_report, tmp_path):
    _, out = saved_report
    # Where the figures land in the page: a copy of the report with a probe script, read back through --dump-dom.
    probe = tmp_path/'probe.html'
    probe.write_text((out/'report.html').read_text().replace('</body>', _PROBE + '</body>'))
    dom = _chromium(probe.as_uri(), tmp_path, '--dump-dom').stdout
    rects = json.loads(dom.split('data-rects="', 1)[1].split('"', 1)[0].replace('&quot;', '"'))
    assert all(r[4] > 0 for r in rects.values()), rects  # every embedded image decoded
    shot = tmp_path/'shot.png'
    _chromium((out/'report.html').as_uri(), tmp_path, f'--screenshot={shot}')
    im = np.asarray(Image.open(shot).convert('RGB')).astype(int)
    assert im.shape[:2] == (2400, 1200) and im.std() > 20  # not blank
    def region(name):
        l, t, w, h, _ = (int(v) for v in rects[name])
        assert t + h <= 2400, f'{name} is below the fold of the screenshot'
        return im[t:t+h, l:l+w].reshape(-1, 3)
    near = lambda px, rgb: (np.abs(px - rgb).sum(1) < 40).sum()
    conf, hist = region('confusion'), region('history')
    assert near(conf, (8, 48, 107)) > 500  # dark 'Blues' cells of the confusion matrix diagonal
    assert near(hist, (255, 127, 14)) > 200 and near(hist, (31, 119, 180)) > 200  # orange valid / blue train curves

# ---- glue with the data layer: a saved-run-like object on generated shapes -------------------------------------------

def _shape_run(root:Path, splits=True):
    "A `runs.Run` as `load_run` returns it, around an untrained tiny model, on an imbalanced shapes set."
    import torch
    from cnn_course.data.fetch import make_shapes
    from cnn_course.inference.runs import Run
    data = make_shapes(root/'shapes', n_classes=3, size=32, n_per_class=24, imbalance=4, seed=0)
    if not splits: shutil.rmtree(data/'test')
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    meta = {'arch': 'tiny', 'dataset': 'shapes', 'data_path': str(data), 'size': 32, 'seed': 0,
            'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225], 'classes': ['circle', 'square', 'triangle']}
    return Run(root/'run', model, meta, _history()), data

def test_evaluate_saved_run_on_test_split(tmp_path):
    run, data = _shape_run(tmp_path)
    ev = evaluate(run)
    files = sorted((data/'test').rglob('*.png'))
    assert ev.metrics.split == 'test' and ev.metrics.n == len(files)
    assert sorted(ev.predictions.path) == sorted(map(str, files))
    assert (ev.predictions.label == [Path(p).parent.name for p in ev.predictions.path]).all()
    y = ev.predictions.label.map(run.classes.index); yp = ev.predictions.prediction.map(run.classes.index)
    _sk_check(ev.metrics, y, yp)
    run.classes = ['a', 'b', 'c']
    with pytest.raises(ValueError, match='trained on classes'): evaluate(run)

def test_no_test_split_is_said_clearly(tmp_path):
    run, _ = _shape_run(tmp_path, splits=False)
    with pytest.raises(ValueError, match='There is no test split'): evaluate(run)
    assert evaluate(run, split='valid').metrics.split == 'valid'

def test_predict_photos_with_saved_run(tmp_path):
    run, data = _shape_run(tmp_path)
    photo = next((data/'test'/'circle').iterdir())
    [pred] = predict_photos(run, [photo], k=2)
    assert [c for c, _ in pred.top] != [] and len(pred.top) == 2 and set(c for c, _ in pred.top) <= set(run.classes)
    assert pred.top[0][1] >= pred.top[1][1] and 0 < sum(p for _, p in pred.top) <= 1 + 1e-6

def test_build_report_and_cli(tmp_path, monkeypatch, capsys):
    from cnn_course.evaluation import report
    run, data = _shape_run(tmp_path)
    monkeypatch.setattr(report, 'load_run', lambda d: run)
    photo = next((data/'test'/'square').iterdir())
    assert _cli('report', '--model', tmp_path/'run', '--out', tmp_path/'rep', '--photo', photo, '--target', '0.9') == 0
    out = capsys.readouterr().out
    assert 'Test accuracy' in out and 'Accuracy of circle : ' in out and 'target' in out
    rep = tmp_path/'rep'
    assert {'report.html', 'metrics.json', 'predictions.csv', 'photos.png', 'distribution.png'} <= {f.name for f in rep.iterdir()}
    js = json.loads((rep/'metrics.json').read_text())
    assert js['classes'] == run.classes and js['dataset'] == 'shapes'
    assert _cli('report', '--model', tmp_path/'run', '--out', tmp_path/'rep2', '--data', tmp_path/'nowhere') == 1
    assert 'error:' in capsys.readouterr().err
