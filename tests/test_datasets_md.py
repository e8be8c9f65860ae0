"datasets.md is `datasets_page()`; `python tests/test_datasets_md.py --write` regenerates it."
import sys
from pathlib import Path
from cnn_course.data.catalog import datasets_page

PAGE = Path(__file__).resolve().parents[1]/'datasets.md'

def test_datasets_md_is_generated_from_the_registry():
    assert PAGE.read_text() == datasets_page(), 'run `python tests/test_datasets_md.py --write`'

if __name__ == '__main__' and '--write' in sys.argv: PAGE.write_text(datasets_page())
