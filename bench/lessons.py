"""Seconds per lesson, each run in full on the real data as a learner would (goal: <= 300 s each on 2 CPU cores).

Every lesson runs in its own process through `nbdev-test` (which also makes each exercise's self-check strict, so the
solutions are checked on the full data), with CNN_COURSE_LESSON_SIZE=full. Prints one JSON object:
  python bench/lessons.py [--data ../shared/data] [--only 01 03] [--limit 300]
Run it on a quiet machine: two busy cores make every number larger.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def run_metrics(runs:Path, since:float) -> dict:
    "Test (or valid) accuracy of every run folder a lesson wrote after `since`."
    out = {}
    for meta in sorted(runs.rglob('model.json')) if runs.is_dir() else []:
        if meta.stat().st_mtime < since: continue
        m = json.loads(meta.read_text()).get('metrics', {})
        acc = m.get('test_accuracy', m.get('valid_accuracy'))
        out[str(meta.parent.relative_to(runs))] = None if acc is None else round(acc, 4)
    return out

def bench(nb:Path, data:Path, limit:float) -> dict:
    env = {**os.environ, 'CNN_COURSE_DATA': str(data), 'CNN_COURSE_LESSON_SIZE': 'full'}
    t0, wall0 = time.time(), time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).parent/'nbdev-test'), str(nb)], env=env, capture_output=True, text=True)
    secs = round(time.perf_counter() - wall0, 1)
    res = dict(lesson=nb.stem, seconds=secs, ok=r.returncode == 0, within_limit=secs <= limit, accuracies=run_metrics(nb.parent/'runs', t0))
    if r.returncode: res['error'] = '\n'.join([l for l in (r.stderr + r.stdout).splitlines() if 'Error' in l or 'Executing Cell' in l][-4:])
    return res

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', type=Path, default=Path(os.environ.get('CNN_COURSE_DATA', ROOT.parent/'shared'/'data')))
    p.add_argument('--only', nargs='*', help='lesson number prefixes, e.g. 01 04')
    p.add_argument('--limit', type=float, default=300, help='seconds allowed per lesson')
    a = p.parse_args()
    if not (a.data/'flowers').is_dir(): sys.exit(f'No real data at {a.data}: pass --data (the folder holding flowers/, clothing/, sports100/).')
    nbs = [n for n in sorted((ROOT/'lessons').glob('[0-9]*.ipynb')) if not a.only or any(n.name.startswith(o) for o in a.only)]
    results = [bench(n, a.data.resolve(), a.limit) for n in nbs]
    print(json.dumps(dict(machine=dict(cpus=os.cpu_count()), limit_s=a.limit, total_s=round(sum(r['seconds'] for r in results), 1),
                          all_ok=all(r['ok'] and r['within_limit'] for r in results), lessons=results), indent=2))

if __name__ == '__main__': main()
