"Tests of cnn_course.data.checks: every kind of bad input is found and named by path; the scan is cached; the CLI exits cleanly."
import argparse, os, shutil, time
from pathlib import Path
import pytest
from PIL import Image
from cnn_course.data import catalog
from cnn_course.data import checks
from cnn_course.data.checks import bad_files, check_dataset, check_image, good_items

REAL = pytest.mark.realdata  # skipped without CNN_COURSE_DATA (tests/conftest.py)

@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    return tmp_path/'home'

def jpeg(path, size=(48, 40), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', size, color).save(path, quality=90)
    return path

def clean(root, classes=('cat', 'dog'), n=3):
    for s in ('train', 'valid', 'test'):
        for k, c in enumerate(classes):
            for i in range(n): jpeg(root/s/c/f'{i}.jpg', color=(40*i, 100*k, len(s)*30))
    return root

def spoil(root):
    "The five cases of the issue, one per file/folder."
    good = (root/'train'/'cat'/'0.jpg').read_bytes()
    (root/'train'/'cat'/'truncated.jpg').write_bytes(good[:len(good)//2])
    (root/'train'/'dog'/'zero.jpg').write_bytes(b'')
    (root/'valid'/'cat'/'notes.jpg').write_text('this is a text file, not a photo')
    Image.new('CMYK', (48, 48), (10, 200, 30, 0)).save(root/'valid'/'dog'/'cmyk.jpg')
    (root/'train'/'bird').mkdir()
    return root

def by_kind(rep): return {(p.kind, Path(p.path).name): p for p in rep.problems}

def test_check_image_cases(tmp_path):
    ok = jpeg(tmp_path/'ok.jpg')
    assert check_image(ok) == {'problems': [], 'size': (48, 40), 'mode': 'RGB'}
    (tmp_path/'cut.jpg').write_bytes(ok.read_bytes()[:200])
    (tmp_path/'cut.png').write_bytes((Image.new('RGB', (64, 64)).save(tmp_path/'full.png') or (tmp_path/'full.png').read_bytes())[:80])
    (tmp_path/'empty.png').write_bytes(b'')
    (tmp_path/'page.png').write_text('<html>')
    for f, kind in [('cut.jpg', 'truncated'), ('cut.png', None), ('empty.png', 'zero-byte'), ('page.png', 'not-an-image')]:
        level, k, detail = check_image(tmp_path/f)['problems'][0]
        assert level == 'error' and (kind is None or k == kind), (f, k, detail)

@pytest.mark.parametrize('mode,kind', [('L', 'grayscale'), ('RGBA', 'rgba'), ('CMYK', 'cmyk'), ('P', 'palette'),
                                       ('I;16', '16-bit'), ('LA', 'grayscale-with-alpha')])
def test_modes_are_info_not_errors(tmp_path, mode, kind):
    f = tmp_path/('x.jpg' if mode in ('L', 'CMYK') else 'x.png')
    Image.new(mode, (40, 40)).save(f)
    (level, k, detail), = check_image(f)['problems']
    assert (level, k) == ('info', kind) and 'converted to RGB' in detail

def test_issue_cases_named_by_path(tmp_path):
    root = spoil(clean(tmp_path/'ds'))
    rep = check_dataset(root)
    got = by_kind(rep)
    assert got['truncated', 'truncated.jpg'].path == str(root/'train'/'cat'/'truncated.jpg')
    assert got['zero-byte', 'zero.jpg'].level == 'error'
    assert got['not-an-image', 'notes.jpg'].level == 'error'
    assert got['cmyk', 'cmyk.jpg'].level == 'info'
    assert got['empty-class', 'bird'].path == str(root/'train'/'bird')
    assert ('class-mismatch', 'bird') in got
    assert {p.name for p in rep.bad_files} == {'truncated.jpg', 'zero.jpg', 'notes.jpg'}
    assert rep.counts['train'] == {'bird': 0, 'cat': 3, 'dog': 3} and rep.counts['valid'] == {'cat': 3, 'dog': 4}
    text = rep.summary()
    for name in ('truncated.jpg', 'zero.jpg', 'notes.jpg', 'cmyk.jpg', 'bird'): assert name in text
    md = rep._repr_markdown_()
    assert '| cat |' in md and 'truncated' in md

def test_duplicates_tiny_stray_single_class(tmp_path):
    root = clean(tmp_path/'ds')
    shutil.copy(root/'train'/'cat'/'1.jpg', root/'test'/'dog'/'copy.jpg')
    shutil.copy(root/'train'/'cat'/'2.jpg', root/'train'/'dog'/'same-split.jpg')  # same split: not a leak
    Image.new('RGB', (10, 20)).save(root/'valid'/'dog'/'tiny.png')
    (root/'train'/'README.txt').write_text('hi')
    (root/'train'/'cat'/'labels.csv').write_text('a,b')
    shutil.rmtree(root/'valid'/'cat')
    (root/'extra').mkdir()
    got = by_kind(check_dataset(root))
    assert got['duplicate', 'copy.jpg'].level == 'warning' and ('duplicate', '1.jpg') in got
    assert ('duplicate', 'same-split.jpg') not in got
    assert got['tiny', 'tiny.png'].detail.startswith('10x20')
    assert ('stray-file', 'README.txt') in got and ('not-image-ext', 'labels.csv') in got
    assert ('single-class', 'valid') in got and ('unknown-split', 'extra') in got
    assert ('class-mismatch', 'cat') in got

def test_flat_layout_and_names(tmp_path, monkeypatch):
    root = tmp_path/'flat'
    for c in ('broken', 'intact'):
        for i in range(2): jpeg(root/c/f'{i}.jpg')
    rep = check_dataset(root)
    assert rep.counts == {'': {'broken': 2, 'intact': 2}} and rep.ok and not rep.problems
    rep = check_dataset('eggs', path=root)
    assert rep.name == 'eggs' and rep.n_images == 4
    with pytest.raises(KeyError, match='Available'): check_dataset('egs')

def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    root = clean(tmp_path/'ds', n=20)
    first = check_dataset(root)
    calls = []
    monkeypatch.setattr(checks, 'check_image', lambda f: calls.append(f) or {'problems': []})
    again = check_dataset(root)
    assert calls == [] and again.problems == first.problems and again.counts == first.counts
    f = root/'train'/'cat'/'3.jpg'
    f.write_bytes(b'')  # changed size and mtime: checked again
    monkeypatch.undo()
    rep = check_dataset(root)
    assert [p.kind for p in rep.errors] == ['zero-byte'] and rep.errors[0].path == str(f)

def test_good_items_and_bad_files(tmp_path):
    root = spoil(clean(tmp_path/'ds'))
    assert {p.name for p in bad_files(root)} == {'truncated.jpg', 'zero.jpg', 'notes.jpg'}
    train = good_items(root, split='train')
    assert len(train) == 6 and not any(p.name in ('truncated.jpg', 'zero.jpg') for p in train)
    assert len(good_items(root)) == 6 + 7 + 6

def cli():
    ap = argparse.ArgumentParser(prog='cnn-course'); sub = ap.add_subparsers()
    checks.add_commands(sub); catalog.add_commands(sub)  # either order works
    return ap

def test_cli_check(tmp_path, capsys):
    root = spoil(clean(tmp_path/'ds'))
    args = cli().parse_args(['data', 'check', 'mine', '--path', str(root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for p in ('train/cat/truncated.jpg', 'train/dog/zero.jpg', 'valid/cat/notes.jpg', 'valid/dog/cmyk.jpg', 'train/bird'):
        assert str(root/p) in out, p
    args = cli().parse_args(['data', 'check', str(root), '--strict'])
    assert args.func(args) == 1
    from cnn_course.cli import main  # errors are printed, in one message, by the `cnn-course` entry point
    assert main(['data', 'check', 'products30']) == 1 and 'AI Hub' in capsys.readouterr().err
    assert main(['data', 'check', str(tmp_path/'nope')]) == 1 and 'no such folder' in capsys.readouterr().err
    ap = cli()
    assert {'get', 'check'} <= set(ap._subparsers._group_actions[0].choices['data']._cnn_sub.choices)

@REAL
def test_real_flowers_clean_and_fast(capsys):
    t = time.perf_counter()
    rep = check_dataset('flowers', path=Path(os.environ['CNN_COURSE_DATA'])/'flowers')
    first = time.perf_counter() - t
    assert (rep.n_images, len(rep.classes), len(rep.errors)) == (3670, 5, 0)
    assert first < 15, first
    t = time.perf_counter(); check_dataset('flowers'); assert time.perf_counter() - t < first
    args = cli().parse_args(['data', 'check', 'flowers', '--path', str(rep.root)])
    assert args.func(args) == 0
    assert '3670 images in 5 classes' in capsys.readouterr().out

@REAL
def test_real_flowers_copy_with_bad_files(tmp_path, capsys):
    src = Path(os.environ['CNN_COURSE_DATA'])/'flowers'
    root = tmp_path/'flowers'
    shutil.copytree(src, root)
    some = sorted((root/'train'/'roses').iterdir())
    some[0].write_bytes(some[0].read_bytes()[:1000])  # truncated
    some[1].write_bytes(b'')  # zero bytes
    some[2].write_text('not a photo')  # text named .jpg
    Image.open(some[3]).convert('CMYK').save(some[3])  # CMYK
    (root/'valid'/'lilies').mkdir()  # empty class folder
    args = cli().parse_args(['data', 'check', 'flowers', '--path', str(root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert '3 bad files' in out and '3667 images in 5 classes' in out
    for f, kind in [(some[0], 'truncated'), (some[1], 'zero-byte'), (some[2], 'not-an-image'), (some[3], 'cmyk'),
                    (root/'valid'/'lilies', 'empty-class')]:
        assert f'{kind}: {f}' in out, kind
