"Test-run settings: tests marked `realdata` need the real photos and are skipped without `$CNN_COURSE_DATA`."
import os
import pytest

def pytest_collection_modifyitems(config, items):
    if os.environ.get('CNN_COURSE_DATA'): return
    skip = pytest.mark.skip(reason='needs CNN_COURSE_DATA (real photos): set it, or deselect with -m "not realdata"')
    for item in items:
        if 'realdata' in item.keywords: item.add_marker(skip)
