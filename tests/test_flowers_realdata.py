"End to end on real photos (runs where CNN_COURSE_DATA holds flowers/): train -> saved run -> report -> predict."
import json, os
from pathlib import Path
import numpy as np, pandas as pd, pytest
from sklearn import metrics as skm
from cnn_course.cli import main

ROOT = os.environ.get('CNN_COURSE_DATA')
pytestmark = pytest.mark.skipif(not ROOT or not (Path(ROOT)/'flowers').is_dir(), reason='needs CNN_COURSE_DATA with flowers/')

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A pretrained EfficientNet-Lite0 head trained on 30 photos per class (offline weights from the pip package)."
    out = tmp_path_factory.mktemp('runs')/'flowers'
    args = ['train', '--dataset', 'flowers', '--data', str(Path(ROOT)/'flowers'), '--max-per-class', '30', '--out', str(out), '--quiet']
    assert main(args) == 0
    return out

def test_small_flowers_run_is_pretrained_and_learns(run):
    meta = json.loads((run/'model.json').read_text())
    assert meta['pretrained'] and meta['classes'] == ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
    assert meta['metrics']['n_test'] == 150 and meta['metrics']['test_accuracy'] >= 0.75, meta['metrics']  # chance: 0.2

def test_report_agrees_with_sklearn_on_its_own_predictions(run, tmp_path, capsys):
    assert main(['report', '--model', str(run), '--data', str(Path(ROOT)/'flowers'), '--out', str(tmp_path/'rep')]) == 0
    out = capsys.readouterr().out
    assert all(f'Accuracy of {c}' in out for c in ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'])
    m = json.loads((tmp_path/'rep'/'metrics.json').read_text())
    pred = pd.read_csv(tmp_path/'rep'/'predictions.csv')
    assert m['split'] == 'test' and len(pred) == m['n'] == 736  # the whole test split, not the training subset
    assert set(m['per_class']) == set(m['classes'])  # one row per class (it sat in the comment above, never checked)
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(pred.label, pred.prediction))
    np.testing.assert_array_equal(m['confusion_matrix'], skm.confusion_matrix(pred.label, pred.prediction, labels=m['classes']))
    p, r, f, s = skm.precision_recall_fscore_support(pred.label, pred.prediction, labels=m['classes'], zero_division=0)
    for i, c in enumerate(m['classes']):
        pc = m['per_class'][c]
        assert (pc['precision'], pc['recall'], pc['f1'], pc['support']) == pytest.approx((p[i], r[i], f[i], s[i]))
    lo, hi = m['accuracy_ci95']
    assert lo < m['accuracy'] < hi
    assert (tmp_path/'rep'/'report.html').stat().st_size > 10_000

def test_predict_a_photo_from_the_command_line(run, capsys):
    photo = sorted((Path(ROOT)/'flowers'/'test'/'sunflowers').glob('*.jpg'))[0]
    assert main(['predict', '--model', str(run), str(photo), '-k', '5']) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(photo)) and line.count('%') == 5

def test_upload_widget_given_a_real_photos_bytes_shows_top_k(run):
    "The lesson-1 widget, driven in code as a browser upload would (ipywidgets 8: a tuple of dicts, content a memoryview)."
    import datetime, re
    from cnn_course.course.lessons import sample_photo
    from cnn_course.inference.runs import load_run
    from cnn_course.course.widgets import UploadPredictor
    data = sample_photo('flower').read_bytes()  # a JPEG from outside the dataset
    w = UploadPredictor(load_run(run), k=3)
    w.upload.value = ({'name': 'my_flower.jpg', 'type': 'image/jpeg', 'size': len(data), 'content': memoryview(data),
                       'last_modified': datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)
    shown = re.findall(r'<li>(.*?) <b>([\d.]+)%</b></li>', w.output.value)
    (top,) = load_run(run).predict([data], k=3)
    assert [c for c, _ in shown] == [c for c, _ in top] and len(shown) == 3
    assert [float(p) for _, p in shown] == pytest.approx([100*p for _, p in top], abs=0.051)
    assert 'my_flower.jpg' in w.output.value and '<img' in w.output.value
