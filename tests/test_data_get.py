"""`cnn-course data get` on every photo dataset, offline: the real `get` code on archives laid out like the real ones.

The per-dataset tests (`realdata`) rebuild each source from the course's copy ($CNN_COURSE_DATA/NAME): every photo goes
back to its path in the public repository at the pinned commit, with the files the rule must leave out planted beside
them (other classes, duplicates, oversized photos, extra training photos, the repository's other files), zipped as
GitHub's archive of the commit (`REPO-COMMIT/...`) and served for the registry's own URL. The re-encoded photos are
not the commit's bytes, so each test pins the digest of the layout it expects, computed here from that expectation
(not by the code under test), and compares the result split by split and class by class with the course's copy.
"""
import hashlib, io, json, os, re, subprocess, sys, tarfile, urllib.error, zipfile
from dataclasses import replace
from pathlib import Path
import pytest
from PIL import Image
from cnn_course.core import basics as core
from cnn_course.core import downloads
from cnn_course.core.basics import NotAvailableError
from cnn_course.data.fetch import MARKER, PhotosMissing, dataset_path, get_and_report, need_photos
from cnn_course.data.registry import DATASETS
from cnn_course.core.layout import SPLITS, split_counts, split_files

REAL = pytest.mark.realdata  # skipped without CNN_COURSE_DATA (tests/conftest.py)
ROOT = Path(__file__).resolve().parents[1]
COPY = Path(os.environ.get('CNN_COURSE_DATA') or '/nonexistent')  # the course's copy (the `home` fixture hides it)

@pytest.fixture
def home(tmp_path, monkeypatch):
    "A fresh course home, online, without $CNN_COURSE_DATA; a URL nobody serves fails as if the network were down."
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    for v in ('CNN_COURSE_DATA', 'CNN_COURSE_OFFLINE', 'HF_HUB_OFFLINE'): monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(downloads, '_open_url', _refuse)
    return tmp_path/'home'

def _refuse(url, timeout): raise urllib.error.URLError(f'network disabled in tests ({url})')

def serve(monkeypatch, url, archive):
    "Answer the registry's `url` with the local file `archive` (through a file:// URL); every other URL fails."
    real = urllib.request.urlopen
    serve_one = lambda u, timeout: real(Path(archive).as_uri(), timeout=timeout) if u == url else _refuse(u, timeout)
    monkeypatch.setattr(downloads, '_open_url', serve_one)

def blob(data:bytes) -> str: return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()

def digest_of(expected:dict) -> str:
    "The digest the course pins, from the layout a test expects: {(split, class, name): bytes}."
    lines = ''.join(f'{s}/{c}/{n} {blob(b)}\n' for (s, c, n), b in sorted(expected.items()))
    return hashlib.sha256(lines.encode()).hexdigest()

def github_zip(path:Path, pin, files:dict, links:dict=None) -> Path:
    "A zip laid out like `codeload.github.com/OWNER/REPO/zip/COMMIT`: one folder `REPO-COMMIT/` holding `files`."
    top = f"{pin.repo.split('/')[1]}-{pin.commit}"
    with zipfile.ZipFile(path, 'w') as z:
        for p, data in files.items(): z.writestr(f'{top}/{p}', data)
        for p, target in (links or {}).items():  # a symbolic link, as zip stores one
            i = zipfile.ZipInfo(f'{top}/{p}'); i.external_attr = 0o120777 << 16; z.writestr(i, target)
    return path

def jpeg(i:int) -> bytes:
    b = io.BytesIO(); Image.new('RGB', (8, 8), (i % 256, 40, 90)).save(b, 'JPEG'); return b.getvalue()

def listing(root:Path) -> dict:
    "{(split, class): sorted file names} of a dataset folder."
    return {(s, c.name): sorted(f.name for f in c.iterdir())
            for s in SPLITS if (root/s).is_dir() for c in (root/s).iterdir()}

def copy_of(name):
    "The course's copy of dataset `name`: {(split, class, file name): bytes}."
    root = COPY/name
    return {(s, c.name, f.name): f.read_bytes()
            for s in SPLITS for c in sorted((root/s).iterdir()) for f in sorted(c.iterdir())}

# --- each source, rebuilt from the course's copy ---------------------------------------------------------------------

