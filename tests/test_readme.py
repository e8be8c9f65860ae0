"README.md is the markdown of nbs/index.ipynb; `python tests/test_readme.py --write` regenerates it."
import json, sys
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
    cmds = setup_commands((ROOT/'README.md').read_text())
    assert len(cmds) == 2 and 'pip install' in cmds[0] and 'pytest' in cmds[1]
    assert 'setup-commands' in (ROOT/'.ci'/'run').read_text()

if __name__ == '__main__' and '--write' in sys.argv: (ROOT/'README.md').write_text(readme_from_index())
