"""The course as a website (tools/build_site.py): its page rules, then a small build opened in headless Chromium.

The build test executes one lesson in small mode (a few photos per class; the real photos when `CNN_COURSE_DATA` is
set) and three package pages, serves the site with `http.server` and checks that every page loads, every image
loads and every link between pages answers. The whole site: `python tools/build_site.py` (see its docstring), then
`CNN_COURSE_SITE=_docs pytest tests/test_site.py` checks it the same way."""
import functools, http.server, importlib.util, json, os, re, shutil, sys, threading, time, urllib.error, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('build_site', ROOT/'tools'/'build_site.py')
S = sys.modules['build_site'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(S)
CHROMIUM, DRIVER = shutil.which('chromium') or '/usr/bin/chromium', shutil.which('chromedriver') or '/usr/bin/chromedriver'

def _md(s): return {'cell_type': 'markdown', 'id': 'm', 'metadata': {}, 'source': s}
def _code(s, outputs=()): return {'cell_type': 'code', 'id': 'c', 'metadata': {}, 'source': s,
                                  'outputs': list(outputs), 'execution_count': 1}
def _nb(*cells): return {'cells': list(cells), 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}

def test_page_names_follow_nbdev_for_the_package_and_keep_lesson_numbers():
    assert S.page_href(Path('nbs/13_widgets.ipynb'), 'Package') == 'widgets.html'
    assert S.page_href(Path('nbs/07a_distrib.ipynb'), 'Package') == 'distrib.html'
    assert S.page_href(Path('nbs/index.ipynb'), 'Package') == 'index.html'
    assert S.page_href(Path('x/03_learning_rate.ipynb'), 'Lessons') == 'lessons/03_learning_rate.html'
    paths = [Path(f'{n}.ipynb') for n in ('13_widgets', '01_first', '03_lr', '14_lessons')]
    assert S.select(paths, ['01', '13']) == [Path('01_first.ipynb'), Path('13_widgets.ipynb')]
    assert S.select(paths, None) == sorted(paths)

def test_links_point_at_pages_relative_to_the_page():
    md = 'See [run](/runs.html#load_run), [w](../nbs/13_widgets.ipynb), [l6](06_graded_project.ipynb), [web](https://x.org/a.html).'
    assert S._links(md, '../') == 'See [run](../runs.html#load_run), [w](../widgets.html), [l6](../lessons/06_graded_project.html), [web](https://x.org/a.html).'
    assert '](runs.html#load_run)' in S._links(md, '')
    assert S._links('[`f`](/core.html#f) and [g](/runs.html)', '', {'runs.html'}) == '`f` and [g](runs.html)'  # core.html not built

def test_prepare_titles_hides_directives_and_replaces_widgets():
    widget = {'output_type': 'display_data', 'metadata': {}, 'data': {S.WIDGET: {'model_id': 'x'}, 'text/plain': 'VBox(...)'}}
    doc = {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': 'see [f](/core.html#f)'}}
    nb = S.prepare(_nb({'cell_type': 'raw', 'id': 'r', 'metadata': {}, 'source': "---\ntitle: Widgets\ndescription: 'Upload photos'\n---"},
                       _code('#| hide\nsecret = 1'), _code('#| echo: false\n#| output: asis\nshow_doc(f)', [doc]),
                       _code('UploadPredictor(run)', [widget])), '../')
    first, show, up = nb['cells']
    assert first['source'] == '# Widgets\n\n> Upload photos'
    assert show['source'] == 'show_doc(f)' and show['metadata']['tags'] == ['remove_input']
    assert show['outputs'][0]['data']['text/markdown'] == 'see [f](../core.html#f)'
    assert up['outputs'][0]['data'] == {'text/html': S.WIDGET_NOTE} and 'secret' not in json.dumps(nb)
    warn = {'output_type': 'stream', 'name': 'stderr', 'text': ['x.py:3: FutureWarning: old\n', '  warnings.warn(\n']}
    err = {'output_type': 'stream', 'name': 'stderr', 'text': 'x.py:3: FutureWarning: old\nValueError: bad\n'}
    assert S.prepare(_nb(_code('f()', [warn, err])), '')['cells'][0]['outputs'] == [err]  # warnings alone are noise
    lesson = S.prepare(_nb(_md('# Lesson 1: flowers\n\n> A first classifier'), _code('1+1')), '')
    assert [c['cell_type'] for c in lesson['cells']] == ['markdown', 'code']  # its own heading is kept, not doubled
    assert S._front_matter(lesson)['title'] == 'Lesson 1: flowers'

def test_sidebar_links_every_page_from_where_it_is_drawn(tmp_path):
    pages = [S.Page(tmp_path/'i.ipynb', 'index.html', 'Package'), S.Page(tmp_path/'w.ipynb', 'widgets.html', 'Package'),
             S.Page(tmp_path/'l.ipynb', 'lessons/01_first.html', 'Lessons')]
    titles = {'index.html': 'cnn_course', 'widgets.html': 'Widgets', 'lessons/01_first.html': 'Lesson 1'}
    nav = S.sidebar(pages, pages[2], titles)
    assert re.findall(r'href="([^"]+)"', nav) == ['../index.html', '../lessons/01_first.html', '../widgets.html']
    assert '<a href="../lessons/01_first.html" class=here>Lesson 1</a>' in nav
    assert re.findall(r'href="([^"]+)"', S.sidebar(pages, pages[1], titles)) == ['index.html', 'lessons/01_first.html', 'widgets.html']

def test_sidebar_groups_the_package_by_subpackage(tmp_path):
    "Package pages sit under their room (`core/`, `course/`...), in notebook order; the rooms come from `default_exp`."
    nbs = {}
    for name, exp in [('00_core', 'core.basics'), ('03_data', 'data.loaders'), ('13_widgets', 'course.widgets'), ('index', None)]:
        nbs[name] = tmp_path/f'{name}.ipynb'
        src = [f'#| default_exp {exp}'] if exp else ['x = 1']
        nbs[name].write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': src, 'metadata': {}, 'outputs': []}]}))
    assert [S.room_of(nbs[n]) for n in nbs] == ['core', 'data', 'course', '']
    pages = [S.Page(p, S.page_href(p, 'Package'), 'Package', S.room_of(p)) for p in nbs.values()]
    titles = {p.href: p.src.stem for p in pages}
    nav = S.sidebar(pages, pages[0], titles)
    assert re.findall(r'<li class=room>(\w+)/', nav) == ['core', 'data', 'course']
    assert nav.index('course/') < nav.index('widgets.html') and nav.index('data/') < nav.index('data.html') < nav.index('course/')
    yml = S.quarto_sidebar(list(nbs.values()))
    assert '      - section: data\n        contents:\n          - 03_data.ipynb\n' in yml and '      - index.ipynb' in yml
    rooms = {S.room_of(p) for p in (S.ROOT/'nbs').glob('*.ipynb')} - {''}
    assert rooms == {p.name for p in (S.ROOT/'cnn_course').iterdir() if (p/'__init__.py').exists()}  # every room has pages

def _missing_browser():
    for what, p in (('Chromium (Debian package chromium)', CHROMIUM), ('chromedriver (Debian package chromium-driver)', DRIVER)):
        if not Path(p).exists(): return f'{what} is not installed'
    for m in ('selenium', 'nbconvert'):
        if importlib.util.find_spec(m) is None: return f'{m} is not installed: pip install -e ".[dev]"'

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "A small build: lesson 01 executed in small mode, the home page and two package pages (or `$CNN_COURSE_SITE`, built)."
    if why := _missing_browser(): pytest.skip(why)
    if built := os.environ.get('CNN_COURSE_SITE'): return Path(built)  # check a whole site built by tools/build_site.py
    tmp = tmp_path_factory.mktemp('site'); t = time.time()
    index = S.build_site(tmp/'site', tmp/'build', lessons=['01'], package=['13_widgets', '14_lessons'], size='small', renderer='nbconvert')
    print(f'site built in {time.time() - t:.0f} s: {index}')
    return index.parent

@pytest.fixture(scope='module')
def served(site):
    "The site on a localhost port; the paths requested that were not found."
    missing = []
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def send_error(self, code, *a, **k):
            missing.append((code, self.path)); super().send_error(code, *a, **k)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}', missing
    srv.shutdown()

@pytest.fixture(scope='module')
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions(); o.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1300,1000'): o.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    yield d
    d.quit()

def test_site_pages_images_and_links_load_in_chromium(site, served, driver, tmp_path_factory):
    url, missing = served
    shots = Path(os.environ.get('CNN_COURSE_ARTIFACTS') or tmp_path_factory.mktemp('artifacts'))/'site'
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html'))
    assert {'index.html', 'widgets.html', 'lessons/01_first_classifier.html'} <= set(pages)
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    checked = set()
    for page in pages:
        driver.get(f'{url}/{page}')
        for _ in range(100):  # big pages (embedded figures) may still be loading after get() returns
            if driver.execute_script('return document.readyState') == 'complete': break
            time.sleep(.1)
        assert driver.execute_script('return document.readyState') == 'complete', f'{page} did not finish loading in 10 s'
        assert driver.find_elements('css selector', 'h1') and driver.find_elements('css selector', 'nav.course-nav a'), page
        imgs = driver.find_elements('css selector', 'img')
        broken = [i.get_attribute('src')[:80] for i in imgs
                  if not driver.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i)]
        assert not broken, f'{page}: images that did not load: {broken}'
        hrefs = {h.split('#')[0] for h in driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")}
        for h in sorted(h for h in hrefs if h.startswith(url) and h not in checked):
            checked.add(h)
            try:
                with no_proxy.open(h, timeout=10) as r: r.read(); status = r.status
            except urllib.error.HTTPError as e: status = e.code
            assert status == 200, f'{page} links to {h}: HTTP {status}'
        driver.save_screenshot(str(shots/(page.replace('/', '_') + '.png')))
    assert not missing, f'requests the site could not answer: {missing}'
    assert {f'{url}/{p}' for p in pages} <= checked  # every page is reachable from the sidebar
    print(f'site screenshots: {shots}')

def test_lesson_page_shows_its_outputs(site):
    page = (site/'lessons'/'01_first_classifier.html').read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) >= 2  # show_batch, the curves, the confusion matrix...
    assert S.WIDGET_NOTE in page and 'VBox(' not in page  # the upload widget, noted, not printed as text
    assert re.search(r'In(&nbsp;|\s)\[1\]:', page)  # executed: cells carry execution counts

def _bench_lessons():
    spec = importlib.util.spec_from_file_location('bench_lessons', ROOT/'bench'/'lessons.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def test_site_shows_the_lessons_bench_executed_without_running_them_again(tmp_path, monkeypatch):
    "bench/lessons.py saves each lesson it runs (nbdev-test's run, outputs kept); the site shows that copy, once."
    root = tmp_path/'repo'; (root/'lessons').mkdir(parents=True)
    lesson = root/'lessons'/'01_tiny.ipynb'
    lesson.write_text(json.dumps(_nb(_md('# Lesson 1: tiny\n\n> A test'), _code("import os\nprint('IN_TEST', os.environ.get('IN_TEST'))"))))
    before = lesson.read_text()
    r = _bench_lessons().run_lesson(lesson, dict(os.environ), tmp_path/'executed'/lesson.name)
    assert r.returncode == 0, r.stderr
    assert lesson.read_text() == before  # the committed lesson is never written to
    saved = json.loads((tmp_path/'executed'/lesson.name).read_text())
    assert saved['cells'][1]['outputs'][0]['text'] == ['IN_TEST 1\n']  # run as nbdev-test runs it (strict checks)
    assert saved['metadata']['cnn_course']['size'] == 'full' and S.saved_run(lesson, tmp_path/'executed'/lesson.name) is None
    ran = []
    import cnn_course.course.lessons
    monkeypatch.setattr(cnn_course.course.lessons, 'execute_notebook', lambda src, dest, timeout=0: ran.append(src) or dest)
    done = S.execute_lessons(tmp_path/'build', root=root, executed=tmp_path/'executed')
    assert ran == [] and json.loads(done[0].read_text())['cells'][1]['outputs']  # shown with its outputs, not rerun
    lesson.write_text(json.dumps(_nb(_md('# Lesson 1: tiny'), _code('print(2)'))))  # the lesson changed since
    assert S.saved_run(lesson, tmp_path/'executed'/lesson.name) == 'the lesson changed since its saved run'
    S.execute_lessons(tmp_path/'build', root=root, executed=tmp_path/'executed')
    assert ran == [tmp_path/'build'/lesson.name]  # executed here, since the saved run no longer matches
    assert 'no saved run' in S.saved_run(lesson, tmp_path/'nowhere'/lesson.name)
