"""Wall seconds of `cnn-course` commands that train nothing, each in a fresh process (goal: `--help` and `datasets` in
<= 1.5 s), and which heavy libraries each imported.

  python bench/cli_start.py [--repeats 5] [--small] [--out FILE]
The median of `--repeats` runs decides; `--small` runs each once (what CI runs). Prints one JSON object and writes it to
`--out` (a measured run's default: bench/results/cli_start.json; a small run writes only to an --out given).
"""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path
from _cold import out_file  # this folder

COMMANDS = [['--help'], ['datasets'], ['backbones']]
HEAVY = ('torch', 'torchvision', 'fastai', 'timm')
PROBE = ("import runpy, sys, contextlib, io\nsys.argv = ['cnn-course'] + sys.argv[1:]\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try: runpy.run_module('cnn_course.cli', run_name='__main__')\n    except SystemExit: pass\n"
         f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")

SCRIPT = Path(sys.executable).parent/'cnn-course' # the console script a learner types

def wall(args:list) -> float:
    "Wall seconds of `cnn-course ARGS` in a fresh process, as a learner runs it."
    t0 = time.perf_counter()
    r = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True)
    if r.returncode: sys.exit(f'cnn-course {" ".join(args)} failed:\n{r.stderr[-1500:]}')
    return time.perf_counter() - t0

def imports(args:list) -> list:
    "The heavy libraries `cnn-course ARGS` imported."
    r = subprocess.run([sys.executable, '-c', PROBE, *args], capture_output=True, text=True)
    return json.loads(r.stderr.strip().splitlines()[-1].replace("'", '"'))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--small', action='store_true', help='one run of each: the code path, not the speed')
    p.add_argument('--out', type=Path, help='write the JSON here (default: bench/results/cli_start.json, none for --small)')
    a = p.parse_args()
    dest = out_file(a.out, a.small, 'cli_start.json')  # before any work: a refused --out costs nothing
    n, rows = 1 if a.small else a.repeats, []
    for args in COMMANDS:
        runs = [wall(args) for _ in range(n)]
        rows.append(dict(command=' '.join(['cnn-course', *args]), seconds=[round(w, 2) for w in runs],
                         median_s=round(statistics.median(runs), 2), imports=imports(args)))
    out = dict(date=time.strftime('%Y-%m-%d %H:%M'), cores=len(os.sched_getaffinity(0)), loadavg=[round(v, 2) for v in os.getloadavg()],
               goal_s=1.5, small=a.small, rows=rows)
    text = json.dumps(out, indent=2)
    if dest: dest.write_text(text + '\n')
    print(text)

if __name__ == '__main__': main()
