"""Render the measured numbers of lessons/README.md from bench/results/*.json, so that the text cannot drift.

    .venv/bin/python tools/render_numbers.py            # rewrite the marked regions of lessons/README.md
    .venv/bin/python tools/render_numbers.py --check    # exit 1, naming each region that differs from its rendering
    .venv/bin/python tools/render_numbers.py --drift    # measured numbers in the lessons and README that no JSON holds

A region is the text between `<!-- measured:NAME -->` and `<!-- /measured:NAME -->`; `RENDERERS` says what fills each
one. Prose outside the regions quotes no measured number: `tests/test_numbers.py` finds every number with a unit or a
percent sign in the lessons' Markdown and the README and fails when no bench JSON holds it (`drift`).
Exercise settings (the thresholds) are not measurements: they are read from the exercise registry (`threshold_rows`)."""
from __future__ import annotations
import argparse, functools, importlib.util, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'bench'/'results'
README = ROOT/'lessons'/'README.md'
REGION = re.compile(r'(<!-- measured:([\w-]+) -->\n)(.*?)(<!-- /measured:\2 -->)', re.S)

def pct(x, digits:int=1) -> str: return '-' if x is None else f'{100*x:.{digits}f}%'
def rel(p:Path) -> str:
    p = Path(p).resolve()
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p)

# ---- the exercise settings (not measurements) ----
def threshold_rows() -> list[dict]:
    """Every setting a saved run is graded against, from the exercise registry: id, run folder, what is measured,
    threshold, why, and for a choice exercise what the learner chooses.

    The one place that reads the registry (`cnn_course.course.graded_runs.GOALS`, or the older
    `cnn_course.course.lesson_exercises.THRESHOLDS` of tuples): adapt this function when the registry changes shape."""
    try: from cnn_course.course.graded_runs import GOALS as goals
    except ImportError: from cnn_course.course.lesson_exercises import THRESHOLDS as goals
    rows = []
    for i, g in goals.items():
        if hasattr(g, 'run'): run, what, t, why, setting = g.run, g.measure, g.threshold, g.why, g.setting
        else: (run, what, t, why), setting = g, ''
        rows.append(dict(id=i, run=run, what=what, value=t, why=why, setting=setting))
    return sorted(rows, key=lambda r: tuple(int(x) for x in r['id'].split('.')))

WHAT = {'accuracy': 'test accuracy', 'top5': 'top-5 test accuracy', 'balanced': 'mean per-class test accuracy'}
FEEDBACK = {'accuracy': 'test accuracy', 'top5': 'top-5 accuracy', 'balanced': 'mean per-class accuracy'}
def what_name(what:str) -> str: return WHAT.get(what) or f"test accuracy of `{what.split(':', 1)[-1]}`"
def feedback_name(what:str) -> str: return FEEDBACK.get(what) or f"accuracy of '{what.split(':', 1)[-1]}'"

# ---- the measurements ----
@functools.lru_cache(None)
def git_date(path:Path) -> str|None:
    "Day of the last commit that changed `path` (None outside git or when it was never committed)."
    cmd = ['git', 'log', '-1', '--format=%cs', '--', str(path)]
    try: r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    except OSError: return None
    return r.stdout.strip() or None

def load_results(results:Path=RESULTS) -> dict:
    "Every bench JSON, by file name."
    return {p.name: json.loads(p.read_text()) for p in sorted(Path(results).glob('*.json'))}

def lesson_runs(results:Path=RESULTS) -> list[dict]:
    """The newest measurement of each lesson over `bench/results/lessons*.json` (a rerun of some lessons, e.g.
    `lessons_03.json`, replaces theirs), in lesson order; each with `file` and `date` added.

    A date is the lesson's own `date`, else its file's `date`/`started`, else the day the file was last committed.
    Between two files of the same date the later name wins (`lessons_03.json` after `lessons.json`)."""
    best = {}
    for f in sorted(Path(results).glob('lessons*.json')):
        d = json.loads(f.read_text())
        for r in d.get('lessons', []):
            date = str(r.get('date') or d.get('date') or d.get('started') or git_date(f) or 'undated')[:10]
            r = dict(r, file=f.name, date=date, cache=d.get('cache'), limit_s=d.get('limit_s'))
            old = best.get(r['lesson'])
            if old is None or (date, f.name) >= (old['date'], old['file']): best[r['lesson']] = r
    return [best[k] for k in sorted(best)]

