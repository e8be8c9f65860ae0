"""Build the course as a website: the package documentation (nbs/) and the lessons with their outputs, as HTML.

    .venv/bin/python tools/build_site.py [--out _docs] [--size small|full] [--lessons 01 03] [--package 13_widgets]

Pages come from nbdev's processed notebooks (`nbdev.serve.proc_nbs`: signatures from `show_doc`, links between
modules), the same input `nbdev-docs` hands to Quarto. The lessons are executed first into `build/site/lessons` (the
committed notebooks are never written to), `--size small` (CI: a few photos per class) or `full` (every photo).
A full run of every lesson costs what `bench/lessons.py` measures (minutes each on two cores): that bench saves the
notebooks it executes to `build/executed`, and `--executed build/executed` shows those instead of running the lessons
again (a lesson changed since, whose cells no longer match the saved copy's digest, is executed here).
With Quarto on PATH the pages are rendered by Quarto (`nbdev.quarto_render.render_quarto`, as `nbdev-docs` does);
without it by nbconvert, with a sidebar linking every page. PyPI's `quarto-cli` downloads Quarto from GitHub while it
installs, so it cannot be installed where only package registries are reachable: there nbconvert renders the site."""
from __future__ import annotations
import argparse, html, json, os, re, shutil, time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = ('<p class="widget-note"><em>An interactive widget: run this notebook in JupyterLab to use it '
               '(a static page cannot run Python).</em></p>')

@dataclass(frozen=True)
class Page:
    "One page of the site: its notebook, where its HTML goes (relative to the site root), its section."
    src:Path # The notebook rendered (processed or executed)
    href:str # e.g. 'widgets.html' or 'lessons/01_first_classifier.html'
    section:str # 'Package' or 'Lessons'
    room:str='' # The subpackage a package notebook exports into ('data' for `data.loaders`); '' for lessons and index

def room_of(nb:Path) -> str:
    "The subpackage of `cnn_course` a package notebook exports into, from its `#| default_exp` ('' if none)."
    m = re.search(r'#\| default_exp ([\w.]+)', nb.read_text()) if nb.exists() else None
    return m.group(1).split('.')[0] if m and '.' in m.group(1) else ''

def page_href(nb:Path, # A notebook of nbs/ or lessons/
              section:str, # 'Package' or 'Lessons'
             ) -> str:
    "nbdev's page name for a package notebook (`13_widgets` -> `widgets.html`); lessons keep theirs."
    if section == 'Lessons': return f'lessons/{nb.stem}.html'
    return re.sub(r'^\d+[a-z]?_', '', nb.stem) + '.html'

def select(paths:list, # Notebooks
           only:list|None, # Prefixes or stems to keep (None: all)
          ) -> list[Path]:
    "The notebooks whose name starts with one of `only` (all of them for None), sorted."
    return sorted(p for p in paths if only is None or any(p.stem.startswith(o) for o in only))

@contextmanager
def _env(**kw):
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try: yield
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v

def execute_lessons(build:Path, # Folder for the executed copies (never the committed lessons)
                    only:list|None=None, # Lesson prefixes ('01', '03'); None: every lesson
                    size:str='small', # 'small' (a few photos per class) or 'full' (every photo)
                    timeout:int=900, # Seconds per lesson
                    root:Path=ROOT, # The repository
                    reuse:bool=False, # Keep a lesson already executed in `build` since its notebook last changed
                    executed:Path|None=None, # Notebooks bench/lessons.py executed (build/executed): shown, not rerun
                   ) -> list[Path]:
    "Copy the lessons into `build` and run the chosen ones there, top to bottom; the executed notebooks."
    from cnn_course.course.lessons import execute_notebook, SIZE_ENV
    build.mkdir(parents=True, exist_ok=True)
    chosen, done = select([p for p in (root/'lessons').glob('[0-9]*.ipynb')], only), []
    for f in (root/'lessons').iterdir():  # the project notebook and data files the lessons open by relative path
        if f.is_file() and f not in chosen: shutil.copy2(f, build/f.name)
    for nb in chosen:
        if executed is not None and (why := saved_run(nb, Path(executed)/nb.name)) is None:
            shutil.copy2(Path(executed)/nb.name, build/nb.name); done.append(build/nb.name)
            when = executed_meta(build/nb.name).get('executed')
            print(f'{nb.name}: the full run bench/lessons.py saved ({when})', flush=True)
            continue
        if executed is not None: print(f'{nb.name}: executing it ({why})', flush=True)
        if reuse and (build/nb.name).exists() and (build/nb.name).stat().st_mtime > nb.stat().st_mtime:
            done.append(build/nb.name); continue
        shutil.copy2(nb, build/nb.name); t = time.time()
        with _env(**{SIZE_ENV: size}): done.append(execute_notebook(build/nb.name, build/nb.name, timeout=timeout))
        print(f'executed {nb.name} ({size}) in {time.time() - t:.0f} s', flush=True)
    return done

