"One measured run in a fresh process with an empty, offline course home (a cold cache): what each bench repeats."
import json, os, subprocess, sys, tempfile

def cold_run(script:str, args:list, what:str) -> dict:
    "Run `script --one *args` alone; its last stdout line is the run's JSON. A failure stops the bench, naming `what`."
    with tempfile.TemporaryDirectory() as home:
        r = subprocess.run([sys.executable, script, '--one', *map(str, args)], capture_output=True, text=True,
                           env=dict(os.environ, CNN_COURSE_HOME=home, CNN_COURSE_OFFLINE='1'))
        if r.returncode: sys.exit(f'{what} failed:\n{r.stderr[-3000:]}')
        return json.loads(r.stdout.strip().splitlines()[-1])