def eggs_source(copy):
    "src/data/train/{crack,good}/ with the photos' time-stamp names (a space after the date); empty/ is left out."
    folder = {'broken': 'crack', 'intact': 'good'}
    files = {f'src/data/train/{folder[c]}/{n[:10]} {n[11:]}': b for (s, c, n), b in copy.items()}
    files.update({f'src/data/train/empty/2023-04-09 21_0{i}_00.000000.jpg': jpeg(i) for i in range(3)})
    files.update({'README.md': b'# Clasificador', 'src/notebooks/notebook.ipynb': b'{}',
                  'src/Images/Imagen1.PNG': jpeg(9)})  # an image outside the photo folders
    return files, dict(copy)

# anime's human faces: the source's file '1 (N).EXT'; the extensions that are not .jpg (the course's copy made all .jpg)
HUMAN_EXT = {'112': '.png', '126': '.png', '127': '.png', '147': '.png', '18': '.jpeg', '2': '.jpeg', '33': '.png',
             '4031': '.JPG', '4742': '.JPG', '4844': '.JPG', '49': '.png', '54': '.jpeg', '6': '.png', '65': '.png',
             '77': '.png', '80': '.png', '86': '.png', '87': '.png'}
HUMAN_18_JPEG = 'valid'  # both '1 (18).jpg' and '1 (18).jpeg' are in the copy as 1_18.jpg: the .jpeg one in valid
# (kept, dropped): the source's 38 byte-identical pairs of human faces; the later by name is dropped
HUMAN_DUPES = [tuple(p.split('>')) for p in '''1000>1450 1081>1447 1095>2015 1128>421 1245>950 1424>616 1459>1801 147>87
    1480>2412 1534>1831 1575>574 1799>28 2289>750 239>2461 2469>636 2472>471 2521>492 2527>499 2683>5050 2830>4326
    3118>3659 3170>3766 3220>3769 3220>4586 3235>5032 3275>4205 3427>4028 3478>4941 3496>4300 3513>4140 3576>5045
    3882>4521 3882>4918 4373>5092 4510>5144 4535>4695 5>971 65>86'''.split()]
HUMAN_LARGE = ('205', '2178', '4105', '4910')  # 4 MiB or more: not in the course's copy

def anime_source(copy):
    "dataset/{anime,cartoon,human}/ with the human faces under their source names, duplicates and large photos planted."
    files, expected, human = {}, {}, {}
    for (s, c, n), b in copy.items():
        if c != 'human': files[f'dataset/{c}/{n}'] = b; expected[s, c, n] = b; continue
        num = re.fullmatch(r'1_(\d+)\.jpg', n).group(1)
        ext = '.jpeg' if num == '18' and s == HUMAN_18_JPEG else '.jpg' if num == '18' else HUMAN_EXT.get(num, '.jpg')
        files[f'dataset/human/1 ({num}){ext}'] = b; expected[s, c, f'1_{num}{ext.lower()}'] = b; human[num] = b
    for kept, gone in HUMAN_DUPES: files[f'dataset/human/1 ({gone}){HUMAN_EXT.get(gone, ".jpg")}'] = human[kept]
    files['dataset/human/1 (4663).jpg'] = human['3733'] + b'\0'  # a re-saved copy: other bytes, dropped by name
    for num in HUMAN_LARGE: files[f'dataset/human/1 ({num}).jpg'] = human['1000'].ljust(4 << 20, b'\0')
    files.update({'main.py': b'print(1)', 'model/face_classifier.keras': b'weights',
                  'inference/classification_grid.png': jpeg(1)})
    return files, expected

def sports100_source(copy):
    "data/{train,valid,test}/SPORT/ with two more training photos per sport than the course keeps (40)."
    files = {f'data/{s}/{c}/{n}': b for (s, c, n), b in copy.items()}
    for c in {c for s, c, _ in copy if s == 'train'}:
        files.update({f'data/train/{c}/zz{i}.jpg': jpeg(i) for i in range(2)})
    files.update({'data/sports.csv': b'class id,filepaths', 'model/model.pt': b'weights', 'LICENSE': b'MIT License'})
    return files, dict(copy)

