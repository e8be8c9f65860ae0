"""The course widgets as a learner meets them: JupyterLab in headless Chromium (Selenium), cells run, widgets clicked.

Skipped, with the reason, where Chromium, chromedriver, Selenium or JupyterLab is missing (Debian `chromium` and
`chromium-driver`; `pip install -e ".[dev]"` brings JupyterLab and Selenium). Screenshots go to `$CNN_COURSE_ARTIFACTS`
(default: pytest's tmp folder); their paths are printed (`pytest -s`)."""
import json, math, os, re, shutil, socket, subprocess, sys, time, urllib.request, uuid
from pathlib import Path
import pytest

CHROMIUM, DRIVER = shutil.which('chromium') or '/usr/bin/chromium', shutil.which('chromedriver') or '/usr/bin/chromedriver'
LAB = Path(sys.executable).parent/'jupyter-lab'

def _missing() -> str|None:
    "Why the browser test cannot run here, or None."
    for what, p in (('Chromium (Debian package chromium)', CHROMIUM), ('chromedriver (Debian package chromium-driver)', DRIVER)):
        if not Path(p).exists(): return f'{what} is not installed'
    try: import selenium  # noqa: F401
    except ImportError: return 'selenium is not installed: pip install -e ".[dev]"'
    if not LAB.exists(): return f'JupyterLab is not installed ({LAB} missing): pip install -e ".[dev]"'

pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or '')

# The notebook a learner would run: a tiny run trained on generated shapes, then each course widget in its own cell.
SETUP = """from pathlib import Path
import numpy as np, torch
from cnn_course.data.fetch import make_shapes
from cnn_course.training.recipes import train
from cnn_course.training.lr_finder import LRSuggestions, SUGGESTERS
from cnn_course.inference.runs import load_run
from cnn_course.course.widgets import UploadPredictor
from cnn_course.course.explorers import LRExplorer, AugmentExplorer, DatasetBrowser
data = make_shapes(Path('data/shapes'), n_classes=4, size=32, n_per_class=15, seed=0)
train('shapes', 'simple_cnn', data=data, pretrained=False, out='run', max_per_class=8, size=32, epochs=1, bs=8)
run = load_run('run')
# an lr_find-shaped curve: flat, a fall around 1e-3, lowest near 1e-2, then the blow-up
lrs = np.geomspace(1e-7, 10, 100); x = np.log10(lrs)
loss = 2.3 - 1.6/(1 + np.exp(-2.5*(x + 3))) + 2*np.exp(2.5*(x + .5))
t, l = torch.tensor(lrs), torch.tensor(loss)
sugg = LRSuggestions({k: float(f(t, l, 100)[0]) for k, f in SUGGESTERS.items()}, lrs.tolist(), loss.tolist())
print('classes:', ', '.join(run.classes))
print('suggestions:', ' '.join(f'{k}={v!r}' for k, v in sugg.suggestions.items()))"""
CELLS = {'setup': SETUP, 'upload': 'UploadPredictor(run, k=3)', 'lr': 'LRExplorer(sugg)',
         'augment': "AugmentExplorer(sorted((data/'train').glob('*/*.png'))[:3], family='photo', n=4, size=96)",
         'browser': 'DatasetBrowser(data, per_page=6, size=64)', 'done': "print('all cells ran')"}
