"Tests of cnn_course.data.loaders: a DataBlock per dataset on images the tests make, bad files left out, test loaders, counts."
import os
from pathlib import Path
import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest
import torch
from PIL import Image
from cnn_course.data.registry import DATASETS, get_dataset
from cnn_course.data.loaders import (AUGS, class_counts, get_block, get_dls, get_test_dl, imbalance_ratio,
                             imbalance_table, plot_class_counts, split_items, item_tfms, RGBImage)
from cnn_course.core.images import center_crop

DATA = os.environ.get('CNN_COURSE_DATA')
REAL = pytest.mark.realdata  # skipped without CNN_COURSE_DATA (tests/conftest.py)

@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home'))
    monkeypatch.delenv('CNN_COURSE_DATA', raising=False)
    return tmp_path/'home'

def photos(root, classes, n=(4, 2, 2), size=(44, 36), flat=False, ext='jpg'):
    "Small photos in root/{train,valid,test}/CLASS/ (or root/CLASS/ when flat), distinct per class."
    splits = [('', sum(n))] if flat else list(zip(('train', 'valid', 'test'), n))
    for k, c in enumerate(classes):
        for s, m in splits:
            (root/s/c).mkdir(parents=True, exist_ok=True)
            for i in range(m):
                colour = ((53*k) % 256, (29*i) % 256, 99)
                Image.new('RGB', (size[0] + i, size[1]), colour).save(root/s/c/f'{s}{i}.{ext}')
    return root

def folder_classes(name):
    "The folder class names of a registry dataset (made up where they come from the folders)."
    spec = get_dataset(name)
    if spec.label_map: return list(spec.mapping)
    return list(spec.classes) or [f'class{i}' for i in range(4)]

@pytest.mark.parametrize('name', sorted(DATASETS))
def test_every_dataset_block(tmp_path, name):
    spec = get_dataset(name)
    root = photos(tmp_path/spec.dir_name, folder_classes(name))
    dls = get_dls(name, data=root, size=32, bs=4)
    expected = sorted(spec.classes or folder_classes(name))
    assert list(dls.vocab) == expected
    n_folders = len(folder_classes(name))
    assert (len(dls.train_ds), len(dls.valid_ds)) == (4*n_folders, 2*n_folders)
    xb, yb = dls.one_batch()
    assert xb.shape == (4, 3, 32, 32) and yb.shape == (4,)
    tdl = get_test_dl(dls, name, data=root)
    assert len(tdl.dataset) == 2*n_folders
    labels = [dls.vocab[int(y)] for _, y in tdl.dataset]
    truth = [spec.mapping.get(Path(f).parent.name, Path(f).parent.name) for f in tdl.dataset.items]
    assert labels == truth

def test_fashion5_labels_are_mapped(tmp_path):
    root = photos(tmp_path/'clothing', folder_classes('clothing'), n=(2, 1, 1))
    c = class_counts('fashion5', data=root)
    assert c.index.tolist() == ['bottom', 'hat', 'outer', 'shoes', 'top']
    assert c.loc['top', 'train'] == 2*4 and c.loc['bottom', 'train'] == 2*3 and c.loc['hat', 'train'] == 2

def test_generated_datasets_by_name_only():
    dls = get_dls('digits', bs=16, max_per_class=3)
    assert list(dls.vocab) == list('0123456789') and len(dls.train_ds) == 30
    assert dls.one_batch()[0].shape == (16, 3, 32, 32)
    dls = get_dls('shapes', bs=4, max_per_class=2)
    assert list(dls.vocab) == ['circle', 'square', 'triangle'] and dls.one_batch()[0].shape[-1] == 64

def test_flat_folder_gets_seeded_split(tmp_path):
    root = photos(tmp_path/'eggs', ['broken', 'intact'], n=(0, 0, 16), flat=True)
    a, b = split_items('eggs', root, seed=1), split_items('eggs', root, seed=1)
    assert a == b and [len(a[s]) for s in ('train', 'valid', 'test')] == [22, 4, 6]
    assert not set(a['train']) & set(a['test'])
    assert split_items('eggs', root, seed=2)['test'] != a['test']
    dls = get_dls('eggs', data=root, size=32, bs=4, seed=7)
    tdl = get_test_dl(dls, 'eggs', data=root)  # uses the seed of dls: no overlap with training images
    assert not set(tdl.dataset.items) & set(dls.train_ds.items)