# grocery: where each of the 30 classes lives under dataset/{train,val,test}/ (Brown-Cap-Mushroom moves in test)
GROCERY_PATHS = {c: f for f, cs in {
    'Fruit': 'Avocado Banana Kiwi Lemon Nectarine Orange Peach Red-Grapefruit Satsumas',
    'Fruit/Apple': 'Golden-Delicious Granny-Smith Pink-Lady Red-Delicious Royal-Gala',
    'Fruit/Melon': 'Cantaloupe Galia-Melon Honeydew-Melon Watermelon', 'Fruit/Pear': 'Anjou Conference',
    'Packages/Milk': 'Arla-Medium-Fat-Milk Garant-Ecological-Medium-Fat-Milk',
    'Packages/Yoghurt': 'Arla-Natural-Yoghurt Yoggi-Strawberry-Yoghurt', 'Vegetables': 'Brown-Cap-Mushroom Carrots',
    'Vegetables/Onion': 'Yellow-Onion', 'Vegetables/Pepper': 'Red-Bell-Pepper',
    'Vegetables/Tomato': 'Regular-Tomato Vine-Tomato'}.items() for c in cs.split()}

def grocery_source(copy):
    "dataset/{train,val,test}/COARSE/.../CLASS/ for the 30 classes, a class the course leaves out, the iconic images."
    def where(s, c): return 'Vegetables/Mushroom' if (s, c) == ('test', 'Brown-Cap-Mushroom') else GROCERY_PATHS[c]
    files = {f"dataset/{'val' if s == 'valid' else s}/{where(s, c)}/{c}/{n}": b for (s, c, n), b in copy.items()}
    files.update({f'dataset/train/Fruit/Mango/Mango_{i:03d}.jpg': jpeg(i) for i in range(3)})
    files.update({'dataset/iconic-images-and-descriptions/Fruit/Apple/Royal-Gala/Royal-Gala_Iconic.jpg': jpeg(5),
                  'dataset/classes.csv': b'Class Name (str),Class ID (int)', 'LICENSE': b'MIT License'})
    return files, dict(copy)

SOURCES = {'eggs': eggs_source, 'anime': anime_source, 'sports100': sports100_source, 'grocery': grocery_source}

@REAL
@pytest.mark.parametrize('name', SOURCES)
def test_get_lays_out_the_course_copy(home, tmp_path, monkeypatch, name):
    copy = copy_of(name)
    files, expected = SOURCES[name](copy)
    spec = DATASETS[name]
    monkeypatch.setitem(DATASETS, name, replace(spec, pin=spec.pin._replace(digest=digest_of(expected))))
    serve(monkeypatch, spec.pin.url, github_zip(tmp_path/'src.zip', spec.pin, files))
    got = listing(dataset_path(name))
    assert got == {(s, c): sorted(n for s2, c2, n in expected if (s2, c2) == (s, c)) for s, c, _ in expected}
    # against the course's copy: equal, except what the registry says differs (anime keeps 13 PNG and .jpeg faces)
    as_copy = {k: sorted(re.sub(r'\.(png|jpeg)$', '.jpg', n) for n in v) for k, v in got.items()}
    assert as_copy == listing(COPY/name)
    kept_ext = sorted(n for v in got.values() for n in v if not n.endswith('.jpg'))
    assert len(kept_ext) == (13 if name == 'anime' else 0), kept_ext
    if kept_ext: assert '13 human faces are PNG or .jpeg' in spec.differs and '1_112.png' in kept_ext
    p = home/'datasets'/name
    assert json.loads((p/MARKER).read_text())['photos'] == len(copy)
    assert not list((home/'downloads').iterdir())  # the archive is not kept
    assert sorted(x.name for x in (home/'datasets').iterdir()) == [f'.{name}.lock', name]

@REAL
def test_get_clothing_keeps_the_source_splits(home, tmp_path, monkeypatch):
    copy = copy_of('clothing'); url = DATASETS['clothing'].urls[0]
    top = f"clothing-dataset-small-{url.split('/')[-1][:-4]}"  # GitHub's archive of the commit
    with zipfile.ZipFile(tmp_path/'c.zip', 'w') as z:
        for (s, c, n), b in copy.items(): z.writestr(f"{top}/{'validation' if s == 'valid' else s}/{c}/{n}", b)
        z.writestr(f'{top}/README.md', '# clothing'); z.writestr(f'{top}/LICENSE', 'free to use')
    serve(monkeypatch, url, tmp_path/'c.zip')
    assert listing(dataset_path('clothing')) == listing(COPY/'clothing')

