"""The Gradescope bundle ships a package that works on its own: every module of the unpacked copy imports (not the
working tree's), and the shipped sample photos are in it."""
import json, os, subprocess, sys, zipfile
from pathlib import Path
from cnn_course.data.shapes import make_shapes
from cnn_course.grading.lms import gradescope_bundle
from conftest import RUBRIC

PKG = Path(__file__).parents[1]/'cnn_course'

# Run in the unpacked copy: imports every module found there (subpackages too) and reports what it saw.
PROBE = '''
import importlib, json, sys, traceback
from pathlib import Path
src = Path(sys.argv[1])
import cnn_course
mods = sorted('.'.join(p.relative_to(src).with_suffix('').parts).removesuffix('.__init__')
              for p in (src/'cnn_course').rglob('*.py'))
failed = {}
for m in mods:
    try: importlib.import_module(m)
    except BaseException: failed[m] = traceback.format_exc(limit=-3)
from cnn_course.course.own_photos import SAMPLES
print(json.dumps(dict(package=cnn_course.__file__, modules=mods, failed=failed, samples=str(SAMPLES),
                      photos=sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob('*.jpg')),
                      loaded=sorted(m.__file__ for n, m in sys.modules.items()
                                    if n.split('.')[0] == 'cnn_course' and getattr(m, '__file__', None)))))
'''

def test_every_module_of_the_bundled_package_imports_from_the_bundle(tmp_path, offline_home):
    (tmp_path/'rubric.toml').write_text(RUBRIC)
    test = make_shapes(tmp_path/'shapes', n_classes=3, size=40, n_per_class=20, seed=0)/'test'
    z = gradescope_bundle(tmp_path/'rubric.toml', test, tmp_path/'autograder.zip')
    unpacked = tmp_path/'fresh'/'source'
    with zipfile.ZipFile(z) as f: names = set(f.namelist()); f.extractall(unpacked)
    src = (unpacked/'cnn_course_src').resolve()
    shipped = PKG/'samples'/'own_photos'
    photos = sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob('*.jpg'))
    assert photos and {f'cnn_course_src/cnn_course/samples/own_photos/{p}' for p in photos} <= names
    elsewhere = tmp_path/'elsewhere'; elsewhere.mkdir()  # not the checkout: its cnn_course/ must not be the one found
    env = {**os.environ, 'PYTHONPATH': str(src), 'MPLBACKEND': 'Agg'}  # only the bundle's copy on the path
    r = subprocess.run([sys.executable, '-c', PROBE, str(src)], cwd=elsewhere, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(got['package']).resolve().is_relative_to(src)
    assert all(Path(f).resolve().is_relative_to(src) for f in got['loaded']), 'a module came from outside the bundle'
    assert not got['failed'], '\n'.join(f'{m}:\n{tb}' for m, tb in got['failed'].items())
    tree = sorted('.'.join(p.relative_to(PKG.parent).with_suffix('').parts).removesuffix('.__init__')
                  for p in PKG.rglob('*.py'))
    assert got['modules'] == tree and len(tree) > 40 and 'cnn_course.grading.project' in tree  # subpackages too
    assert Path(got['samples']).resolve().is_relative_to(src) and got['photos'] == photos
