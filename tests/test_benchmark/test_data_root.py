"""``resolve_data_root``: env var, ``../shared/data`` from the repo root, demo subset."""
import os.path as osp

import pytest

from benchmarks.data_root import (DATA_ROOT_ENV, DataRootError, is_ci, is_demo_root,
                               repo_root, resolve_data_root)

CONFIG = 'configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_res18_1xb16-1e_coco-sample-128x96.py'


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """``<tmp>/repo`` with optional ``<tmp>/shared/data`` and ``<tmp>/repo/data/demo``."""
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    repo = tmp_path / 'repo'
    repo.mkdir()
    return repo


def test_env_var_wins(fake_repo, tmp_path, monkeypatch):
    (tmp_path / 'shared' / 'data').mkdir(parents=True)
    custom = tmp_path / 'mine'
    custom.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(custom))
    assert resolve_data_root(root=str(fake_repo)) == str(custom)


def test_env_var_missing_dir_names_the_variable(fake_repo, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / 'nope'))
    with pytest.raises(DataRootError, match=DATA_ROOT_ENV):
        resolve_data_root(root=str(fake_repo))


def test_shared_data_next_to_repo(fake_repo, tmp_path, monkeypatch):
    shared = tmp_path / 'shared' / 'data'
    shared.mkdir(parents=True)
    (fake_repo / 'data' / 'demo').mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # the current directory must not matter
    assert resolve_data_root(root=str(fake_repo)) == str(shared)


def test_demo_fallback(fake_repo):
    demo = fake_repo / 'data' / 'demo'
    demo.mkdir(parents=True)
    assert resolve_data_root(root=str(fake_repo)) == str(demo)
    assert is_demo_root(str(demo), root=str(fake_repo))
    with pytest.raises(DataRootError):
        resolve_data_root(allow_demo=False, root=str(fake_repo))


def test_nothing_found(fake_repo):
    with pytest.raises(DataRootError, match=DATA_ROOT_ENV):
        resolve_data_root(root=str(fake_repo))


def test_default_repo_root_holds_the_package():
    assert osp.isfile(osp.join(repo_root(), 'mmpose_scai', '__init__.py'))
    assert osp.isdir(osp.join(repo_root(), 'data', 'demo', 'coco_sample'))


@pytest.mark.parametrize('value,expected', [('true', True), ('1', True), ('', False),
                                            ('false', False)])
def test_is_ci(monkeypatch, value, expected):
    monkeypatch.setenv('CI', value)
    assert is_ci() is expected


def test_config_reads_data_root(monkeypatch):
    """Configs read ``$SCAI_DATA_ROOT`` the MMEngine way; without it, MMPose's
    convention: a path relative to the working directory. Loading reads no data."""
    from mmengine.config import Config
    demo = osp.join(repo_root(), 'data', 'demo')
    monkeypatch.setenv(DATA_ROOT_ENV, demo)
    cfg = Config.fromfile(osp.join(repo_root(), CONFIG))
    assert cfg.test_dataloader.dataset.data_root == demo + '/coco_sample/'
    assert cfg.test_evaluator.ann_file.startswith(demo)
    assert cfg.custom_imports.imports == ['mmpose_scai']
    monkeypatch.setenv(DATA_ROOT_ENV, demo + '_missing')  # inference needs no data
    assert Config.fromfile(osp.join(repo_root(), CONFIG)).test_dataloader.dataset.data_root \
        == demo + '_missing/coco_sample/'
    monkeypatch.delenv(DATA_ROOT_ENV)
    cfg = Config.fromfile(osp.join(repo_root(), CONFIG))
    assert cfg.test_dataloader.dataset.data_root == 'data/demo/coco_sample/'
