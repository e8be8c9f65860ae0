"""Seconds per lesson and the learner's accuracy beside each original project's, on the real photos (goal: <= 300 s each on 2 CPU cores).

Every lesson runs in its own process through `nbdev-test` (which also makes each exercise's self-check strict, so the
solutions are checked on the full data), with CNN_COURSE_LESSON_SIZE=full. Every run a lesson saves (model.json) is
read back: its dataset says which original project it stands for, and the registry gives what that project reported.
Each executed notebook is saved, with its outputs, to --executed (default build/executed; the committed lessons are
never written to): `tools/build_site.py --executed build/executed` shows them, so the full run is paid once.
Prints one JSON object (with `projects_md`, the Markdown table tools/render_numbers.py renders into lessons/README.md):
  python bench/lessons.py [--data ../shared/data] [--only 01 03] [--limit 300] [--executed build/executed] [--out FILE]
  python bench/lessons.py --small [--only 00] [--out FILE]   # what CI runs so that the script cannot rot
`--small` runs a copy of lesson 00 (or those of --only) in a temporary folder at CNN_COURSE_LESSON_SIZE=small, offline
on generated data, and writes only to an --out given (never bench/results, build/executed or lessons/).
Run it on a quiet machine: two busy cores make every number larger.
"""
import argparse, hashlib, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))  # also when tools/render_numbers.py and the tests load this file
from _cold import out_file  # noqa: E402  (this folder)

ROOT = Path(__file__).resolve().parents[1]
# The six original projects, and the registered datasets the lessons run them on.
PROJECTS = {'tf_flowers (rubric)': ['flowers'], 'clothing, 5 classes': ['fashion5'], '100 sports': ['sports100'],
            'broken vs intact eggs': ['eggs'], 'anime vs cartoon vs human': ['anime'],
            'product images (10 / 30 classes)': ['grocery10', 'grocery']}

def run_metrics(runs:Path, since:float, lesson:str='') -> dict:
    "Dataset, backbone, test (or valid) accuracy and test images of every run folder lesson `lesson` ('01') wrote after `since`."
    out = {}
    for meta in sorted(runs.rglob('model.json')) if runs.is_dir() else []:
        mine = str(meta.relative_to(runs)).startswith(f'lesson{int(lesson or 0) or ""}')
        if meta.stat().st_mtime < since or not mine or 'submission' in meta.parts: continue  # a packed copy of a run
        m = json.loads(meta.read_text())
        met = m.get('metrics', {})
        acc = met.get('test_accuracy', met.get('valid_accuracy'))
        out[str(meta.parent.relative_to(runs))] = dict(dataset=m.get('dataset'), arch=m.get('arch'), n_test=met.get('n_test'),
                                                       # 4 digits then 0.1%: 0.89946 read 90.0%
                                                       accuracy=None if acc is None else round(acc, 6))
    return out

def thresholds(lesson:str, data:Path|None, folder:Path=ROOT/'lessons') -> dict:
    "Each run a graded exercise of `lesson` (in `folder`) judges (a choice or a threshold), measured on its public test split."
    from cnn_course.evaluation.evaluate import evaluate
    from cnn_course.course.graded_runs import GOALS, measure, reaches
    from cnn_course.inference.runs import load_run
    out, lessons = {}, folder
    if data is not None: os.environ['CNN_COURSE_DATA'] = str(data)  # runs saved by `learn.save_run` find their photos through it
    for ex, goal in GOALS.items():
        if ex.split('.')[0] != str(int(lesson)): continue
        folder = lessons/goal.run
        try:
            ev = evaluate(load_run(folder))
            labels = ev.predictions.label.map(ev.metrics.classes.index).to_numpy()
            value, n, name = measure(goal.measure, ev.metrics, ev.probs, labels)
            ok, line = reaches(goal, folder, ev.metrics, ev.probs, labels)
            out[ex] = dict(run=goal.run, measure=goal.measure, value=round(value, 6), n=n, threshold=goal.threshold, passed=ok,
                           feedback=line)
        except Exception as e: out[ex] = dict(run=goal.run, passed=False, feedback=f'{type(e).__name__}: {e}')
    return out

