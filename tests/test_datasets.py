"Tests of cnn_course.data.fetch: the registry, generated datasets, the lookup order and the download path (no network)."
import argparse, inspect, io, tarfile, urllib.error, zipfile
from dataclasses import replace
from pathlib import Path
import pytest
from PIL import Image
from cnn_course.data import catalog
from cnn_course.core import basics as core
from cnn_course.core import downloads
from cnn_course.core.basics import NotAvailableError, UnknownNameError
from cnn_course.data.fetch import dataset_path, relayout
from cnn_course.data.registry import DATASETS, GROCERY, GROCERY10, get_dataset
from cnn_course.core.layout import split_counts
from cnn_course.data.shapes import make_digits, make_shapes
from cnn_course.data.catalog import datasets_table
from cnn_course.data.catalog import reported_text
from cnn_course.evaluation.compare import reported_accuracies

REQUIRED = ['flowers', 'clothing', 'fashion5', 'sports100', 'eggs', 'anime', 'grocery', 'grocery10', 'products10',
            'products30',
            'digits', 'shapes']
REAL = pytest.mark.realdata  # skipped without CNN_COURSE_DATA (tests/conftest.py)

@pytest.fixture
def home(tmp_path, monkeypatch):
    "A fresh course home, no real-data root, online."
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.delenv('CNN_COURSE_DATA', raising=False)
    monkeypatch.delenv('CNN_COURSE_OFFLINE', raising=False)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    real_open = downloads._open_url
    def local_only(url, timeout):
        if not url.startswith('file:'): raise urllib.error.URLError('network disabled in tests')
        return real_open(url, timeout)
    monkeypatch.setattr(downloads, '_open_url', local_only)
    return tmp_path/'home'

def class_folders(root, classes=('daisy', 'roses'), n=10, wrap=None):
    "Class folders of small JPEGs (an unpacked archive without a split)."
    base = root/wrap if wrap else root
    for c in classes:
        (base/c).mkdir(parents=True)
        for i in range(n): Image.new('RGB', (16, 16), (i*20, 40, 90)).save(base/c/f'{c}_{i}.jpg')
    return root

def tgz_of(folder, dest):
    with tarfile.open(dest, 'w:gz') as t: t.add(folder, arcname='.')
    return dest

# --- registry ---------------------------------------------------------------------------------------------------------

def test_registry_has_every_course_dataset():
    assert set(REQUIRED) <= set(DATASETS)
    for s in DATASETS.values():
        assert s.title and s.source and s.licence and s.kind in ('download', 'manual', 'generated')
        assert s.kind != 'manual' or s.manual, s.name
        assert s.kind != 'download' or s.urls, s.name
    with pytest.raises(Exception): DATASETS['flowers'].name = 'x'  # frozen

def test_reported_accuracies_and_details():
    texts = {n: [reported_text(r) for r in get_dataset(n).reported] for n in ('sports100', 'products30', 'flowers')}
    assert texts['sports100'] == ['EfficientNetB0: 97% test accuracy', 'ResNet50: 89% test accuracy (88.74%)']
    assert 'NTS-Net: 93% test accuracy' in texts['products30']
    assert texts['flowers'][-1] == 'original rubric project: test accuracy >= 85% required'
    assert 'AI Hub' in get_dataset('products10').manual and 'kaggle' in get_dataset('sports100').manual.lower()
    assert get_dataset('flowers').classes == ('daisy', 'dandelion', 'roses', 'sunflowers', 'tulips')
    assert get_dataset('flowers').size_bytes == 228813984

# the accuracies each original project reported, as `compare_runs` reads them (label, fraction)
PROJECTS = {'flowers': [('VGG16', .875), ('ResNet18', .875), ('ResNet34', .75), ('ResNet50', .875),
                        ('original rubric project', .85)],
            'fashion5': [('AlexNet', .91), ('VGG', .96), ('ResNet', .93)],
            'sports100': [('EfficientNetB0', .97), ('ResNet50', .89)],
            'eggs': [('ResNet, body frozen', .96)],
            'anime': [('EfficientNet, body frozen', .98), ('EfficientNet, fine-tuned', .99)],
            'grocery10': [('ResNet34', .7792), ('DenseNet161', .909), ('GoogLeNet', .9025)],
            'grocery': [('ResNet34', .5238), ('DenseNet161', .5031), ('GoogLeNet', .677), ('NTS-Net', .93)]}