@REAL
def test_get_flowers_splits_its_own_way(home, tmp_path, monkeypatch):
    "The same photos per class; the split is the course's seeded one, not the copy's (the registry says so)."
    copy = copy_of('flowers')
    with tarfile.open(tmp_path/'f.tgz', 'w:gz') as t:
        for (s, c, n), b in copy.items():
            i = tarfile.TarInfo(f'flower_photos/{c}/{n}'); i.size = len(b); t.addfile(i, io.BytesIO(b))
    monkeypatch.setitem(DATASETS, 'flowers', replace(DATASETS['flowers'], size_bytes=(tmp_path/'f.tgz').stat().st_size))
    serve(monkeypatch, DATASETS['flowers'].urls[0], tmp_path/'f.tgz')
    got = listing(dataset_path('flowers'))
    per_class = lambda l: {c: sorted(n for (s, c2), ns in l.items() if c2 == c for n in ns) for _, c in l}
    assert per_class(got) == per_class(listing(COPY/'flowers'))
    daisy = per_class(got)['daisy']
    assert got['test', 'daisy'] == sorted(split_files(daisy, .125, .2, 0, 'daisy')['test'])
    assert got != listing(COPY/'flowers') and 'Oldpel/flower_photos @ 140ff6f3' in DATASETS['flowers'].differs

# --- the download itself: checked, bounded, safe, whole -------------------------------------------------------------

def toy_eggs(tmp_path, monkeypatch, n=10):
    "A small made-up eggs repository (photos of the bare table too), and the eggs pin re-pinned to it."
    pin = DATASETS['eggs'].pin
    files = {f'src/data/train/{c}/2023-04-09 20_{i:02d}.jpg': jpeg(i + 50*j)
             for j, c in enumerate(('crack', 'good', 'empty')) for i in range(n)}
    expected = {(s, cls, f'2023-04-09_20_{i:02d}.jpg'): jpeg(i + 50*j) for j, cls in enumerate(('broken', 'intact'))
                for i, s in enumerate(['train']*7 + ['valid']*2 + ['test'])}
    pin = pin._replace(digest=digest_of(expected))
    monkeypatch.setitem(DATASETS, 'eggs', replace(DATASETS['eggs'], pin=pin))
    return pin, files, expected

def test_get_is_checked_against_the_pin(home, tmp_path, monkeypatch):
    pin, files, expected = toy_eggs(tmp_path, monkeypatch)
    serve(monkeypatch, pin.url, github_zip(tmp_path/'eggs.zip', pin, files))
    p = dataset_path('eggs')
    assert {(s, c, n) for (s, c), ns in listing(p).items() for n in ns} == set(expected)
    monkeypatch.setattr(downloads, '_open_url', lambda *a: pytest.fail('a second get must not download'))
    assert dataset_path('eggs') == p
    assert 'from Toni2Morales/ClasificadorImagenes @ e3129a0e: 20 photos, each checked' in get_and_report('eggs')

def test_photos_that_are_not_the_commits_are_refused(home, tmp_path, monkeypatch):
    pin, files, _ = toy_eggs(tmp_path, monkeypatch)
    files['src/data/train/crack/2023-04-09 20_03.jpg'] = jpeg(99)  # one photo changed
    serve(monkeypatch, pin.url, github_zip(tmp_path/'eggs.zip', pin, files))
    with pytest.raises(NotAvailableError, match='are not those of Toni2Morales/ClasificadorImagenes') as e:
        dataset_path('eggs')
    assert isinstance(e.value.__cause__, core.ChecksumError)
    assert sorted(x.name for x in (home/'datasets').iterdir()) == ['.eggs.lock']  # nothing laid out
    assert not list((home/'downloads').iterdir())  # the bad archive is gone: the next try downloads it again

def test_an_archive_over_the_limit_is_refused(home, tmp_path, monkeypatch):
    pin, files, _ = toy_eggs(tmp_path, monkeypatch)
    monkeypatch.setitem(DATASETS, 'eggs', replace(DATASETS['eggs'], pin=pin._replace(max_bytes=1000)))
    serve(monkeypatch, pin.url, github_zip(tmp_path/'eggs.zip', pin, files))
    with pytest.raises(NotAvailableError, match='more than 1,000 bytes'): dataset_path('eggs')
    assert not list((home/'downloads').iterdir())

