"Widgets: the pure functions behind them, and the widgets driven by setting their values in code (ipywidgets 8)."
import datetime, io, re
import numpy as np, pytest, torch
from PIL import Image
from traitlets import TraitError
from matplotlib.figure import Figure
from cnn_course.course import widgets as W, explorers as E
from cnn_course.data.loaders import AUGS
from cnn_course.data.shapes import make_shapes
from cnn_course.evaluation.report import PhotoPrediction
from cnn_course.inference.runs import load_run, to_pixels
from cnn_course.training.recipes import train
from cnn_course.training.lr_finder import LRSuggestions, SUGGESTERS

@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp('data')/'shapes', n_classes=4, size=32, n_per_class=15, seed=0)

@pytest.fixture(scope='module')
def run(shapes, tmp_path_factory):
    "A real saved run: simple_cnn trained one epoch on 4 shapes, reloaded from disk."
    out = tmp_path_factory.mktemp('runs')/'run'
    with pytest.MonkeyPatch.context() as m:
        m.setenv('CNN_COURSE_HOME', str(out.parent/'home')); m.setenv('CNN_COURSE_OFFLINE', '1')
        train('shapes', 'simple_cnn', data=shapes, pretrained=False, out=out, max_per_class=8, size=32, epochs=1, bs=8)
    return load_run(out)

def _png(im:Image.Image, fmt='PNG') -> bytes:
    buf = io.BytesIO(); im.save(buf, format=fmt); return buf.getvalue()

def _file(name, data, kind='image/png'):
    "One file of `FileUpload.value` as ipywidgets 8 makes it after a browser upload."
    return {'name': name, 'type': kind, 'size': len(data), 'content': memoryview(data),
            'last_modified': datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}

def _shown(html:str) -> list:
    "(class, percentage text) pairs listed in a predictions HTML, in order."
    return re.findall(r'<li>(.*?) <b>([\d.]+%)</b></li>', html)

def _photo(shapes, cls='circle', i=0) -> bytes: return sorted((shapes/'test'/cls).glob('*.png'))[i].read_bytes()

# --- upload -> predictions ---------------------------------------------------------------------------------------

def test_uploaded_files_accepts_v8_and_v7_and_rejects_the_rest():
    v8 = (_file('a.png', b'abc'), {'name': 'b.jpg', 'content': b'xyz'})
    assert W.uploaded_files(v8) == [('a.png', b'abc'), ('b.jpg', b'xyz')]
    assert W.uploaded_files(list(v8)) == W.uploaded_files(v8)
    assert W.uploaded_files({'a.png': {'metadata': {'type': 'image/png'}, 'content': b'abc'}}) == [('a.png', b'abc')]
    assert W.uploaded_files(()) == W.uploaded_files({}) == []
    for bad in (None, b'abc', 'a.png', [1], ({'name': 'a.png'},), {'a.png': b'abc'}):
        with pytest.raises(TypeError, match='Expected a FileUpload value.*ipywidgets 8.*ipywidgets 7'): W.uploaded_files(bad)

def test_predictions_html_names_thumbnail_percentages_and_escaping():
    im = Image.new('RGB', (50, 30), 'red')
    h = W.predictions_html([PhotoPrediction('<b>me</b>.png', im, [('roses', .625), ('tulips & co', .25), ('daisy', .125)]),
                            PhotoPrediction('notes.txt', None, [])])
    assert _shown(h) == [('roses', '62.5%'), ('tulips &amp; co', '25.0%'), ('daisy', '12.5%')]
    assert '&lt;b&gt;me&lt;/b&gt;.png' in h and '<b>me</b>' not in h
    assert h.count('<img src="data:image/png;base64,') == 1
    assert 'notes.txt' in h and W.NOT_IMAGE in h
    assert _shown(W.predictions_html([[('a', .9)], [('b', .6)]])) == [('a', '90.0%'), ('b', '60.0%')]
    assert 'Upload one or more images' in W.predictions_html([])

def test_upload_widget_shows_run_top_k_in_probability_order(run, shapes):
    photo = _photo(shapes)
    w = W.UploadPredictor(run, k=3)
    assert w.upload.accept == 'image/*' and w.upload.multiple and 'Upload one or more images' in w.output.value
    w.upload.value = (_file('x.png', photo),)  # what a browser upload does: the observer must fire
    (top,) = run.predict([photo], k=3)
    shown = _shown(w.output.value)
    assert [c for c, _ in shown] == [c for c, _ in top] and len(shown) == 3
    assert [p for _, p in shown] == [f'{p:.1%}' for _, p in top]
    assert set(c for c, _ in shown) <= set(run.classes) and '<b>x.png</b>' in w.output.value
    probs = run.probabilities([photo])[0]
    assert [run.classes[i] for i in probs.argsort(descending=True)[:3]] == [c for c, _ in shown]