def test_bad_files_are_left_out_and_modes_load_as_rgb(tmp_path):
    root = photos(tmp_path/'anime', ['anime', 'cartoon', 'human'], n=(4, 2, 2))
    good = (root/'train'/'anime'/'train0.jpg').read_bytes()
    (root/'train'/'anime'/'cut.jpg').write_bytes(good[:len(good)//2])
    (root/'train'/'cartoon'/'zero.jpg').write_bytes(b'')
    (root/'valid'/'human'/'text.jpg').write_text('hello')
    Image.new('CMYK', (40, 40), (0, 90, 200, 0)).save(root/'train'/'human'/'cmyk.jpg')
    Image.new('RGBA', (40, 40), (0, 0, 0, 0)).save(root/'train'/'human'/'rgba.png')
    Image.fromarray((np.arange(1600).reshape(40, 40)*40).astype(np.uint16)).save(root/'train'/'human'/'deep.png')
    Image.new('L', (40, 40), 3).save(root/'valid'/'human'/'gray.png')
    dls = get_dls('anime', data=root, size=32, bs=4, aug=False, workers=0)
    names = {Path(f).name for f in list(dls.train_ds.items) + list(dls.valid_ds.items)}
    assert not names & {'cut.jpg', 'zero.jpg', 'text.jpg'}
    assert {'cmyk.jpg', 'rgba.png', 'deep.png', 'gray.png'} <= names
    n = sum(len(x) for x, _ in dls.train) + sum(len(x) for x, _ in dls.valid)  # a whole epoch: nothing crashes
    assert n == len(dls.train_ds) - len(dls.train_ds) % 4 + len(dls.valid_ds)
    for f in ('cmyk.jpg', 'rgba.png', 'deep.png'):
        im = RGBImage.create(root/'train'/'human'/f)
        assert im.mode == 'RGB' and im.size == (40, 40)

def test_valid_transform_is_deterministic_and_documented(tmp_path):
    root = photos(tmp_path/'flowers', list(get_dataset('flowers').classes), n=(2, 2, 2), size=(70, 40))
    dls = get_dls('flowers', data=root, size=24, bs=4)
    a = torch.cat([x for x, _ in dls.valid]); b = torch.cat([x for x, _ in dls.valid])
    assert torch.equal(a, b)
    f = dls.valid_ds.items[0]
    im = RGBImage.create(f)
    expect = np.asarray(center_crop(im, 24), dtype=np.float32)/255
    mean, std = (np.array(s, dtype=np.float32) for s in dls.cnn_course['stats'])
    got = a[0].permute(1, 2, 0).numpy()*std + mean  # undo Normalize
    assert np.abs(got - expect).max() < 1e-4
    assert np.array_equal(np.asarray(item_tfms(24)[0](im, split_idx=1)), np.asarray(center_crop(im, 24)))

def test_stats_and_no_aug(tmp_path):
    root = photos(tmp_path/'clothing', folder_classes('clothing'), n=(1, 1, 1), size=(32, 32))
    dls = get_dls('clothing', data=root, size=32, bs=10, stats=((0.5,)*3, (0.5,)*3), aug=False)
    x, _ = dls.valid.one_batch()
    ims = [np.asarray(RGBImage.create(f), dtype=np.float32)/255 for f in dls.valid_ds.items[:10]]
    assert np.allclose(x.permute(0, 2, 3, 1).numpy(), (np.stack(ims) - 0.5)/0.5, atol=1e-5)
    assert [type(t).__name__ for t in dls.train.after_batch.fs if 'Flip' in type(t).__name__] == []

def test_augmentations_per_family():
    flip_vert = {k: v.get('flip_vert', False) for k, v in AUGS.items()}
    assert not flip_vert['photo'] and not flip_vert['sports'] and flip_vert['eggs']
    assert not AUGS['digits']['do_flip']
    assert AUGS['sports']['max_zoom'] > 1 and AUGS['eggs']['max_rotate'] > 0
    assert {get_dataset(n).aug for n in ('flowers', 'clothing', 'fashion5', 'anime', 'products10')} == {'photo'}
    assert get_dataset('sports100').aug == 'sports' and get_dataset('eggs').aug == 'eggs'

def test_max_per_class_is_seeded(tmp_path):
    root = photos(tmp_path/'products10', [f'p{i}' for i in range(3)], n=(8, 3, 3))
    a = split_items('products10', root, seed=5, max_per_class=2)
    assert len(a['train']) == 6 and a == split_items('products10', root, seed=5, max_per_class=2)
    assert a != split_items('products10', root, seed=6, max_per_class=2)

def test_counts_imbalance_and_balanced_sampling(tmp_path):
    root = tmp_path/'clothing'
    photos(root, ['hat'], n=(3, 2, 1)); photos(root, ['pants'], n=(24, 2, 1))
    counts = class_counts('clothing', data=root)
    assert counts.to_dict() == {'train': {'hat': 3, 'pants': 24}, 'valid': {'hat': 2, 'pants': 2},
                                'test': {'hat': 1, 'pants': 1}}
    t = imbalance_table(counts)
    assert t.loc['hat', 'ratio'] == 8.0 and abs(t['share'].sum() - 1) < 1e-6 and imbalance_ratio(counts) == 8.0
    plain = get_dls('clothing', data=root, size=16, bs=9, aug=False)
    assert class_counts(plain).loc['hat', 'train'] == 3
    torch.manual_seed(0); np.random.seed(0)
    dls = get_dls('clothing', data=root, size=16, bs=9, balanced=True, aug=False)
    ys = torch.cat([y for _ in range(10) for _, y in dls.train])
    share_hat = (ys == dls.vocab.o2i['hat']).float().mean().item()
    assert 0.35 < share_hat < 0.65  # ~0.5 instead of 3/27 = 0.11
    assert set(dls.valid_ds.items) == set(plain.valid_ds.items)  # valid is never resampled
    ax = plot_class_counts('clothing', data=root)
    assert len(ax.patches) == 6

def test_test_loader_errors(tmp_path):
    root = photos(tmp_path/'anime', ['anime', 'human'], n=(2, 1, 1))
    dls = get_dls('anime', data=root, size=16, bs=2)
    photos(root, ['cartoon'], n=(0, 0, 1))
    with pytest.raises(ValueError, match='not trained on: cartoon'): get_test_dl(dls, 'anime', data=root)
    with pytest.raises(ValueError, match="Unknown split 'nope'. Available: train, valid, test"):
        get_test_dl(dls, 'anime', data=root, split='nope')
    for f in (root/'test').rglob('*.jpg'): f.unlink()
    with pytest.raises(ValueError, match="no 'test' images"): get_test_dl(dls, 'anime', data=root)

def test_missing_valid_split_is_explained(tmp_path):
    root = photos(tmp_path/'anime', ['anime', 'human'], n=(2, 0, 0))
    with pytest.raises(ValueError, match='0 valid images'): get_dls('anime', data=root)

def test_block_is_a_fastai_datablock(tmp_path):
    from fastai.data.block import DataBlock
    root = photos(tmp_path/'eggs', ['broken', 'intact'], n=(2, 1, 1))
    items = split_items('eggs', root)
    blk = get_block('eggs', items['valid'], size=16)
    assert isinstance(blk, DataBlock)
    dss = blk.datasets(items['train'] + items['valid'])
    assert (len(dss.train), len(dss.valid)) == (4, 2)

@REAL
def test_real_flowers_counts(monkeypatch):
    monkeypatch.setenv('CNN_COURSE_DATA', DATA)
    dls = get_dls('flowers', size=64, bs=64)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (2476, 458)
    assert len(get_test_dl(dls, 'flowers').dataset) == 736
    assert list(dls.vocab) == list(get_dataset('flowers').classes)

@REAL
def test_real_fashion5_counts(monkeypatch):
    monkeypatch.setenv('CNN_COURSE_DATA', DATA)
    c = class_counts('fashion5')
    assert c.index.tolist() == ['bottom', 'hat', 'outer', 'shoes', 'top']
    assert c['train'].sum() == 3068 and c['valid'].sum() == 341 and c['test'].sum() == 372
    assert c.loc['top', 'train'] == 241 + 455 + 290 + 795 and c.loc['bottom', 'train'] == 468 + 202 + 112
    dls = get_dls('fashion5', size=64, bs=64)
    assert list(dls.vocab) == ['bottom', 'hat', 'outer', 'shoes', 'top']