def test_interrupted_download_then_a_whole_dataset(home, tmp_path, monkeypatch):
    pin, files, expected = toy_eggs(tmp_path, monkeypatch)
    arc = github_zip(tmp_path/'eggs.zip', pin, files).read_bytes()
    class HalfThenReset(io.BytesIO):
        def read(self, n=-1):
            if self.tell() >= len(arc)//2: raise urllib.error.URLError('connection reset')
            return super().read(min(n, 1000))
    monkeypatch.setattr(downloads, '_open_url', lambda url, timeout: HalfThenReset(arc))
    with pytest.raises(NotAvailableError, match='connection reset'): dataset_path('eggs')
    assert not list((home/'downloads').iterdir()) and not (home/'datasets'/'eggs').exists()
    part = home/'downloads'/f'eggs-{pin.commit[:12]}.zip.part'
    part.write_bytes(arc[:len(arc)//3])  # and what a killed process leaves: half a download
    serve(monkeypatch, pin.url, tmp_path/'eggs.zip')  # the network is back
    p = dataset_path('eggs')
    assert {(s, c, n) for (s, c), ns in listing(p).items() for n in ns} == set(expected)
    assert json.loads((p/MARKER).read_text())['digest'] == pin.digest and not part.exists()

def test_killed_before_the_swap_then_finished(home, tmp_path, monkeypatch):
    "A process SIGKILLed after laying the photos out: the next look-up puts the whole folder in place, no download."
    pin, files, expected = toy_eggs(tmp_path, monkeypatch)
    github_zip(tmp_path/'eggs.zip', pin, files)
    code = ('import sys, urllib.request; from dataclasses import replace; from pathlib import Path\n'
            'from cnn_course.core import downloads; from cnn_course.data import fetch as D\n'
            "eggs = D.DATASETS['eggs']; D.DATASETS['eggs'] = replace(eggs, pin=eggs.pin._replace(digest=sys.argv[1]))\n"
            "downloads._open_url = lambda u, timeout: urllib.request.urlopen(Path(sys.argv[2]).as_uri())\n"
            "D.dataset_path('eggs')\n")
    env = {**os.environ, 'CNN_COURSE_KILL_AT': 'laid-out', 'CNN_COURSE_HOME': str(home)}
    r = subprocess.run([sys.executable, '-c', code, pin.digest, str(tmp_path/'eggs.zip')], env=env,
                       capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    assert not (home/'datasets'/'eggs').exists() and len(list((home/'datasets').glob('.eggs.new-*'))) == 1
    p = dataset_path('eggs')  # `home` refuses every URL: nothing is downloaded again
    assert {(s, c, n) for (s, c), ns in listing(p).items() for n in ns} == set(expected)
    assert sorted(x.name for x in (home/'datasets').iterdir()) == ['.eggs.lock', 'eggs']

@pytest.mark.parametrize('bad', ['dotdot', 'absolute', 'symlink'])
def test_an_unsafe_archive_writes_nothing_outside(home, tmp_path, monkeypatch, bad):
    pin, files, _ = toy_eggs(tmp_path, monkeypatch)
    links = {}
    if bad == 'dotdot': files['src/data/train/crack/../../../../../../escaped.jpg'] = jpeg(1)
    if bad == 'absolute':
        arc = github_zip(tmp_path/'eggs.zip', pin, files)
        with zipfile.ZipFile(arc, 'a') as z: z.writestr(str(tmp_path/'escaped.jpg'), jpeg(1))
    if bad == 'symlink': links['src/data/train/crack/2023-04-09 20_99.jpg'] = str(tmp_path/'outside.jpg')
    if bad != 'absolute': github_zip(tmp_path/'eggs.zip', pin, files, links)
    (tmp_path/'outside.jpg').write_bytes(b'mine')
    before = sorted(p for p in tmp_path.rglob('*') if p.is_relative_to(tmp_path) and not p.is_relative_to(home))
    serve(monkeypatch, pin.url, tmp_path/'eggs.zip')
    with pytest.raises(NotAvailableError, match='outside the folder|a link') as e: dataset_path('eggs')
    assert isinstance(e.value.__cause__, downloads.ArchiveError)
    assert sorted(p for p in tmp_path.rglob('*') if not p.is_relative_to(home)) == before  # nothing new beside the home
    assert (tmp_path/'outside.jpg').read_bytes() == b'mine' and not list(tmp_path.rglob('escaped.jpg'))
    assert not [p for p in home.rglob('*') if p.is_symlink()] and not (home/'datasets'/'eggs').exists()

# --- listing and lessons ---------------------------------------------------------------------------------------------

def test_catalog_lists_what_is_here_without_torch(home, tmp_path, monkeypatch):
    code = ('import sys; from cnn_course.data.catalog import datasets_table; t = datasets_table("text")\n'
            'print("torch" in sys.modules); print(t)')  # `cnn-course datasets` without the weight of torch
    r = subprocess.run([sys.executable, '-c', code], env={**os.environ, 'CNN_COURSE_HOME': str(home)},
                       capture_output=True, text=True)
    first, *table = r.stdout.splitlines()
    assert r.returncode == 0 and first == 'False', r.stderr
    eggs = next(l for l in table if l.startswith('eggs '))
    assert all(x in eggs for x in (' no ', '39 MB', 'cnn-course data get eggs', 'not stated by the source')), eggs
    pin, files, _ = toy_eggs(tmp_path, monkeypatch)
    serve(monkeypatch, pin.url, github_zip(tmp_path/'eggs.zip', pin, files)); dataset_path('eggs')
    from cnn_course.data.catalog import datasets_table
    assert str(home/'datasets'/'eggs') in next(l for l in datasets_table('text').splitlines() if l.startswith('eggs '))
    text = datasets_table('text')
    for n in ('anime', 'sports100', 'grocery', 'flowers', 'clothing'): assert f'cnn-course data get {n} ' in text

LESSON_DATA = {'03': ('eggs', 'anime'), '04': ('grocery10',), '07': ('sports100', 'grocery')}

def first_code_cell(num):
    nb = json.loads(next((ROOT/'lessons').glob(f'{num}_*.ipynb')).read_text())
    return next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code')

@pytest.mark.parametrize('num', LESSON_DATA)
def test_a_full_lesson_without_its_photos_stops_at_its_first_cell(home, monkeypatch, capsys, num):
    monkeypatch.setenv('CNN_COURSE_LESSON_SIZE', 'full'); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    with pytest.raises(PhotosMissing) as e: exec(first_code_cell(num), {})
    msg = str(e.value)
    for name in LESSON_DATA[num]: assert f'cnn-course data get {name} (about' in msg, msg
    assert 'cannot be graded' in msg and ('kaggle datasets download' in msg) == (num != '04')
    assert not (home/'datasets').exists() or not [p for p in (home/'datasets').iterdir() if not p.name.startswith('.')]
    monkeypatch.setenv('CNN_COURSE_LESSON_SIZE', 'small')  # asked for: a small run goes on with shapes, and says so
    exec(first_code_cell(num), {})
    assert 'cannot be graded' in capsys.readouterr().out

def test_need_photos_passes_when_the_photos_are_here(home, tmp_path, monkeypatch):
    pin, files, _ = toy_eggs(tmp_path, monkeypatch)
    with pytest.raises(PhotosMissing, match='cnn-course data get eggs'): need_photos('eggs')
    serve(monkeypatch, pin.url, github_zip(tmp_path/'eggs.zip', pin, files)); dataset_path('eggs')
    assert need_photos('eggs') == [] and split_counts(home/'datasets'/'eggs')['test'] == {'broken': 1, 'intact': 1}

@pytest.mark.parametrize('name', ['flowers', 'fashion5', 'clothing'])
def test_every_lesson_stops_rather_than_train_on_shapes_without_being_asked(home, monkeypatch, capsys, name):
    "Lessons 1, 2, 5 and 6 get their data through `lesson_data`: offline without the photos, a full run stops there."
    from cnn_course.course.lessons import lesson_data
    monkeypatch.setenv('CNN_COURSE_LESSON_SIZE', 'full'); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    monkeypatch.delenv('CNN_COURSE_DATA', raising=False)
    with pytest.raises(PhotosMissing, match='cnn-course data get'): lesson_data(name)
    monkeypatch.setenv('CNN_COURSE_LESSON_SIZE', 'small')
    assert lesson_data(name).name == 'shapes' and 'cannot be graded' in capsys.readouterr().out