def executed_meta(nb:Path) -> dict:
    "What `bench/lessons.py` recorded in an executed notebook: source, source_sha256, size, executed (or {})."
    return json.loads(Path(nb).read_text()).get('metadata', {}).get('cnn_course', {})

def source_digest(nb:Path) -> str:
    "`bench/lessons.py`'s digest of a notebook's cells (one definition, there)."
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_lessons', ROOT/'bench'/'lessons.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m.source_digest(nb)

def saved_run(lesson:Path, # The committed lesson
              copy:Path, # Its executed copy saved by `bench/lessons.py`
             ) -> str|None:
    "None when `copy` is a full run of `lesson` as it is now; else why it cannot be shown."
    if not copy.is_file(): return f'no saved run at {copy}'
    meta = executed_meta(copy)
    if meta.get('source_sha256') != source_digest(lesson): return 'the lesson changed since its saved run'
    if meta.get('size') != 'full': return f"its saved run is {meta.get('size') or 'of unknown size'}, not full"

def process_package(only:list|None=None, # Package notebook prefixes ('13_widgets'); None: all of nbs/
                    root:Path=ROOT, # The repository
                   ) -> list[Path]:
    "nbdev's processed notebooks (show_doc signatures, doc links, directives applied), in `_proc/`."
    from nbdev.serve import proc_nbs
    nbs = select([*(root/'nbs').glob('*.ipynb')], only)
    def proc(group):
        names = '^(' + '|'.join(re.escape(p.name) for p in group) + ')$'
        return Path(proc_nbs(str(root/'nbs'), file_re=names, n_workers=min(2, os.cpu_count() or 1)))
    try: cache = proc(nbs); return [cache/p.name for p in nbs]
    except Exception as e:
        print(f'nbdev could not process every notebook ({str(e).splitlines()[0]}): one at a time', flush=True)
    return [_proc_one(proc, p) for p in nbs]

def _proc_one(proc, nb:Path) -> Path:
    "`nb` processed by nbdev, or as it is (prose and code, no signatures) when nbdev fails on it (it runs imports)."
    try: return proc([nb])/nb.name
    except Exception as e:
        print(f'warning: {nb.name} shown unprocessed: nbdev failed on it: {str(e).splitlines()[0]}', flush=True)
        return nb

def _front_matter(nb:dict) -> dict:
    "Title and description from nbdev's front-matter raw cell (or the first `# ` heading)."
    for c in nb['cells']:
        s = ''.join(c['source'])
        if c['cell_type'] == 'raw' and s.startswith('---'):
            import yaml
            return yaml.safe_load(s.strip().strip('-')) or {}
        if c['cell_type'] == 'markdown' and (m := re.match(r'# (.+)', s)):
            d = re.search(r'^> (.+)', s, re.M)
            return {'title': m.group(1), 'description': d.group(1) if d else '', 'heading': True}
    return {}

def _links(md:str, # Markdown
           prefix:str, # From the page to the site root: '' or '../'
           known:set|None=None, # The site's pages; nbdev links to others (a partial build) become plain text
          ) -> str:
    "Markdown links made to work on the site: nbdev's root links relative, `.ipynb` links to their page."
    def root(m):
        label, page, anchor = m.groups()
        return label[1:] if known is not None and page not in known else f'{label}]({prefix}{page}{anchor or ""})'
    md = re.sub(r'(\[[^\]]*)\]\(/([\w.-]+\.html)(#[^)\s]*)?\)', root, md)
    md = re.sub(r'\]\((?:\.\./)?nbs/(\d+[a-z]?_)?([\w-]+)\.ipynb', lambda m: f']({prefix}{m.group(2)}.html', md)
    lesson = r'\]\((?:\.\./)?(?:lessons/)?(\d\d_[\w-]+)\.ipynb'
    return re.sub(lesson, lambda m: f']({prefix}lessons/{m.group(1)}.html', md)

def _only_warnings(o:dict) -> bool:
    "A stderr stream that holds only Python warnings (library deprecations the learner cannot act on)."
    text = ''.join(o.get('text', '')) if o.get('name') == 'stderr' else ''
    warning = lambda l: re.search(r'\w+Warning: ', l) or l.startswith(' ') or not l.strip()
    return bool(text) and all(warning(l) for l in text.splitlines())