@pytest.mark.parametrize('name', PROJECTS)
def test_every_project_reports_its_numbers(name):
    assert [(r.label, pytest.approx(r.accuracy)) for r in reported_accuracies(name)] == PROJECTS[name]
    stand_in = {'grocery10': 'products10', 'grocery': 'products30'}.get(name)
    accs = lambda n: [r.accuracy for r in reported_accuracies(n)]
    if stand_in: assert accs(stand_in) == accs(name)
    assert [r.kind for r in reported_accuracies('flowers')][-1] == 'target'

def test_grocery_views():
    assert len(GROCERY) == len(set(GROCERY)) == 30 and set(GROCERY10) < set(GROCERY)
    assert get_dataset('grocery10').subset == get_dataset('grocery10').classes == GROCERY10
    assert get_dataset('grocery10').dir_name == 'grocery' and not get_dataset('grocery').subset

def test_fashion5_mapping_covers_clothing():
    m = get_dataset('fashion5').mapping
    assert set(m) == set(get_dataset('clothing').classes)
    assert set(m.values()) == set(get_dataset('fashion5').classes) == {'hat', 'outer', 'top', 'bottom', 'shoes'}
    assert m['dress'] == 'top' and m['outwear'] == 'outer' and m['skirt'] == 'bottom'
    assert get_dataset('fashion5').dir_name == 'clothing'

def test_unknown_dataset_names_choices():
    with pytest.raises(KeyError) as e: get_dataset('flower')
    msg = e.value.args[0]
    assert "Unknown dataset 'flower'. Available: anime, clothing," in msg and "Did you mean 'flowers'?" in msg

def test_table_lists_everything():
    "One row per registered dataset, in registry order, named in the first column; its classes and licence beside it."
    md = datasets_table('md').splitlines()
    assert md[0].startswith('| name | what | classes |') and set(md[1]) <= set('|-:')
    rows = [[c.strip() for c in l.strip('|').split('|')] for l in md[2:]]
    assert [r[0] for r in rows] == list(DATASETS) and set(REQUIRED) <= {r[0] for r in rows}
    for r in rows:
        spec = DATASETS[r[0]]
        assert r[1] == spec.title and r[5] == spec.licence, r
        if spec.classes: assert r[2] == str(len(spec.classes))
    text = datasets_table('text').splitlines()
    assert text[0].split()[0] == 'name' and set(text[1]) <= {'-', ' '}
    assert [l.split()[0] for l in text[2:]] == list(DATASETS)

def test_datasets_md_documents_every_dataset():
    md = (Path(__file__).parents[1]/'datasets.md').read_text()
    assert all(f'`{n}`' in md or f'| {n} |' in md for n in REQUIRED)
    assert 'dress' in md and 'top' in md

# --- generated datasets --------------------------------------------------------------------------------------------

def test_make_shapes_options_and_determinism(tmp_path):
    a = make_shapes(tmp_path/'a', n_classes=5, size=24, n_per_class=30, noise=0.1, imbalance=5, seed=3)
    b = make_shapes(tmp_path/'b', n_classes=5, size=24, n_per_class=30, noise=0.1, imbalance=5, seed=3)
    c = split_counts(a)
    totals = [sum(c[s][k] for s in c) for k in ('circle', 'square', 'triangle', 'cross', 'star')]
    assert totals[0] == 30 and totals[-1] == 6 and totals == sorted(totals, reverse=True)
    assert all(len(c[s]) == 5 for s in ('train', 'valid', 'test'))
    files = sorted(p.relative_to(a) for p in a.rglob('*.png'))
    assert files == sorted(p.relative_to(b) for p in b.rglob('*.png'))
    assert all((a/f).read_bytes() == (b/f).read_bytes() for f in files)
    assert Image.open(a/files[0]).size == (24, 24)
    other = make_shapes(tmp_path/'c', n_classes=5, size=24, n_per_class=30, noise=0.1, imbalance=5, seed=4)
    pngs = lambda d: {f.read_bytes() for f in d.rglob('*.png')}
    assert not pngs(other) & pngs(a)  # another seed draws other images
    with pytest.raises(ValueError, match='n_classes must be'): make_shapes(tmp_path/'d', n_classes=20)