def test_upload_several_files_jpeg_and_a_non_image(run, shapes):
    a, b = _photo(shapes, 'square'), _png(Image.open(io.BytesIO(_photo(shapes, 'cross'))), 'JPEG')
    w = W.UploadPredictor(run, k=2)
    w.upload.value = (_file('sq.png', a), _file('notes.txt', b'hello', 'text/plain'), _file('st.jpg', b, 'image/jpeg'))
    tops = run.predict([a, b], k=2)
    assert [c for c, _ in _shown(w.output.value)] == [c for t in tops for c, _ in t]
    h = w.output.value
    assert h.index('sq.png') < h.index('notes.txt') < h.index('st.jpg')
    assert h.count(W.NOT_IMAGE) == 1 and h.count('<img ') == 2
    w.upload.value = ()  # cleared upload
    assert 'Upload one or more images' in w.output.value and not _shown(w.output.value)

def test_v7_value_gives_same_html_and_ipywidgets8_refuses_it(run, shapes):
    photo = _photo(shapes)
    v7 = {'x.png': {'metadata': {'name': 'x.png', 'type': 'image/png', 'size': len(photo)}, 'content': photo}}
    assert W.predict_upload(run, v7, k=2) == W.predict_upload(run, (_file('x.png', photo),), k=2)
    assert W.NOT_IMAGE in W.predict_upload(run, {'a.txt': {'content': b'nope'}})
    w = W.UploadPredictor(run)
    with pytest.raises(TraitError): w.upload.value = v7  # ipywidgets 8's value is a tuple: v7 only reaches the function

def test_widgets_display_as_their_box(run):
    w = W.UploadPredictor(run)
    b = w._repr_mimebundle_()
    assert b['application/vnd.jupyter.widget-view+json']['model_id'] == w.box.model_id
    assert w.upload in w.box.children and w.output in w.box.children

# --- augmentation --------------------------------------------------------------------------------------------------

def _asym(size=48) -> Image.Image:
    "An image that differs from its mirror: a horizontal gradient with a mark on the left."
    a = np.zeros((size, size, 3), np.uint8); a[..., 0] = np.linspace(0, 255, size)[None]; a[5:15, 3:9, 1] = 255
    return Image.fromarray(a)

def _arr(ims): return np.stack([np.asarray(i) for i in ims]).astype(int)

def test_augment_same_seed_same_pixels_and_shapes():
    im = _asym()
    a, b = E.augment_examples(im, n=6, seed=3, size=40), E.augment_examples(_png(im), n=6, seed=3, size=40)
    assert len(a) == 6 and all(i.size == (40, 40) and i.mode == 'RGB' for i in a)
    np.testing.assert_array_equal(_arr(a), _arr(b))
    assert not np.array_equal(_arr(a), _arr(E.augment_examples(im, n=6, seed=4, size=40)))
    assert len({i.tobytes() for i in a}) > 1  # the copies differ from each other
    state = torch.get_rng_state()
    E.augment_examples(im, n=2)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random state is left alone

def test_augment_nothing_gives_the_resized_original(tmp_path):
    f = tmp_path/'a.png'; _asym(60).save(f)
    none = dict(do_flip=False, max_rotate=0, max_zoom=1, max_lighting=0, max_warp=0)
    out = _arr(E.augment_examples(f, n=3, size=32, **none))
    ref = to_pixels(f, 32).permute(1, 2, 0).numpy().astype(int)
    assert np.abs(out - ref[None]).max() <= 1

def test_augment_flip_only_mirrors_some_and_keeps_others():
    im = _asym(32)
    ref = to_pixels(im, 32).permute(1, 2, 0).numpy().astype(int)
    out = _arr(E.augment_examples(im, n=16, seed=0, size=32, do_flip=True, max_rotate=0, max_zoom=1, max_lighting=0, max_warp=0))
    same = [np.abs(o - ref).max() <= 1 for o in out]
    mirrored = [np.abs(o - ref[:, ::-1]).max() <= 1 for o in out]
    assert all(s or m for s, m in zip(same, mirrored))  # flip is the only change...
    assert any(mirrored) and any(same)  # ...applied with fastai's p=0.5

def test_augment_accepts_every_family_and_names_valid_keys():
    for fam, aug in AUGS.items(): assert len(E.augment_examples(_asym(), n=2, size=24, **aug)) == 2, fam
    with pytest.raises(TypeError, match=r"Unknown augmentation max_rotation, zoom\. Valid: .*max_rotate.*max_zoom.*p_affine"):
        E.augment_examples(_asym(), max_rotation=10, zoom=1.2)