SETTINGS = {'@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
            '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False}}

def notebook(cells:dict) -> dict:
    "A notebook (nbformat 4) with one code cell per value of `cells`."
    code = [{'cell_type': 'code', 'execution_count': None, 'id': k, 'metadata': {}, 'outputs': [], 'source': s} for k, s in cells.items()]
    return {'cells': code, 'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
            'nbformat': 4, 'nbformat_minor': 5}

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def wait_for(cond, timeout:float, what:str, every:float=.25):
    "Poll `cond()` until it returns something truthy; fail naming `what` after `timeout` seconds."
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if r := cond(): return r
        except Exception: pass  # the page may be re-rendering under us: try again
        time.sleep(every)
    raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')

@pytest.fixture(scope='module')
def artifacts(tmp_path_factory) -> Path:
    d = Path(os.environ.get('CNN_COURSE_ARTIFACTS') or tmp_path_factory.mktemp('artifacts'))/'browser'
    d.mkdir(parents=True, exist_ok=True)
    return d

def _answers(p, url:str, log:Path) -> bool:
    "Whether the server at `url` answers; fails at once (with its log) if the server process has ended."
    if p.poll() is not None: pytest.fail(f'JupyterLab exited ({p.returncode}):\n' + log.read_text()[-2000:])
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return no_proxy.open(url, timeout=2).status == 200

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "JupyterLab on a free localhost port with a token, its root a temp folder holding the widgets notebook."
    base = tmp_path_factory.mktemp('lab'); root = base/'root'; root.mkdir()
    (root/'widgets.ipynb').write_text(json.dumps(notebook(CELLS)))
    for name, value in SETTINGS.items():
        (base/'settings'/name).parent.mkdir(parents=True, exist_ok=True); (base/'settings'/name).write_text(json.dumps(value))
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, 'JUPYTERLAB_SETTINGS_DIR': str(base/'settings'), 'JUPYTER_CONFIG_DIR': str(base/'config'),
           'JUPYTER_RUNTIME_DIR': str(base/'runtime'), 'CNN_COURSE_HOME': str(base/'home'), 'CNN_COURSE_OFFLINE': '1',
           'MPLBACKEND': 'Agg'}
    log = open(base/'lab.log', 'w')
    p = subprocess.Popen([str(LAB), '--no-browser', '--ip=127.0.0.1', f'--port={port}', f'--IdentityProvider.token={token}',
                          f'--ServerApp.root_dir={root}', '--LabApp.expose_app_in_browser=True',
                          '--ServerApp.port_retries=0', '--allow-root'],
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    try:
        wait_for(lambda: _answers(p, f'{url}/api/status?token={token}', base/'lab.log'),
                 90, f'JupyterLab to answer (log: {base/"lab.log"})')
        yield dict(url=url, token=token, root=root)
    finally:
        p.terminate()
        try: p.wait(20)
        except subprocess.TimeoutExpired: p.kill()
        log.close()

@pytest.fixture(scope='module')
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions(); o.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1400,1100'): o.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    yield d
    d.quit()

KERNEL_STATUS = """const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
return k ? k.status : null;"""

def cell(driver, name:str):
    "The notebook cell (DOM element) that runs `CELLS[name]`."
    return driver.find_elements('css selector', '.jp-Notebook .jp-CodeCell')[list(CELLS).index(name)]

def outputs_text(driver, name:str) -> str: return cell(driver, name).find_element('css selector', '.jp-OutputArea').text

def shot(driver, el, artifacts:Path, name:str) -> Path:
    "Scroll `el` into view and save its screenshot."
    driver.execute_script('arguments[0].scrollIntoView({block: "center"});', el); time.sleep(.3)
    p = artifacts/f'{name}.png'; el.screenshot(str(p)); print(f'screenshot: {p}')
    return p

@pytest.fixture(scope='module')
def ran(lab, driver, artifacts):
    "The notebook opened in JupyterLab, every cell run from the Run menu's command, all widgets drawn."
    driver.get(f"{lab['url']}/lab/tree/widgets.ipynb?token={lab['token']}")
    wait_for(lambda: driver.execute_script(KERNEL_STATUS) == 'idle', 120, 'the notebook to open and its kernel to be idle')
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    wait_for(lambda: 'all cells ran' in outputs_text(driver, 'done'), 180, 'every cell to run')
    wait_for(lambda: all(cell(driver, n).find_elements('css selector', '.jp-OutputArea-output .widget-vbox')
                         for n in ('upload', 'lr', 'augment', 'browser')), 60, 'the four widgets to be drawn')
    driver.save_screenshot(str(artifacts/'notebook.png')); print(f"screenshot: {artifacts/'notebook.png'}")
    return driver

def _errors(driver) -> list[str]:
    return [e.text for e in driver.find_elements('css selector', '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            if 'Traceback' in e.text or 'Error' in e.text]

def test_each_widget_renders_as_a_widget_not_as_text(ran, artifacts):
    assert not _errors(ran), _errors(ran)
    assert re.search(r'classes: \w+', outputs_text(ran, 'setup'))
    for name in ('upload', 'lr', 'augment', 'browser'):
        out = cell(ran, name).find_element('css selector', '.jp-OutputArea')
        assert out.find_elements('css selector', '.jupyter-widgets.widget-vbox.lm-Widget'), f'{name}: no widget in the output'
        assert not re.search(r'\b(VBox|HBox|UploadPredictor|LRExplorer|AugmentExplorer|DatasetBrowser)\(',
                             out.text), f'{name}: shown as text: {out.text[:200]}'
        assert shot(ran, out, artifacts, f'widget_{name}').stat().st_size > 1000
    browser = cell(ran, 'browser')
    imgs = browser.find_elements('css selector', '.widget-html img')
    assert len(imgs) == 6 and all(ran.execute_script('return arguments[0].naturalWidth', i) > 0 for i in imgs)
    caps = browser.find_elements('css selector', 'figcaption')
    assert len(caps) == 6 and not [c.text for c in caps if _overflows(ran, c)], 'thumbnail captions run into each other'

def _overflows(driver, el) -> bool: return driver.execute_script('return arguments[0].scrollWidth > arguments[0].clientWidth', el)

# ipywidgets 8's FileUpload opens the native file dialog from an <input type=file> it never attaches to the page. This
# script catches that input when the button is clicked, attaches it (hidden) so Selenium can hand it a file the way a
# person picks one in the dialog; the widget's own change handler then reads and sends the file.
CATCH_FILE_INPUT = """const click = HTMLInputElement.prototype.click;
HTMLInputElement.prototype.click = function () {
  if (this.type !== 'file') return click.call(this);
  this.setAttribute('data-test-chooser', '1'); document.body.appendChild(this);
};"""

def test_upload_a_photo_through_the_file_chooser_shows_top3(ran, lab, artifacts):
    classes = re.search(r'classes: (.*)', outputs_text(ran, 'setup')).group(1).split(', ')
    photo = sorted((lab['root']/'data'/'shapes'/'test').glob('*/*.png'))[0]
    box = cell(ran, 'upload').find_element('css selector', '.jp-OutputArea')
    assert 'Upload one or more images' in box.text
    ran.execute_script(CATCH_FILE_INPUT)
    box.find_element('css selector', 'button.widget-upload').click()
    chooser = wait_for(lambda: ran.find_element('css selector', 'input[type=file][data-test-chooser]'), 10, 'the file chooser')
    chooser.send_keys(str(photo))
    wait_for(lambda: len(box.find_elements('css selector', '.widget-html li')) == 3, 60, 'the top-3 classes of the uploaded photo')
    shown = [li.text for li in box.find_elements('css selector', '.widget-html li')]
    assert all(re.fullmatch(r'(\S+) \d+\.\d%', s) and s.split()[0] in classes for s in shown), shown
    assert len({s.split()[0] for s in shown}) == 3 and photo.name in box.text
    button = box.find_element('css selector', 'button.widget-upload')
    assert button.text.endswith('Upload images (1)') and not _overflows(ran, button)  # the count is not cut off
    shot(ran, box, artifacts, 'upload_top3')

def _html(el) -> str: return el.find_element('css selector', '.widget-html-content').get_attribute('innerHTML')

def _readout(box) -> float: return float(box.find_element('css selector', '.widget-readout').text)

def test_lr_explorer_responds_to_the_dropdown_and_a_slider_click(ran, artifacts):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.support.ui import Select
    sugg = {k: float(v) for k, v in re.findall(r'(\w+)=([\d.e+-]+)', re.search(r'suggestions: (.*)', outputs_text(ran, 'setup')).group(1))}
    box = cell(ran, 'lr').find_element('css selector', '.jp-OutputArea')
    advice, fig = box.find_elements('css selector', '.widget-html')[:2]
    before = (advice.text, _html(fig))
    assert re.match(r'(good|high|too low|too high):', before[0]) and '<img src="data:image/png;base64,' in before[1]
    assert _readout(box) == pytest.approx(sugg['valley'], rel=.05)  # the slider keeps the suggestion it starts from
    menu = Select(box.find_element('css selector', 'select'))
    other = max(sugg, key=lambda k: abs(math.log10(sugg[k]/sugg['valley'])))
    menu.select_by_visible_text(other)
    wait_for(lambda: advice.text != before[0] and _html(fig) != before[1], 30, f'advice and figure to change after choosing {other}')
    assert _readout(box) == pytest.approx(sugg[other], rel=.05) and f'{sugg[other]:.1e}' in advice.text
    shot(ran, box, artifacts, 'lr_explorer_after_dropdown')
    track, now = box.find_element('css selector', '.widget-slider .noUi-target'), (advice.text, _html(fig))
    ActionChains(ran).move_to_element_with_offset(track, -track.size['width']//2 + 4, 0).click().perform()  # far left: tiny rates
    wait_for(lambda: advice.text.startswith('too low') and _html(fig) != now[1], 30,
             f'"too low" advice and a new figure after clicking the left of the slider (was {now[0]!r})')
    assert _readout(box) < 1e-6
    shot(ran, box, artifacts, 'lr_explorer_after_slider_click')

def test_augment_explorer_responds_to_a_checkbox_and_the_family(ran, artifacts):
    from selenium.webdriver.support.ui import Select
    box = cell(ran, 'augment').find_element('css selector', '.jp-OutputArea')
    out = box.find_elements('css selector', '.widget-html')[-1]
    code, imgs = out.find_element('css selector', 'code').text, _html(out)
    assert code.startswith('aug_transforms(') and imgs.count('<img ') == 4
    flip = box.find_element('css selector', '.widget-checkbox input[type=checkbox]')
    was = flip.is_selected(); flip.click()
    wait_for(lambda: out.find_element('css selector', 'code').text != code, 30, 'the arguments to change after the do_flip click')
    assert f'do_flip={not was}' in out.find_element('css selector', 'code').text
    shot(ran, box, artifacts, 'augment_after_flip_click')
    family = next(Select(s) for s in box.find_elements('css selector', 'select') if 'eggs' in s.text)
    before = _html(out)  # read before the click: a fast redraw must not become the baseline it is compared with
    family.select_by_visible_text('eggs')
    wait_for(lambda: 'max_rotate=45' in out.find_element('css selector', 'code').text and _html(out) != before,
             60, 'the eggs preset to redraw')
    assert _html(out).count('<img ') == 4
    shot(ran, box, artifacts, 'augment_after_family_eggs')
