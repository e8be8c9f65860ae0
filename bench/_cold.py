"""Helpers of the bench scripts (not a script): one measured run in a fresh process with an empty, offline course home (a
cold cache), and where a run writes its JSON."""
import json, os, subprocess, sys, tempfile
from pathlib import Path
RESULTS = Path(__file__).resolve().parent/'results'  # the measured numbers the README and lessons/README.md cite

def cold_run(script:str, args:list, what:str) -> dict:
    "Run `script --one *args` alone; its last stdout line is the run's JSON. A failure stops the bench, naming `what`."
    with tempfile.TemporaryDirectory() as home:
        r = subprocess.run([sys.executable, script, '--one', *map(str, args)], capture_output=True, text=True,
                           env=dict(os.environ, CNN_COURSE_HOME=home, CNN_COURSE_OFFLINE='1'))
        if r.returncode: sys.exit(f'{what} failed:\n{r.stderr[-3000:]}')
        return json.loads(r.stdout.strip().splitlines()[-1])

def out_file(out:Path|str|None, # The script's --out
             small:bool, # A --small run: its numbers are the code path's, never the measured ones
             default:str|None=None, # The file in bench/results a measured run writes when no --out is given
            ) -> Path|None:
    "Where a run writes its JSON (its folder made), or None: a small run writes only to an --out outside bench/results."
    if small:
        if out is None: return None
        if RESULTS in Path(out).resolve().parents:
            sys.exit(f'--small never writes into {RESULTS} (its numbers are not measurements): '
                     'give --out a path elsewhere, e.g. /tmp/x.json.')
    out = Path(out) if out is not None else RESULTS/default if default else None
    if out is not None: out.parent.mkdir(parents=True, exist_ok=True)
    return out