def test_augment_explorer_presets_and_passes_slider_values(monkeypatch):
    calls = []
    real = E.augment_examples
    monkeypatch.setattr(E, 'augment_examples', lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    e = E.AugmentExplorer([_asym(), _png(_asym(20))], family='eggs', n=3, size=24)
    assert (e.sliders['max_rotate'].value, e.flips['flip_vert'].value) == (45, True)
    assert calls and calls[-1][1] == AUGS['eggs'] and calls[-1][0][1:] == (3, 0, 24)
    before, n = e.output.value, len(calls)
    e.sliders['max_rotate'].value, e.sliders['max_warp'].value = 70, .3
    assert calls[-1][1]['max_rotate'] == 70 and calls[-1][1]['max_warp'] == .3 and len(calls) == n + 2
    assert 'max_rotate=70.0' in e.output.value and e.output.value != before and e.output.value.count('<img ') == 3
    e.seed.value = 7; assert calls[-1][0][2] == 7
    e.image.value = 'image 1'; assert isinstance(calls[-1][0][0], bytes)
    n = len(calls)
    e.family.value = 'sports'  # one render for the whole preset, not one per control
    assert len(calls) == n + 1 and calls[-1][1] == {**AUGS['sports'], 'flip_vert': False}
    e.update(); assert len(calls) == n + 2
    with pytest.raises(ValueError, match='Give at least one image'): E.AugmentExplorer([])

def test_augment_explorer_names_images_uniquely(tmp_path):
    for d in 'ab': (tmp_path/d).mkdir(); _asym(16).save(tmp_path/d/'x.png')
    _asym(16).save(tmp_path/'y.png')
    e = E.AugmentExplorer([tmp_path/'a'/'x.png', tmp_path/'b'/'x.png'], n=1, size=8)
    assert list(e.image.options) == ['0: x.png', '1: x.png']
    assert list(E.AugmentExplorer([tmp_path/'y.png', str(tmp_path/'a'/'x.png')], n=1, size=8).image.options) == ['y.png', 'x.png']

# --- learning rate -------------------------------------------------------------------------------------------------

def _curve(noise=.01, seed=0, spike=False):
    "A U-shaped lr_find curve on 1e-7..10: flat, a fall around 1e-3, lowest near 1e-2, then a blow-up."
    lrs = np.geomspace(1e-7, 10, 100); x = np.log10(lrs)
    loss = 2.3 - 1.6/(1 + np.exp(-2.5*(x + 3))) + 2*np.exp(2.5*(x + .5)) + np.random.default_rng(seed).normal(0, noise, 100)
    if spike: loss[3:5] -= .08  # a noisy dip at the start, as real curves have
    t, l = torch.tensor(lrs), torch.tensor(loss)
    return LRSuggestions({k: float(f(t, l, 100)[0]) for k, f in SUGGESTERS.items()}, lrs.tolist(), loss.tolist())

def _verdict(s, lr): return E.lr_advice(s, lr).split(':')[0]

def test_lr_advice_each_region_of_the_curve():
    s = _curve()
    pick = f"{s.suggestions['valley']:.1e}"
    low, good, high, too_high = (E.lr_advice(s, lr) for lr in (1e-6, 1e-3, 1e-2, 1.))
    assert low.startswith('too low: the loss barely moves') and 'slow' in low and pick in low
    assert good.startswith('good: the loss falls fast')
    assert high.startswith('high:') and pick in high
    assert too_high.startswith('too high: the loss is already rising') and 'diverge' in too_high and pick in too_high
    assert [_verdict(s, lr) for lr in (1e-9, 1e-7, 1e-4, 3e-3, 3e-2, 100.)] == ['too low', 'too low',
                                                                                'good', 'good', 'too high', 'too high']

def test_lr_advice_is_robust_to_noise_and_follows_the_curve():
    for seed in range(5):
        s = _curve(noise=.03, seed=seed, spike=True)
        assert _verdict(s, s.suggestions['valley']) == 'good'
        assert _verdict(s, 3e-7) == 'too low'  # the dip at the start is noise, not a fall
    shifted = LRSuggestions({'valley': 1e-5}, [lr/100 for lr in _curve().lrs], _curve().losses)
    assert _verdict(shifted, 1e-5) == 'good' and _verdict(shifted, 1e-3) == 'too high'  # the rule reads the curve
    rising = LRSuggestions({'valley': 1e-6}, np.geomspace(1e-7, 1, 50).tolist(), np.linspace(1, 3, 50).tolist())
    assert _verdict(rising, 1e-3) == 'too high'

def test_lr_figure_marks_suggestions_and_lr():
    s = _curve()
    fig = E.lr_figure(s, 3e-2)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    xs = [tuple(l.get_xdata()) for l in ax.lines]
    assert (3e-2, 3e-2) in xs and all((v, v) in xs for v in s.suggestions.values())
    assert ax.get_title() == 'too high' and ax.get_xscale() == 'log' and ax.get_ylim()[1] < 5  # blow-up clipped

def test_lr_explorer_dropdown_moves_slider_and_advice():
    s = _curve()
    x = E.LRExplorer(s)
    assert x.lr.value == pytest.approx(s.suggestions['valley']) and x.advice.value.startswith('<b>good')
    x.lr.value = 1.
    assert x.advice.value.startswith('<b>too high') and '1.0e+00' in x.advice.value
    before = x.output.value
    x.choice.value = 'steep'
    assert x.lr.value == pytest.approx(s.suggestions['steep'])
    assert x.advice.value == f'<b>{E.esc(E.lr_advice(s, s.suggestions["steep"]))}</b>'
    assert x.output.value.startswith('<img src="data:image/png;base64,') and x.output.value != before
    assert (x.lr.min, x.lr.max) == (-7, 1)

# --- dataset browser -----------------------------------------------------------------------------------------------

def test_browse_pages_sorted_files_and_names_choices(shapes):
    everything = sorted((shapes/'train').glob('*/*.png'))
    pages = [E.browse(shapes, 'train', page=p, per_page=7) for p in range(len(everything)//7 + 1)]
    assert sum(pages, []) == everything and all(len(p) == 7 for p in pages[:-1])
    assert E.browse(shapes, 'train', page=99) == []
    tri = E.browse(shapes, 'valid', 'triangle', per_page=100)
    assert tri == sorted((shapes/'valid'/'triangle').glob('*.png')) and tri
    with pytest.raises(ValueError, match="No split 'val'.*Available: train, valid, test"): E.browse(shapes, 'val')
    with pytest.raises(ValueError, match="No class 'circles'.*Available: circle, cross, square, triangle"):
        E.browse(shapes, 'test', 'circles')
    with pytest.raises(ValueError, match='expected folder/train/CLASS'): E.browse(shapes/'train')

def test_thumbs_html_captions_and_unreadable(shapes, tmp_path):
    files = E.browse(shapes, 'test', per_page=3)
    bad = tmp_path/'cat'/'broken.jpg'; bad.parent.mkdir(); bad.write_bytes(b'not a jpeg')
    h = E.thumbs_html(files + [bad], size=48)
    assert h.count('<img src="data:image/png;base64,') == 3 and W.NOT_IMAGE in h
    assert all(f'{f.parent.name}<br>{f.name}' in h for f in files) and 'cat<br>broken.jpg' in h

def test_dataset_browser_split_class_page(shapes):
    b = E.DatasetBrowser(shapes, per_page=4, size=32)
    assert list(b.split.options) == ['train', 'valid', 'test'] and list(b.cls.options) == ['all', 'circle', 'cross', 'square', 'triangle']
    b.cls.value = 'square'; b.page.value = 1
    shown = E.browse(shapes, 'train', 'square', page=1, per_page=4)
    assert len(shown) == 4 and all(f.name in b.output.value for f in shown)
    assert all(f.name not in b.output.value for f in E.browse(shapes, 'train', 'square', page=0, per_page=4))
    assert b.page.max == (len(list((shapes/'train'/'square').glob('*.png'))) - 1)//4
    assert '<td>square</td><td>' in b.output.value and 'page 2 of' in b.output.value
    b.split.value = 'test'  # the class stays, the page goes back to 0
    assert (b.cls.value, b.page.value) == ('square', 0)
    assert all(f.name in b.output.value for f in E.browse(shapes, 'test', 'square', per_page=4))
    b.cls.value = 'all'
    n_test = len(list((shapes/'test').glob('*/*.png')))
    assert f'{n_test} images' in b.output.value and f'<b>{n_test}</b>' in b.output.value

def test_dataset_browser_by_name_and_errors(shapes, monkeypatch, tmp_path):
    monkeypatch.setenv('CNN_COURSE_DATA', str(shapes.parent))
    b = E.DatasetBrowser('shapes')
    assert b.root == shapes and 'circle' in b.output.value
    with pytest.raises(KeyError, match="Unknown dataset 'shape'.*Available:"): E.DatasetBrowser('shape')
    (tmp_path/'flat'/'cat').mkdir(parents=True)
    with pytest.raises(ValueError, match='Available: none'): E.DatasetBrowser(tmp_path/'flat')

def test_lr_advice_never_recommends_a_rate_it_calls_bad():
    "On a clean curve fastai's valley can sit in the flat part; the advice then points at the steepest fall instead."
    for s in (_curve(noise=0.), _curve(), _curve(noise=.03, seed=3, spike=True)):
        for lr in (1e-7, 1e-5, 1e-3, 1e-1, 1.):
            m = re.search(r'(?:about|try about) ([\d.]+e[+-]\d+)', E.lr_advice(s, lr))
            if m: assert _verdict(s, float(m.group(1))) == 'good', (lr, E.lr_advice(s, lr))
