"Lesson 8's project on the learner's own photos: the shipped photos, the split, the exercise checks and the app's logic."
import pandas as pd, pytest
from cnn_course.data.checks import check_dataset
from cnn_course.course.exercises import EXERCISES, check
from cnn_course.course.own_photos import (PLANTED, SAMPLES, loss_table, photo_answer, photo_block, planted, sample_photos,
                                   save_uploads, split_photos)

@pytest.fixture(autouse=True)
def _feedback_not_exceptions(monkeypatch): monkeypatch.delenv('IN_TEST', raising=False)

def test_shipped_photos_are_there_small_and_valid():
    photos = sample_photos()
    files = sorted(photos.glob('*/*.jpg'))
    assert {f.parent.name for f in files} == {'avocado', 'banana', 'lemon'} and len(files) == 56
    assert sum(f.stat().st_size for f in files) < 2_000_000
    rep = check_dataset(photos, use_cache=False)
    assert rep.ok and not rep.problems, rep.summary()
    assert rep.counts == {'': {'avocado': 18, 'banana': 19, 'lemon': 19}}
    readme = (SAMPLES.parent/'README.md').read_text()
    assert 'MIT' in readme and 'fc80ba90f803d79d0383df52c5a4ac5de99ff6fc' in readme
    assert all(f'own_photos/{f.parent.name}/{f.name}' in readme for f in files)  # every photo is attributed
    assert (SAMPLES.parent/'LICENSE-GroceryStoreDataset.txt').read_text().startswith('MIT License')
    assert sorted(f'{f.parent.name}/{f.name}' for f in planted(files)) == sorted(PLANTED)

def test_split_is_deterministic_and_stratified(tmp_path):
    s = split_photos(sample_photos())
    assert s == split_photos(sample_photos()) and s != split_photos(sample_photos(), seed=1)
    assert not set(s['train']) & set(s['valid']) and len(s['train']) + len(s['valid']) == 56
    per = lambda fs: pd.Series([f.parent.name for f in fs]).value_counts().to_dict()
    assert per(s['valid']) == {'banana': 5, 'lemon': 5, 'avocado': 4}
    for c in ('a', 'b'):  # a broken file is left out; a class of two photos still gets one validation photo
        (tmp_path/c).mkdir()
        for i in range(2): (tmp_path/c/f'{i}.jpg').write_bytes((SAMPLES/'lemon'/f'lemon_0{i+1}.jpg').read_bytes())
    (tmp_path/'a'/'broken.jpg').write_bytes(b'not a jpeg')
    s2 = split_photos(tmp_path)
    assert per(s2['valid']) == {'a': 1, 'b': 1} and tmp_path/'a'/'broken.jpg' not in s2['train'] + s2['valid']

def test_checks_right_and_wrong():
    s = split_photos(sample_photos(), max_per_class=6)
    dls = photo_block(s['valid']).dataloaders(s['train'] + s['valid'], bs=4, num_workers=0)
    assert check('8.1', dls, split=s).ok
    other = split_photos(sample_photos(), max_per_class=6, seed=7)
    wrong = photo_block(other['valid']).dataloaders(other['train'] + other['valid'], bs=4, num_workers=0)
    fb = check('8.1', wrong, split=s); assert fb.ok is False and 'validation' in fb.text
    assert check('8.1', 'dls', split=s).ok is False
    h = pd.DataFrame(dict(epoch=[1, 2, 3], valid_loss=[.5, .3, .6], accuracy=[.9, 1., 1.]))
    assert check('8.2', 2, history=h).ok and 'tie' in check('8.2', 3, history=h).text
    t = pd.DataFrame(dict(path=[SAMPLES/p for p in PLANTED] + s['train'][:8], label=['banana', 'lemon'] + ['x']*8,
                          predicted=['lemon', 'avocado'] + ['x']*8, probability=[.9]*10))
    fb = check('8.3', [SAMPLES/p for p in PLANTED], table=t); assert fb.ok and 'found 2' in fb.text
    assert check('8.3', [s['train'][0]], table=t).ok is False
    assert check('8.4', 'too short').ok is False and check('8.4', ' '.join(['word']*30)).ok
    assert check('8.5', 100/12, n_valid=12).ok and not check('8.5', 1/12, n_valid=12).ok
    assert [EXERCISES[i].points for i in ('8.1', '8.2', '8.3', '8.4', '8.5')] == [0, 0, 0, 1, 0]

def test_save_uploads(tmp_path):
    up = ({'name': 'a b.jpg', 'content': (SAMPLES/'lemon'/'lemon_01.jpg').read_bytes()}, {'name': 'x.txt', 'content': b'x'})
    assert [f.relative_to(tmp_path).as_posix() for f in save_uploads(up, tmp_path, 'lemon')] == ['lemon/a_b.jpg']

def test_app_answers_a_shipped_photo(tmp_path):
    from fastai.vision.all import accuracy, vision_learner
    from cnn_course.training.learner import CachedBody
    from cnn_course.inference.runs import load_run
    from cnn_course.models.weights import install_timm_weights
    install_timm_weights()
    s = split_photos(sample_photos(), max_per_class=4)
    dls = photo_block(s['valid'], size=128).dataloaders(s['train'] + s['valid'], bs=4, num_workers=0)
    learn = vision_learner(dls, 'tf_efficientnet_lite0', metrics=accuracy, cbs=CachedBody())
    learn.fine_tune(0, base_lr=1e-2, freeze_epochs=3)
    t = loss_table(learn, dls.test_dl(s['valid'], with_labels=True))
    assert list(t.columns) == ['path', 'label', 'predicted', 'probability', 'loss'] and t.loss.is_monotonic_decreasing
    learn.save_run(tmp_path/'run')
    run = load_run(tmp_path/'run')
    photo = SAMPLES/'lemon'/'lemon_01.jpg'
    a = photo_answer(run, photo.read_bytes(), sure=0.)  # the uploaded bytes, as the app passes them
    assert a.split(' (')[0] in run.classes and a.endswith('%)'), a
    assert photo_answer(run, photo, sure=1.01).startswith('Not sure: ')
    assert photo_answer(run, b'GIF89a broken').startswith('Not a photo')