CELL_KEYS = {'code': {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count'},
             'markdown': {'cell_type', 'id', 'metadata', 'source', 'attachments'}}

def prepare(nb:dict, # A notebook (processed or executed), changed in place
            prefix:str, # Path from the page to the site root ('' or '../')
            known:set|None=None, # The site's pages (see `_links`)
           ) -> dict:
    "The notebook as a page shows it: heading from the front matter, no directives, widgets noted, links fixed."
    fm, cells = _front_matter(nb), []
    if fm.get('title') and not fm.get('heading'):
        title = f"# {fm['title']}\n\n> {fm.get('description', '')}"
        cells.append({'cell_type': 'markdown', 'id': 'title', 'metadata': {}, 'source': title})
    for c in nb['cells']:
        s = ''.join(c['source'])
        if c['cell_type'] == 'raw' or c['cell_type'] == 'code' and re.search(r'^#\|\s*hide\s*$', s, re.M): continue
        if c['cell_type'] == 'markdown': c['source'] = _links(s, prefix, known)
        if c['cell_type'] == 'code':
            # show_doc: output only
            if re.search(r'^#\|\s*echo:\s*false', s, re.M): c['metadata']['tags'] = ['remove_input']
            c['source'] = '\n'.join(l for l in s.splitlines() if not l.startswith('#|'))
            for o in c.get('outputs', []):
                if WIDGET in o.get('data', {}): o['data'] = {'text/html': WIDGET_NOTE}
                d = o.get('data', {})
                if 'text/markdown' in d: d['text/markdown'] = _links(''.join(d['text/markdown']), prefix, known)
            c['outputs'] = [o for o in c.get('outputs', []) if o.get('data', True) and not _only_warnings(o)]
        cells.append(c)
    # execnb's timings break nbformat; nbdev adds its own keys
    for c in cells: c['metadata'] = {k: v for k, v in c['metadata'].items() if k == 'tags'}
    nb['cells'] = [{k: v for k, v in c.items() if k in CELL_KEYS[c['cell_type']]} for c in cells]
    return nb

def sidebar(pages:list, # Every `Page` of the site
            current:Page, # The page the sidebar is drawn on
            titles:dict, # href -> title
           ) -> str:
    "HTML of a sidebar linking every page, by section, relative to `current`."
    up = '../' * current.href.count('/')
    out = [f'<nav class="course-nav"><p><a href="{up}index.html"><b>cnn_course</b></a></p>']
    for sec in ('Lessons', 'Package'):
        here = lambda p: ' class=here' if p == current else ''
        link = lambda p: f'<a href="{up}{p.href}"{here(p)}>{html.escape(titles[p.href])}</a>'
        shown = [p for p in pages if p.section == sec and p.href != 'index.html']
        rooms = list(dict.fromkeys(p.room for p in shown))  # in page order, which is the notebooks' (lowest room first)
        group = lambda r: ''.join(f'<li>{link(p)}</li>' for p in shown if p.room == r)
        items = ''.join(f'<li class=room>{html.escape(r)}/<ul>{group(r)}</ul></li>' if r else group(r) for r in rooms)
        out.append(f'<p>{sec}</p><ul>{items}</ul>')
    return ''.join(out) + '</nav>'

STYLE = ('<link rel="icon" href="data:,"><style>'
         '.course-nav{position:fixed;top:0;left:0;width:230px;height:100%;overflow:auto;padding:8px 12px;'
         'background:#f6f6f6;border-right:1px solid #ddd;font:13px sans-serif}'
         '.course-nav ul{padding-left:14px;margin:0}'
         '.course-nav .here{font-weight:bold}.course-nav .room{color:#555;margin-top:4px}body{margin-left:260px!important}</style>')

def render_nbconvert(nb:dict, # A prepared notebook
                     nav:str, # The sidebar's HTML
                     title:str, # The page title
                    ) -> str:
    "The page's HTML: nbconvert's lab template, images embedded, the sidebar added."
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    x = HTMLExporter(template_name='lab')
    x.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    body, _ = x.from_notebook_node(nbformat.reads(json.dumps(nb), as_version=4))  # reads joins execnb's line lists
    body = re.sub(r'<title>.*?</title>', lambda m: f'<title>{html.escape(title)}</title>', body, count=1, flags=re.S)
    return re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav, body.replace('</head>', STYLE + '</head>', 1), count=1)

def titles_of(pages:list) -> dict:
    "href -> page title (the notebook's front matter or first heading; else its file name)."
    return {p.href: _front_matter(json.loads(p.src.read_text())).get('title') or p.src.stem for p in pages}

def write_site(pages:list, # `Page`s, 'index.html' among them
               out:Path, # The site folder (replaced)
              ) -> list[Path]:
    "Render every page to `out` with nbconvert; the HTML files written."
    shutil.rmtree(out, ignore_errors=True)
    titles, written = titles_of(pages), []
    for p in pages:
        nb = prepare(json.loads(p.src.read_text()), '../' * p.href.count('/'), {q.href for q in pages})
        dest = out/p.href; dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(render_nbconvert(nb, sidebar(pages, p, titles), titles[p.href]))
        written.append(dest)
    return written

def quarto_available() -> bool: return shutil.which('quarto') is not None