def source_digest(nb:Path) -> str:
    "SHA-256 of a notebook's cells (type and source): what was run, whatever its outputs and metadata."
    cells = json.loads(Path(nb).read_text())['cells']
    return hashlib.sha256(json.dumps([(c['cell_type'], ''.join(c['source'])) for c in cells]).encode()).hexdigest()

# nbdev-test on one notebook (same flags, same strict self-checks, run in the notebook's folder), its outputs written to
# argv[2] instead of back to the notebook (nbdev-test --save would overwrite the committed lesson)
RUN_AND_SAVE = ('import sys, nbdev.test as T; from fastcore.nbio import write_nb; from pathlib import Path; '
                'Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True); '
                'T.write_nb = lambda nb, fn: write_nb(nb, sys.argv[2]); T.nbdev_test.__wrapped__(path=sys.argv[1], save=True)')

def run_lesson(nb:Path, env:dict, dest:Path|None=None, size:str='full') -> subprocess.CompletedProcess:
    "Run `nb` as `nbdev-test` does; with `dest`, save the executed notebook there, its source digest and size in its metadata."
    nb = Path(nb).resolve()
    cmd = [sys.executable, '-c', RUN_AND_SAVE, str(nb), str(dest)] if dest else [str(Path(sys.executable).parent/'nbdev-test'), str(nb)]
    if dest: Path(dest).unlink(missing_ok=True)  # a failed run leaves no executed copy (nbdev saves only on success)
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if dest and Path(dest).is_file():
        out = json.loads(Path(dest).read_text())
        out['metadata']['cnn_course'] = dict(source=nb.name, source_sha256=source_digest(nb), size=size,
                                             executed=time.strftime('%Y-%m-%d %H:%M', time.localtime(t0)))
        Path(dest).write_text(json.dumps(out, indent=1, ensure_ascii=False) + '\n')
    return r

def bench(nb:Path, data:Path|None, limit:float, warm:bool=False, executed:Path|None=None) -> dict:
    "Run lesson `nb` (on the real photos in `data`; None: small, offline, on generated data) and read back what it saved."
    size = 'small' if data is None else 'full'
    env = {**os.environ, 'CNN_COURSE_LESSON_SIZE': size}
    if data is None: env.pop('CNN_COURSE_DATA', None); env['CNN_COURSE_OFFLINE'] = '1'
    else: env['CNN_COURSE_DATA'] = str(data)
    with tempfile.TemporaryDirectory() as home:
        if not warm: env['CNN_COURSE_HOME'] = home  # an empty course home: a cold feature cache, as a learner's first run
        t0, wall0 = time.time(), time.perf_counter()
        r = run_lesson(nb, env, executed/nb.name if executed else None, size)
        secs = round(time.perf_counter() - wall0, 1)
        res = dict(lesson=nb.stem, seconds=secs, date=time.strftime('%Y-%m-%d', time.localtime(t0)), ok=r.returncode == 0,
                   within_limit=secs <= limit, runs=run_metrics(nb.parent/'runs', t0, nb.name[:2]))
        if data is None:  # the generated data live there
            os.environ.update({k: env[k] for k in ('CNN_COURSE_HOME', 'CNN_COURSE_OFFLINE') if k in env})
        res['thresholds'] = thresholds(nb.name[:2], data, nb.parent)
    if r.returncode: res['error'] = '\n'.join([l for l in (r.stderr + r.stdout).splitlines() if 'Error' in l or 'Executing Cell' in l][-4:])
    return res

