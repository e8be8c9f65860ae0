"README.md is the markdown of nbs/index.ipynb; `python tests/test_readme.py --write` regenerates it."
import json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def readme_from_index(nb:Path=ROOT/'nbs'/'index.ipynb') -> str:
    "The markdown cells of the index notebook, joined by blank lines."
    cells = json.loads(nb.read_text())['cells']
    return '\n\n'.join(''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown') + '\n'

def setup_commands(readme:str) -> list:
    "The shell commands between the setup-commands markers."
    block = readme.split('<!-- setup-commands -->')[1].split('<!-- /setup-commands -->')[0]
    return [l for l in block.splitlines() if l.strip() and not l.startswith('```')]

def test_readme_matches_index():
    assert (ROOT/'README.md').read_text() == readme_from_index(), 'run `python tests/test_readme.py --write`'

def test_readme_has_two_setup_commands_and_ci_runs_them():
    "The commands CI runs are the README's two, read by `.ci/run`'s own line, then run by `bash -c`."
    cmds = setup_commands((ROOT/'README.md').read_text())
    assert len(cmds) == 2 and 'pip install' in cmds[0] and 'cnn-course quickstart' in cmds[0]
    assert all(w in cmds[1] for w in ('nbdev-test nbs', 'nbdev-test lessons', 'pytest'))
    ci = (ROOT/'.ci'/'run').read_text().splitlines()
    extract = next(l for l in ci if l.startswith('mapfile -t CMDS'))
    out = subprocess.run(['bash', '-c', extract + '\nprintf "%s\\n" "${CMDS[@]}"'], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == cmds
    assert 'bash -c "${CMDS[0]}"' in ci and 'bash -c "${CMDS[1]}"' in ci

def test_layout_table_names_every_room():
    "README's layout table has a row for each subpackage of cnn_course, and for nothing that is not one."
    rows = re.findall(r'^\| `cnn_course/(\w+)/` \|', (ROOT/'README.md').read_text(), re.M)
    rooms = sorted(p.name for p in (ROOT/'cnn_course').iterdir() if (p/'__init__.py').exists())
    assert sorted(rows) == rooms

if __name__ == '__main__' and '--write' in sys.argv: (ROOT/'README.md').write_text(readme_from_index())
