"""Test-run settings: `realdata` tests skip without `$CNN_COURSE_DATA`; `offline_home`, a fresh offline course home;
the helpers several test files share (a rubric for generated shapes, notebooks with plots, tampered runs)."""
import base64, io, json, os
from pathlib import Path
import pytest
from safetensors.torch import load_file, save_file
from cnn_course.evaluation.rubric import FLOWERS_RUBRIC

def pytest_collection_modifyitems(config, items):
    if os.environ.get('CNN_COURSE_DATA'): return
    skip = pytest.mark.skip(reason='needs CNN_COURSE_DATA (real photos): set it, or deselect with -m "not realdata"')
    for item in items:
        if 'realdata' in item.keywords: item.add_marker(skip)

@pytest.fixture()
def offline_home(tmp_path, monkeypatch):
    "A fresh course home under `tmp_path`, offline: nothing a test caches or downloads outlives it (`usefixtures`)."
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home')); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    return tmp_path/'home'

def figure_png():
    "A real little line plot as base64 PNG (a 1x1 or blank image does not count as a figure)."
    from PIL import Image, ImageDraw
    im = Image.new('RGB', (320, 240), 'white'); d = ImageDraw.Draw(im)
    d.line([(20, 20), (20, 220), (310, 220)], fill='black', width=2); d.line([(20, 200), (300, 40)], fill='blue', width=3)
    b = io.BytesIO(); im.save(b, 'PNG'); return base64.b64encode(b.getvalue()).decode()
PNG = figure_png()
RUBRIC = (FLOWERS_RUBRIC.replace('name = "flowers"', 'name = "shapes"').replace('of at least 85%', 'of at least 80%')
          .replace('dataset = "flowers"', 'dataset = "shapes"').replace('threshold = 0.85', 'threshold = 0.8')
          .replace('classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]\n', ''))

def code_cell(src, text=None, img=False):
    "An executed code cell: `src`, with `text` printed and a real plot shown when asked."
    outs = ([{'output_type': 'stream', 'name': 'stdout', 'text': [text]}] if text else []) + \
           ([{'output_type': 'display_data', 'data': {'image/png': PNG, 'text/plain': ['<Figure>']}, 'metadata': {}}] if img else [])
    return {'cell_type': 'code', 'execution_count': 1, 'metadata': {}, 'source': [src], 'outputs': outs}

def write_notebook(path, plots=True, photo='my_drawing.png'):
    "A student's executed notebook at `path`: history read, loss and accuracy plotted (`plots`), a prediction on `photo`."
    cells = [code_cell('import pandas as pd\nh = pd.read_csv("run/history.csv")')]
    if plots: cells += [{'cell_type': 'markdown', 'metadata': {}, 'source': ['Loss per epoch']},
                        code_cell('h[["train_loss", "valid_loss"]].plot()', img=True),
                        code_cell('ax = h.accuracy.plot(); ax.set_ylabel("accuracy")', "Text(0, 0.5, 'accuracy')", img=True)]
    cells.append(code_cell(f'run.predict("{photo}")', "[[('circle', 0.91), ('square', 0.05)]]"))
    Path(path).write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return Path(path)

def head_key(sd, n):
    "The state-dict key of the last linear layer with `n` outputs: the classifier's head."
    return [k for k, v in sd.items() if k.endswith('weight') and v.ndim == 2 and v.shape[0] == n][-1]

def tamper_run(folder, fn, classes=None):
    "Rewrite the weights of a run folder with `fn(state_dict)` (safetensors in, safetensors out)."
    sd = load_file(folder/'model.safetensors'); fn(sd); save_file(sd, folder/'model.safetensors')
    if classes:
        meta = json.loads((folder/'model.json').read_text()); meta['classes'] = classes
        (folder/'model.json').write_text(json.dumps(meta))