def test_make_digits(tmp_path):
    out = make_digits(tmp_path/'digits')
    c = split_counts(out)
    assert sum(sum(v.values()) for v in c.values()) == 1797
    assert sorted(c['test']) == list('0123456789')
    im = Image.open(next((out/'train'/'7').iterdir()))
    assert im.mode == 'L' and im.size == (32, 32)

def test_relayout_keeps_source_splits(tmp_path):
    src = tmp_path/'src'/'clothing-dataset-small-abc'
    for s in ('train', 'validation', 'test'): class_folders(src/s, ('hat', 'pants'), n=2)
    out = relayout(tmp_path/'src', tmp_path/'out')
    assert split_counts(out) == {s: {'hat': 2, 'pants': 2} for s in ('train', 'valid', 'test')}

# --- lookup order -----------------------------------------------------------------------------------------------------

def test_explicit_path_wins(home, tmp_path, monkeypatch):
    mine = class_folders(tmp_path/'mine')
    assert dataset_path('flowers', mine) == mine
    with pytest.raises(NotAvailableError, match='Looked in'): dataset_path('flowers', tmp_path/'nope')

def test_data_root_then_cache(home, tmp_path, monkeypatch):
    root = tmp_path/'data'
    class_folders(root/'clothing'/'train', ('hat',), n=1)
    monkeypatch.setenv('CNN_COURSE_DATA', str(root))
    assert dataset_path('clothing') == root/'clothing'
    assert dataset_path('fashion5') == root/'clothing'  # fashion5 reuses the clothing photos
    class_folders(home/'datasets'/'eggs'/'train', ('broken', 'intact'), n=1)
    assert dataset_path('eggs') == home/'datasets'/'eggs'

def test_generated_datasets_need_no_network(home, monkeypatch):
    monkeypatch.setattr(downloads, '_open_url', lambda *a: pytest.fail('network touched'))
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    p = dataset_path('shapes')
    assert p == home/'datasets'/'shapes' and split_counts(p)['train']
    assert dataset_path('digits') == home/'datasets'/'digits'

def test_generated_datasets_split_as_the_registry_says(home, monkeypatch):
    "`dataset_path` writes `shapes` with the registry's shares, and `make_shapes`' defaults are those shares."
    for name, make in (('shapes', make_shapes), ('digits', make_digits)):
        ps, spec = inspect.signature(make).parameters, get_dataset(name)
        assert (ps['valid_pct'].default, ps['test_pct'].default) == (spec.valid_pct, spec.test_pct)
    monkeypatch.setitem(DATASETS, 'shapes', replace(DATASETS['shapes'], valid_pct=0.5, test_pct=0.25))
    c = split_counts(dataset_path('shapes'))
    assert [c[s]['circle'] for s in ('train', 'valid', 'test')] == [10, 20, 10]

@pytest.mark.parametrize('name,fix', [('eggs', 'frankpereny/broken-eggs'), ('anime', 'anime/'),
                                      ('products10', 'AI Hub'), ('products30', 'AI Hub'),
                                      ('sports100', 'kaggle datasets download'),
                                      ('grocery', 'GroceryStoreDataset'), ('grocery10', 'GroceryStoreDataset')])
def test_manual_datasets_say_how_to_get_them(home, name, fix):
    with pytest.raises(NotAvailableError) as e: dataset_path(name)
    msg = str(e.value)
    assert fix in msg and 'CNN_COURSE_DATA' in msg and str(home/'datasets'/get_dataset(name).dir_name) in msg

def fake_grocery(root, n=2, classes=GROCERY):
    for s, k in (('train', n), ('test', 1)):
        for c in classes:
            (root/s/c).mkdir(parents=True)
            for i in range(k): Image.new('RGB', (8, 8), (i*20, 0, 0)).save(root/s/c/f'{c}_{i}.jpg')
    return root