def _bench_lessons():
    spec = importlib.util.spec_from_file_location('bench_lessons', ROOT/'bench'/'lessons.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def measured_part(feedback:str) -> str:
    "What a threshold check measured, without the registry's threshold and its reasons ('test accuracy ... on N ...')."
    return feedback.split('; the threshold is')[0].split(': train longer')[0].rstrip('.')

# ---- the regions ----
def render_lessons(old:str, results:Path=RESULTS) -> str:
    """The lessons table: its prose columns are kept as written; the last two (seconds of the full run, and its date and
    JSON) are rendered. A measured lesson missing from the table gets a row; a lesson not measured says so."""
    runs = {r['lesson']: r for r in lesson_runs(results)}
    lines, seen = old.rstrip('\n').split('\n'), set()
    out = []
    for l in lines:
        cells = l.split(' | ')
        m = re.search(r'`(\d\d\w*|_project_\w+)`', l)
        if not l.startswith('|') or not m or len(cells) < 3:
            out.append(l); continue
        stem = m.group(1); seen.add(stem); r = runs.get(stem)
        secs = f"{r['seconds']:.0f} s{'' if r['ok'] else ' (failed)'}" if r else 'not measured'
        when = f"{r['date']}, `{r['file']}`" if r else '-'
        out.append(' | '.join(cells[:-2] + [secs, when + ' |']))
    for stem, r in runs.items():
        if stem in seen: continue
        out.append(f"| {stem[:2]} | `{stem}` | | | {r['seconds']:.0f} s | {r['date']}, `{r['file']}` |")
    return '\n'.join(out) + '\n'

def render_totals(old:str, results:Path=RESULTS) -> str:
    "One line per lessons JSON: what it ran, in how many seconds, how loaded the machine was, whether all passed."
    out = []
    for f in sorted(Path(results).glob('lessons*.json')):
        d = json.loads(f.read_text()); ls = d.get('lessons', [])
        load = d.get('machine', {}).get('loadavg_after')
        which = ', '.join(r['lesson'][:2] for r in ls)
        out.append(f"- `bench/results/{f.name}`: {len(ls)} lesson{'s' * (len(ls) != 1)} ({which}), "
                   f"{d.get('total_s')} s in all, {d.get('cache')} cache, {d.get('machine', {}).get('cpus')} cores, "
                   f"load average after {load[0]:.1f}; every lesson ran without error within {d.get('limit_s')} s: "
                   f"{'yes' if d.get('all_ok') else 'no'}")
    return '\n'.join(out) + '\n'

def project_rows(results:Path=RESULTS) -> list[dict]:
    "bench/lessons.py's projects table, over the newest measurement of each lesson (see `lesson_runs`)."
    bl, runs = _bench_lessons(), lesson_runs(results)
    reported = {}
    for f in sorted(Path(results).glob('lessons*.json')):
        for p in json.loads(f.read_text()).get('projects', []): reported.setdefault(p['project'], p['reported'])
    return [dict(project=project, datasets=names, reported=reported.get(project, []),
                 ours=[dict(lesson=r['lesson'][:2], run=k, **v) for r in runs for k, v in r['runs'].items()
                       if v['dataset'] in names and v['n_test']]) for project, names in bl.PROJECTS.items()]

def render_projects(old:str, results:Path=RESULTS) -> str:
    return _bench_lessons().projects_md(project_rows(results)) + '\n'

def render_accuracies(old:str, results:Path=RESULTS) -> str:
    "Every run each lesson saved in its newest full run: dataset, backbone, accuracy."
    out = ['| lesson | saved run | photos | backbone | accuracy | measured |', '|---|---|---|---|--:|---|']
    for r in lesson_runs(results):
        for k, v in r['runs'].items():
            n = f" of {v['n_test']} test photos" if v['n_test'] else ' (validation: no test split saved)'
            acc = pct(v['accuracy']) + n
            arch = (v['arch'] or '-').replace('tf_efficientnet_', '')
            out.append(f"| {r['lesson'][:2]} | `{k}` | {v['dataset']} | {arch} | "
                       f"{acc} | {r['date']}, `{r['file']}` |")
    return '\n'.join(out) + '\n'

def goal_measured(goal:dict, lesson:dict|None) -> tuple[str, float|None]:
    """What the newest full run of a lesson measured on the run `goal` grades: (text, value), or ('not measured', None).
    A test accuracy is read from the run's own numbers; another measure from the lesson's checks of the same measure."""
    if lesson is None: return 'not measured', None
    run = lesson['runs'].get(goal['run'].removeprefix('runs/'))
    if goal['what'] == 'accuracy' and run and run['n_test']:
        return f"test accuracy {pct(run['accuracy'])} on {run['n_test']} public test images", run['accuracy']
    for fb in lesson.get('thresholds', {}).values():
        got = measured_part(fb['feedback'])
        if run and got.startswith(feedback_name(goal['what']) + ' '):
            return got, float(re.search(r'(\d+(?:\.\d+)?)%', got)[1]) / 100
    return 'not measured', None

def render_thresholds(old:str, results:Path=RESULTS) -> str:
    "Each graded run's threshold from the exercise registry, and what the newest full run of its lesson measured."
    runs = {r['lesson'][:2]: r for r in lesson_runs(results)}
    out = ['| exercise | the learner chooses | saved run | measured | threshold (registry) '
           '| newest full run (public test split) |',
           '|---|---|---|---|--:|---|']
    for g in threshold_rows():
        lesson = runs.get(f"{int(g['id'].split('.')[0]):02d}")
        text, v = goal_measured(g, lesson)
        if v is not None:
            text += f": {'reaches' if v >= g['value'] else '**below**'} it ({lesson['date']}, `{lesson['file']}`)"
        out.append(f"| {g['id']} | {g['setting'] or '-'} | `{g['run']}` | {what_name(g['what'])} "
                   f"| ≥ {pct(g['value'], 0)} | {text} |")
    return '\n'.join(out) + '\n'

def render_spread(old:str, results:Path=RESULTS) -> str:
    "The same recipe trained with three seeds (bench/time_to_accuracy.py): the spread of one run to the next."
    f = Path(results)/'time_to_accuracy.json'
    if not f.is_file(): return 'not measured: run `bench/time_to_accuracy.py`\n'
    d = json.loads(f.read_text())
    out = [f"From `bench/results/{f.name}` ({str(d.get('started', ''))[:10]}, {d.get('arch')}):", '',
           '| photos | seeds | head only: test accuracy per seed |', '|---|---|---|']
    out += [f"| {r['dataset']} | {', '.join(map(str, r['seeds']))} | {', '.join(map(pct, r['head_only_per_seed']))} |"
            for r in d['table'] if r.get('head_only_per_seed')]
    return '\n'.join(out) + '\n'

def render_exercises(old:str, results:Path=RESULTS) -> str:
    "Every exercise of the registry (`cnn_course.course.exercises.EXERCISES`): id, kind, points, task."
    from cnn_course.course.exercises import EXERCISES
    import cnn_course.course.lesson_exercises  # noqa: F401  (registers the exercises)
    key = lambda i: tuple(int(x) if x.isdigit() else 0 for x in i.split('.'))
    out = ['| exercise | kind | points | the task |', '|---|---|--:|---|']
    out += [f"| {e.id} | {e.kind} | {e.points:g} | {' '.join(str(e.task).split()).replace('|', '/')} |"
            for e in sorted(EXERCISES.values(), key=lambda e: key(e.id)) if e.points]
    return '\n'.join(out) + '\n'

RENDERERS = dict(lessons=render_lessons, totals=render_totals, projects=render_projects, accuracies=render_accuracies,
                 thresholds=render_thresholds, spread=render_spread,
                 exercises=render_exercises)

def render(text:str, results:Path=RESULTS) -> tuple[str, list[str]]:
    "`text` with every region rendered; the names of the regions that changed."
    changed = []
    def sub(m):
        start, name, old, end = m.groups()
        if name not in RENDERERS: raise SystemExit(f'unknown region measured:{name} (known: {", ".join(RENDERERS)})')
        new = RENDERERS[name](old, results)
        if new != old: changed.append(name)
        return start + new + end
    return REGION.sub(sub, text), changed

# ---- numbers that drift ----
UNIT = r'(?:\s?%|×|x(?![\w×])|\s?(?:s|sec|seconds?|min|minutes?|ms|img/s|images/s|photos/s|points?|pts?)(?![\w/]))'
NUMBER = re.compile(rf'(?<![\w.\-/#])(?:(?P<lo>\d+(?:\.\d+)?)\s?[–-]\s?)?[+±]?(?P<n>\d+(?:\.\d+)?)(?P<unit>{UNIT})'
                    rf'|(?<![\w.])(?P<frac>0\.\d{{2,}})(?![\d.])')
DIMENSION = re.compile(r'\d\s?[×x]\s?\d')  # 7×7, 224×224, 1×1: a shape, not a ratio

def find_numbers(text:str) -> list[dict]:
    "Numbers with a unit or a percent sign (91.3%, 0.913, 104 s, 2.6×, 42 img/s, 7 points; both ends of 72–85%)."
    out = []
    for m in NUMBER.finditer(text):
        ctx, before = text[max(0, m.start() - 80):m.end() + 80], text[max(0, m.start() - 80):m.start()]
        if m['frac']:
            out.append(dict(shown=m['frac'], value=float(m['frac']), digits=len(m['frac']) - 2, kind='fraction',
                            ctx=ctx, before=before))
            continue
        if DIMENSION.match(text, m.start('n')) or DIMENSION.search(text[m.start():m.end() + 2]): continue
        u = m['unit'].strip()
        kind = ('percent' if u == '%' else 'ratio' if u in ('×', 'x') else 'points' if u.startswith('p')
                else 'rate' if '/' in u else 'minutes' if u.startswith('min') else 'ms' if u == 'ms' else 'seconds')
        for n in ([m['lo']] if m['lo'] and kind in ('percent', 'points') else []) + [m['n']]:
            digits = len(n.split('.')[1]) if '.' in n else 0
            out.append(dict(shown=n + (u if u in '%×x' else ' ' + u), value=float(n), digits=digits, kind=kind,
                            ctx=ctx, before=before))
    return out

def _leaves(x, key=''):
    if isinstance(x, dict):
        for k, v in x.items(): yield from _leaves(v, str(k))
    elif isinstance(x, list):
        for v in x: yield from _leaves(v, key)
    else: yield key, x

@functools.lru_cache(None)
def json_values(results:Path=RESULTS) -> tuple[tuple, tuple]:
    """(numbers, seconds): every number in a bench JSON, the numeric leaves and the numbers written in its texts
    (a check's feedback), less the registry's own reasons that a feedback repeats (hand-typed, not measured); and those
    of them that are seconds (a key ending in `s`, `_s` or `seconds`, or a leaf under `seconds`)."""
    whys = [t['why'] for t in threshold_rows()]
    nums, secs = set(), set()
    for d in load_results(results).values():
        for key, v in _leaves(d):
            if isinstance(v, bool) or v is None: continue
            if isinstance(v, (int, float)):
                nums.add(float(v))
                if re.search(r'(^|_)(s|seconds|features|frozen|top|maps)$', key): secs.add(float(v))
            elif isinstance(v, str):
                for w in whys: v = v.replace(w, '')
                nums.update(float(x) / (100 if pc else 1) for x, pc in re.findall(r'(?<![\w.])(\d+(?:\.\d+)?)(%?)', v))
                secs.update(float(x) for x in re.findall(r'(\d+(?:\.\d+)?) ?s\b', v))
    return tuple(sorted(nums)), tuple(sorted(secs))

def _rounds_to(v:float, shown:float, digits:int) -> bool: return abs(v - shown) <= .5 * 10 ** -digits + 1e-9

def in_json(n:dict, results:Path=RESULTS) -> bool:
    "Whether number `n` (from `find_numbers`) is a bench JSON value, rounded as shown (a percentage as a fraction)."
    nums, secs = json_values(results)
    v, d, k = n['value'], n['digits'], n['kind']
    if k in ('percent', 'points'): return any(_rounds_to(100 * x, v, d) for x in nums if 0 <= x <= 1)
    if k == 'fraction': return any(_rounds_to(x, v, d) or _rounds_to(x / 100, v, d) for x in nums)
    if k == 'seconds': return any(_rounds_to(x, v, d) for x in secs)
    if k == 'minutes': return any(_rounds_to(x / 60, v, d) for x in secs)
    if k == 'ms': return any(_rounds_to(1000 * x, v, d) for x in secs)
    return any(_rounds_to(x, v, d) for x in nums)  # a ratio or a rate stored as such

# Numbers that are not measurements. Each is recognised by what it is, with the reason it may stand in the text.
def _registry_points() -> set:
    from cnn_course.course.exercises import EXERCISES
    import cnn_course.course.lesson_exercises  # noqa: F401  (registers the exercises)
    return {float(e.points) for e in EXERCISES.values()}

@functools.lru_cache(None)
def _reported() -> set:
    "Accuracies the original projects reported (cnn_course.data.registry), the numbers in their notes as fractions."
    from cnn_course.data.registry import DATASETS
    out = set()
    for s in DATASETS.values():
        for r in s.reported:
            out.add(float(r.accuracy))
            out.update(float(x) / (100 if pc else 1) for x, pc in re.findall(r'(\d+(?:\.\d+)?)(%?)', r.note))
        for part in re.findall(r'(\d+)-(\d+)%', s.notes): out.update(float(x) / 100 for x in part)
    return out

ALLOWED = [  # (reason, test on a found number)
    ('an exercise threshold from the exercise registry (`threshold_rows`), not a measurement',
     lambda n: n['kind'] == 'percent' and n['digits'] == 0
     and any(_rounds_to(100 * t['value'], n['value'], 0) for t in threshold_rows())
     and re.search(r'threshold|rubric|reach|≥|>=|at least|asks? for|bar\b|pass', n['ctx'], re.I)),
    ("an exercise's points from the exercise registry (`EXERCISES[id].points`)",
     lambda n: n['kind'] == 'points' and n['value'] in _registry_points() and re.search(r'graded:\s*$', n['before'])),
    ("an accuracy the original project reported (`cnn_course.data.registry`'s `reported`), not the course's",
     lambda n: n['kind'] == 'percent' and any(_rounds_to(100 * x, n['value'], n['digits']) for x in _reported())),
    ('the confidence level of an interval (95%), a convention',
     lambda n: n['kind'] == 'percent' and n['value'] == 95
     and re.search(r'95% (\(Wilson\) )?(confidence )?interval|95% of the time', n['ctx'])),
    ('the goal of a lesson or of the course (seconds a lesson may take), a setting of bench/lessons.py (`--limit`)',
     lambda n: n['kind'] in ('seconds', 'minutes') and re.search(r'goal|at most|within|limit', n['ctx'], re.I)
     and (n['value'] == 300 or n['kind'] == 'minutes' and n['value'] == 5)),
]

def allowed(n:dict) -> str|None:
    "The reason number `n` is not a measurement, or None."
    return next((why for why, ok in ALLOWED if ok(n)), None)

def markdown_cells(path:Path) -> list[tuple[str, str]]:
    "(where, text) of each Markdown cell of a notebook ('cell 3'), or of a Markdown file ('line 12' per line)."
    path = Path(path)
    if path.suffix == '.md': return [(f'line {i}', l) for i, l in enumerate(path.read_text().splitlines(), 1)]
    nb = json.loads(path.read_text())
    return [(f'cell {i}', ''.join(c['source'])) for i, c in enumerate(nb['cells']) if c['cell_type'] == 'markdown']

def drift(paths:list, results:Path=RESULTS) -> list[dict]:
    "Every measured number in `paths`' Markdown that no bench JSON holds and no rule of `ALLOWED` explains."
    out = []
    for p in paths:
        for where, text in markdown_cells(p):
            for n in find_numbers(text):
                if not in_json(n, results) and not allowed(n):
                    out.append(dict(file=rel(p), where=where, number=n['shown'], ctx=' '.join(n['ctx'].split())))
    return out

def lesson_files(root:Path=ROOT) -> list[Path]:
    return sorted([*(root/'lessons').glob('[0-9]*.ipynb'), *(root/'lessons').glob('_project_*.ipynb')])

def main(argv=None):
    a = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument('--check', action='store_true', help='change nothing; exit 1 if a region differs from its rendering')
    a.add_argument('--drift', action='store_true', help='list measured numbers no bench JSON holds')
    a.add_argument('--file', type=Path, default=README)
    o = a.parse_args(argv)
    if o.drift:
        found = drift([*lesson_files(), o.file])
        for d in found: print(f"{d['file']} {d['where']}: {d['number']}  …{d['ctx']}…")
        sys.exit(1 if found else 0)
    text = o.file.read_text()
    new, changed = render(text)
    missing = [k for k in RENDERERS if f'<!-- measured:{k} -->' not in text]
    if missing: print(f'note: {rel(o.file)} has no region for {", ".join(missing)}', file=sys.stderr)
    if o.check:
        if changed:
            print(f'{rel(o.file)}: regions out of date with bench/results: {", ".join(changed)} '
                  f'(run: python tools/render_numbers.py)', file=sys.stderr)
            sys.exit(1)
        print(f'{rel(o.file)}: every region matches bench/results')
        return
    if new != text: o.file.write_text(new)
    print(f'{rel(o.file)}: rendered {", ".join(changed) or "nothing (already up to date)"}')

if __name__ == '__main__': main()