def quarto_config(root:Path=ROOT):
    "nbdev's Quarto configuration in nbs/ (`_quarto.yml`, `nbdev.yml`, `sidebar.yml`), as `nbdev-docs` writes it."
    from nbdev.quarto import refresh_quarto_yml
    os.chdir(root)  # nbdev finds its settings from the working folder
    refresh_quarto_yml(); (root/'nbs'/'sidebar.yml').write_text(quarto_sidebar(sorted((root/'nbs').glob('*.ipynb'))))
    css = root/'nbs'/'styles.css'
    if not css.exists(): css.write_text('.cell-output pre { margin-left: 0.8rem; }\n')

def quarto_sidebar(nbs:list, # The package notebooks, in order
                  ) -> str:
    "Quarto's `sidebar.yml`: nbdev's list of pages, grouped in sections by subpackage (`core`, `data`, ...)."
    out = ['website:', '  sidebar:', '    contents:']
    rooms = list(dict.fromkeys(room_of(nb) for nb in nbs))
    for r in rooms:
        names = [nb.name for nb in nbs if room_of(nb) == r]
        if not r: out += [f'      - {n}' for n in names]
        else: out += [f'      - section: {r}', '        contents:'] + [f'          - {n}' for n in names]
    return '\n'.join(out) + '\n'

def write_site_quarto(cache:Path, # nbdev's `_proc` folder (the processed package notebooks and `_quarto.yml`)
                      lessons:list, # Executed lesson notebooks
                      out:Path, # The site folder
                     ) -> Path:
    "Render with Quarto, as `nbdev-docs` does, the executed lessons copied in as `lessons/` (not in the sidebar)."
    from nbdev.quarto_render import render_quarto
    (cache/'lessons').mkdir(exist_ok=True)
    for nb in lessons: shutil.copy2(nb, cache/'lessons'/nb.name)
    render_quarto(cache, out)
    return out

def build_site(out:Path=ROOT/'_docs', # The site folder (replaced)
               build:Path=ROOT/'build'/'site', # Where the lessons are executed
               lessons:list|None=None, # Lesson prefixes; None: all
               package:list|None=None, # Package notebook prefixes; None: all
               size:str='small', # Lesson size: 'small' or 'full'
               renderer:str='auto', # 'auto' (Quarto when installed), 'quarto' or 'nbconvert'
               root:Path=ROOT, # The repository
               reuse:bool=False, # Keep lessons already executed in `build` (see `execute_lessons`)
               executed:Path|None=None, # Notebooks `bench/lessons.py` executed, shown instead of running them
              ) -> Path:
    "Execute the lessons, process the package notebooks, render both; the site's index page."
    if renderer == 'auto': renderer = 'quarto' if quarto_available() else 'nbconvert'
    if renderer == 'quarto' and not quarto_available():
        raise SystemExit('Quarto is not on PATH: use --renderer nbconvert.')
    if renderer == 'quarto': quarto_config(root)
    executed = execute_lessons(Path(build)/'lessons', lessons, size, root=root, reuse=reuse, executed=executed)
    package_nbs = process_package(package if package is None or 'index' in package else [*package, 'index'], root=root)
    if renderer == 'quarto': return write_site_quarto(package_nbs[0].parent, executed, Path(out))/'index.html'
    sections = (('Package', package_nbs), ('Lessons', executed))
    pages = [Page(p, page_href(p, sec), sec, room_of(root/'nbs'/p.name) if sec == 'Package' else '') for sec, nbs in sections for p in nbs]
    write_site(pages, Path(out))
    return Path(out)/'index.html'

def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument('--out', type=Path, default=ROOT/'_docs', help='site folder (replaced)')
    a.add_argument('--build', type=Path, default=ROOT/'build'/'site', help='where the lessons are executed')
    a.add_argument('--lessons', nargs='*', help='lesson prefixes, e.g. 01 03 (default: all)')
    a.add_argument('--package', nargs='*', help='package notebook prefixes, e.g. 13_widgets (default: all)')
    a.add_argument('--size', choices=('small', 'full'), default='small', help='lesson size (full: every photo)')
    a.add_argument('--renderer', choices=('auto', 'quarto', 'nbconvert'), default='auto')
    a.add_argument('--reuse', action='store_true',
                   help='keep lessons already executed in --build since they last changed')
    a.add_argument('--executed', type=Path, help="the lessons bench/lessons.py executed (build/executed): shown, "
                   "not run again; a lesson changed since is executed at --size")
    o = a.parse_args(argv)
    t = time.time()
    index = build_site(o.out, o.build, o.lessons, o.package, o.size, o.renderer, reuse=o.reuse, executed=o.executed)
    print(f'site built in {time.time() - t:.0f} s: {index}  (serve: python -m http.server -d {o.out})')

if __name__ == '__main__': main()
