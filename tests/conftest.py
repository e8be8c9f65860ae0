"Test-run settings: `realdata` tests skip without `$CNN_COURSE_DATA`; `offline_home`, a fresh offline course home."
import os
import pytest

def pytest_collection_modifyitems(config, items):
    if os.environ.get('CNN_COURSE_DATA'): return
    skip = pytest.mark.skip(reason='needs CNN_COURSE_DATA (real photos): set it, or deselect with -m "not realdata"')
    for item in items:
        if 'realdata' in item.keywords: item.add_marker(skip)

@pytest.fixture()
def offline_home(tmp_path, monkeypatch):
    "A fresh course home under `tmp_path`, offline: nothing a test caches or downloads outlives it (`usefixtures`)."
    monkeypatch.setenv('CNN_COURSE_HOME', str(tmp_path/'home')); monkeypatch.setenv('CNN_COURSE_OFFLINE', '1')
    return tmp_path/'home'