def projects_table(results:list) -> list:
    "One row per original project: the lessons' runs on its photos, and the accuracies the project reported."
    from cnn_course.evaluation.compare import reported_accuracies
    rows = []
    for project, names in PROJECTS.items():
        ours = [dict(lesson=r['lesson'][:2], run=k, **v) for r in results for k, v in r['runs'].items()
                if v['dataset'] in names and v['n_test']]  # not an exercise's run without a test number (lesson 3's over-fitting)
        reported = [dict(dataset=n, **x._asdict()) for n in names for x in reported_accuracies(n)]
        rows.append(dict(project=project, datasets=names, ours=ours, reported=reported))
    return rows

def _pct(x): return '-' if x is None else f'{100*x:.1f}%'

def projects_md(rows:list) -> str:
    "The projects table in Markdown."
    lines = ['| project | photos here | learner\'s runs (lesson: run, backbone, test accuracy on n photos) '
             '| the original project reported |',
             '|---|---|---|---|']
    for r in rows:
        ours = '<br>'.join(f"L{o['lesson']} {o['run']} ({o['arch'].replace('tf_efficientnet_', '')}): "
                           f"{_pct(o['accuracy'])} on {o['n_test']}" for o in r['ours']) or 'not run'
        rep = '<br>'.join(f"{x['label']}{' (' + x['dataset'] + ')' if len(r['datasets']) > 1 else ''}: "
                          f"{'≥ ' if x['kind'] == 'target' else ''}{_pct(x['accuracy'])}" for x in r['reported'])
        lines.append(f"| {r['project']} | {', '.join(r['datasets'])} | {ours} | {rep} |")
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', type=Path, default=Path(os.environ.get('CNN_COURSE_DATA', ROOT.parent/'shared'/'data')))
    p.add_argument('--only', nargs='*', help='lesson number prefixes, e.g. 01 04')
    p.add_argument('--limit', type=float, default=300, help='seconds allowed per lesson')
    p.add_argument('--warm', action='store_true',
                   help="use the current course home and its feature cache (default: an empty one per lesson)")
    p.add_argument('--out', type=Path, help='also written here (default: bench/results/lessons.json, none for --small)')
    p.add_argument('--executed', type=Path, default=ROOT/'build'/'executed',
                   help="save each executed lesson here (for tools/build_site.py --executed); '' saves none; --small saves none")
    p.add_argument('--small', action='store_true',
                   help='lesson 00 (or --only) copied to a temporary folder, small size, offline: the code path, not the speed')
    a = p.parse_args()
    dest = out_file(a.out, a.small, 'lessons.json')  # before any work: a refused --out costs nothing
    if a.small: a.only = a.only or ['00']
    else:
        missing = [d for d in ('flowers', 'clothing', 'sports100', 'eggs', 'anime', 'grocery') if not (a.data/d).is_dir()]
        if missing: sys.exit(f'No real data for {", ".join(missing)} at {a.data}: pass --data (the folder holding them), or run --small.')
    nbs = [n for n in sorted((ROOT/'lessons').glob('[0-9]*.ipynb')) if not a.only or any(n.name.startswith(o) for o in a.only)]
    if not nbs: sys.exit(f'No lesson matches --only {" ".join(a.only)}: give number prefixes such as 00 or 03.')
    executed = a.executed.resolve() if str(a.executed) not in ('', '.') and not a.small else None
    with tempfile.TemporaryDirectory() as tmp:
        if a.small: nbs = [Path(shutil.copy(n, tmp)) for n in nbs]  # a small run saves its runs beside the copy, never in lessons/
        results = [bench(n, None if a.small else a.data.resolve(), a.limit, a.warm, executed) for n in nbs]
    rows = projects_table(results)
    text = json.dumps(dict(machine=dict(cpus=os.cpu_count(), loadavg_after=os.getloadavg()), cache='warm' if a.warm else 'cold',
                          size='small' if a.small else 'full',
                          limit_s=a.limit, total_s=round(sum(r['seconds'] for r in results), 1),
                          all_ok=all(r['ok'] and r['within_limit'] for r in results), lessons=results, projects=rows,
                          projects_md=projects_md(rows)), indent=2, ensure_ascii=False)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