def test_grocery10_is_a_view_of_ten_classes(home, tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_DATA', str(tmp_path/'data'))
    fake_grocery(tmp_path/'data'/'grocery')
    v = dataset_path('grocery10')
    assert split_counts(v) == {'train': {c: 2 for c in GROCERY10}, 'test': {c: 1 for c in GROCERY10}}
    assert v.is_relative_to(home/'datasets'/'views') and dataset_path('grocery10') == v
    src = tmp_path/'data'/'grocery'/'train'
    assert all((v/'train'/c).resolve() == (src/c).resolve() for c in GROCERY10)  # links, no copies
    assert len(split_counts(dataset_path('grocery'))['train']) == 30
    monkeypatch.setenv('CNN_COURSE_DATA', str(tmp_path/'other'))  # another copy of the photos: another view
    fake_grocery(tmp_path/'other'/'grocery', n=3)
    assert dataset_path('grocery10') != v and split_counts(dataset_path('grocery10'))['train']['Kiwi'] == 3

def test_a_folder_without_the_view_classes_is_used_as_it_is(home, tmp_path):
    mine = fake_grocery(tmp_path/'aihub', classes=('p1', 'p2'))  # e.g. the AI Hub products, passed explicitly
    assert dataset_path('grocery10', mine) == mine
    full = fake_grocery(tmp_path/'g')
    assert set(split_counts(dataset_path('grocery10', full))['train']) == set(GROCERY10)

def test_no_download_when_told_not_to(home, monkeypatch):
    monkeypatch.setattr(downloads, '_open_url', lambda *a: pytest.fail('network touched'))
    with pytest.raises(NotAvailableError, match='flowers'): dataset_path('flowers', download=False)

# --- download path (no network) ------------------------------------------------------------------------------------

@pytest.fixture
def flowers_archive(tmp_path, monkeypatch):
    "Point `flowers` at a local tgz laid out like flower_photos.tgz (class folders, no split)."
    src = class_folders(tmp_path/'src', ('daisy', 'tulips'), n=10, wrap='flower_photos')
    arc = tgz_of(src, tmp_path/'flower_photos.tgz')
    spec = replace(DATASETS['flowers'], urls=(arc.as_uri(),), size_bytes=arc.stat().st_size,
                   sha256=downloads.file_sha256(arc))
    monkeypatch.setitem(DATASETS, 'flowers', spec)
    return arc

def test_download_extract_and_split(home, flowers_archive):
    p = dataset_path('flowers')
    assert p == home/'datasets'/'flowers'
    assert split_counts(p) == {'train': {'daisy': 7, 'tulips': 7}, 'valid': {'daisy': 1, 'tulips': 1},
                               'test': {'daisy': 2, 'tulips': 2}}
    assert not list((home/'datasets').glob('*.part')) and not list((home/'datasets').glob('*.raw'))
    assert (home/'downloads'/'flowers.tgz').exists()

def test_download_split_is_seeded(home, flowers_archive, tmp_path, monkeypatch):
    first = sorted(f.name for f in (dataset_path('flowers')/'test'/'daisy').iterdir())
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home2'))
    assert sorted(f.name for f in (dataset_path('flowers')/'test'/'daisy').iterdir()) == first

def test_download_zip_with_validation_folder(home, tmp_path, monkeypatch):
    src = tmp_path/'zsrc'
    for s in ('train', 'validation', 'test'): class_folders(src/'clothing-dataset-small-x'/s, ('hat', 'skirt'), n=2)
    arc = tmp_path/'c.zip'
    with zipfile.ZipFile(arc, 'w') as z:
        for f in src.rglob('*.jpg'): z.write(f, f.relative_to(src))
    monkeypatch.setitem(DATASETS, 'clothing', replace(DATASETS['clothing'], urls=(arc.as_uri(),)))
    p = dataset_path('fashion5')  # downloads the clothing photos
    assert p == home/'datasets'/'clothing' and split_counts(p)['valid'] == {'hat': 2, 'skirt': 2}

def test_checksum_mismatch_keeps_nothing(home, flowers_archive, monkeypatch):
    monkeypatch.setitem(DATASETS, 'flowers', replace(DATASETS['flowers'], sha256='0'*64))
    with pytest.raises(NotAvailableError) as e: dataset_path('flowers')
    assert 'corrupt' in str(e.value) and 'Looked in' in str(e.value)
    assert isinstance(e.value.__cause__, core.ChecksumError)
    assert not (home/'downloads'/'flowers.tgz').exists() and not (home/'downloads'/'flowers.tgz.part').exists()
    assert not (home/'datasets'/'flowers').exists()

def test_half_written_file_is_never_used(home, flowers_archive, monkeypatch):
    (home/'downloads').mkdir(parents=True)
    (home/'downloads'/'flowers.tgz.part').write_bytes(flowers_archive.read_bytes()[:100])  # an interrupted earlier run
    class Dies(io.BytesIO):
        def read(self, *a):
            if self.tell() > 200: raise urllib.error.URLError('connection reset')
            return super().read(100)
    monkeypatch.setattr(downloads, '_open_url', lambda url, timeout: Dies(flowers_archive.read_bytes()))
    with pytest.raises(NotAvailableError, match='connection reset'): dataset_path('flowers')
    assert not (home/'downloads'/'flowers.tgz').exists() and not (home/'downloads'/'flowers.tgz.part').exists()
    monkeypatch.setattr(downloads, '_open_url', lambda url, timeout: open(flowers_archive, 'rb'))  # the network is back
    assert split_counts(dataset_path('flowers'))['train'] == {'daisy': 7, 'tulips': 7}

def test_truncated_archive_in_cache_is_rejected(home, flowers_archive):
    (home/'downloads').mkdir(parents=True)
    (home/'downloads'/'flowers.tgz').write_bytes(flowers_archive.read_bytes()[:500])
    with pytest.raises(NotAvailableError, match='incomplete'): dataset_path('flowers')
    assert (home/'downloads'/'flowers.tgz').stat().st_size == 500  # a file the user put there is not deleted

def test_offline_says_where_to_put_files(home, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    monkeypatch.setattr(downloads, '_open_url', lambda *a: pytest.fail('network touched'))
    with pytest.raises(NotAvailableError) as e: dataset_path('flowers')
    msg = str(e.value)
    assert 'offline' in msg and 'CNN_COURSE_DATA' in msg and str(home/'datasets'/'flowers') in msg

def test_unreachable_server(home, monkeypatch):
    def refuse(url, timeout): raise urllib.error.URLError('Name or service not known')
    monkeypatch.setattr(downloads, '_open_url', refuse)
    with pytest.raises(NotAvailableError, match='Could not download'): dataset_path('clothing')

# --- CLI --------------------------------------------------------------------------------------------------------------

def parser():
    ap = argparse.ArgumentParser(prog='cnn-course'); sub = ap.add_subparsers()
    catalog.add_commands(sub)
    return ap

def test_cli_datasets(capsys):
    args = parser().parse_args(['datasets'])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in REQUIRED)

def test_cli_get(home, capsys):
    ap = parser()
    args = ap.parse_args(['data', 'get', 'shapes'])
    assert args.func(args) == 0 and 'train:' in capsys.readouterr().out
    args = ap.parse_args(['data', 'get', 'products30'])
    with pytest.raises(NotAvailableError, match='AI Hub'): args.func(args)  # cnn_course.cli prints it, exit 1
    args = ap.parse_args(['data', 'get', 'flower'])
    with pytest.raises(UnknownNameError, match='Available:'): args.func(args)
    assert not capsys.readouterr().err  # the command prints no error of its own
    with pytest.raises(SystemExit) as e: ap.parse_args(['data', 'get', '--help'])
    assert e.value.code == 0

@REAL
def test_real_data_found_through_env():
    assert dataset_path('flowers') == core.data_root()/'flowers'
    assert split_counts(dataset_path('flowers')) and sum(split_counts(dataset_path('flowers'))['test'].values()) == 736
    assert dataset_path('fashion5') == core.data_root()/'clothing'

@REAL
def test_real_grocery_eggs_anime():
    c = split_counts(dataset_path('grocery10'))
    assert set(c['train']) == set(GROCERY10) and sum(c['train'].values()) == 547 and sum(c['test'].values()) == 538
    assert set(split_counts(dataset_path('grocery'))['train']) == set(GROCERY)
    assert sum(split_counts(dataset_path('eggs'))['train'].values()) == 258
    assert set(split_counts(dataset_path('anime'))['test']) == {'anime', 'cartoon', 'human'}
