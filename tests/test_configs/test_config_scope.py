"""The ``mmpose_scai::`` config scope: from any folder, in the source tree (editable
install, ``PYTHONPATH``) and after a non-editable install (``pip install --target``)."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.utils import get_installed_path

import mmpose_scai
from mmpose.registry import HOOKS, MODELS, PARAM_SCHEDULERS
from benchmarks.data_root import repo_root

ROOT = repo_root()
SHIPPED = sorted(
    osp.relpath(p, osp.join(ROOT, 'configs'))
    for p in glob.glob(osp.join(ROOT, 'configs', 'body_2d_keypoint', 'scai', '*', '*.py')))
USER_CFG = '''
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py',
          'mmpose_scai::_base_/scai_heatmap.py']
model = dict(type='SCAIPoseEstimator', backbone=dict(depth=18, init_cfg=None),
             head=dict(_delete_=True, type='SCAIHead',
                       base_head=dict(_base_.model.head, in_channels=512),
                       **_base_.scai_head),
             train_cfg=_base_.scai_train_cfg, test_cfg=dict(_base_.scai_test_cfg))
optim_wrapper = dict(_delete_=True, **_base_.scai_optim_wrapper)
param_scheduler = dict(_delete_=True, **_base_.scai_param_scheduler)
'''


def test_scope_points_at_this_package():
    package_dir = osp.dirname(mmpose_scai.__file__)
    assert get_installed_path(MODULE2PACKAGE['mmpose_scai']) == package_dir
    mim = osp.join(package_dir, '.mim')
    assert osp.samefile(osp.join(mim, 'configs'), osp.join(ROOT, 'configs'))
    assert osp.samefile(osp.join(mim, 'model-index.yml'), osp.join(ROOT, 'model-index.yml'))


@pytest.mark.parametrize('rel', SHIPPED)
def test_shipped_configs_resolve_from_any_folder(rel, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'mine.py').write_text(f"_base_ = ['mmpose_scai::{rel}']\n")
    cfg = Config.fromfile(str(tmp_path / 'mine.py'))
    direct = Config.fromfile(osp.join(ROOT, 'configs', rel))
    assert set(cfg.model.to_dict()) - {'_scope_'} == set(direct.model.to_dict()) - {'_scope_'}
    assert cfg.model.head.type == 'SCAIHead'


def test_scoped_modules_build_without_registry_warnings(tmp_path, monkeypatch):
    """Typed dicts of a ``mmpose_scai::`` base carry ``_scope_='mmpose_scai'``; the
    scope's registries (children of MMPose's) build them, and say nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'user.py').write_text(USER_CFG)
    cfg = Config.fromfile(str(tmp_path / 'user.py'))
    assert cfg.model.head.loss._scope_ == 'mmpose_scai'
    from unittest import mock

    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)  # 'mmpose', as the Runner does
    with mock.patch('mmengine.logging.print_log') as log:
        model = MODELS.build(cfg.model)
        from mmengine.optim import build_optim_wrapper
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        PARAM_SCHEDULERS.build(cfg.param_scheduler['phi'][0],
                               default_args=dict(optimizer=optim['phi']))
        HOOKS.build(dict(type='SCAITTAHook', preset='default', _scope_='mmpose_scai'))
    warnings = [c.args[0] for c in log.call_args_list
                if c.kwargs.get('level', 20) >= 30]
    assert not warnings, warnings
    assert type(model.head.refiner.phi).__name__ == 'ChainConvNet'
    assert set(optim.keys()) == {'phi', 'gamma', 'corr'}


def test_non_editable_install(tmp_path):
    """``pip install --target`` copies the configs into the package (no links) and the
    scope resolves there, from a folder outside the repository."""
    src, target, user = tmp_path / 'src', tmp_path / 'site', tmp_path / 'user'
    src.mkdir()
    user.mkdir()
    for name in ('setup.py', 'model-index.yml', 'README.md'):
        shutil.copy(osp.join(ROOT, name), src / name)
    for name in ('mmpose_scai', 'configs'):
        shutil.copytree(osp.join(ROOT, name), src / name, symlinks=True,
                        ignore=shutil.ignore_patterns('__pycache__'))
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                    '--no-build-isolation', '--no-compile', '--target', str(target),
                    str(src)], check=True, capture_output=True, timeout=300)
    mim = target / 'mmpose_scai' / '.mim'
    assert not osp.islink(mim / 'configs') and (mim / 'model-index.yml').is_file()
    installed = {osp.relpath(p, mim / 'configs')
                 for p in glob.glob(str(mim / 'configs' / '**' / '*.py'), recursive=True)}
    assert set(SHIPPED) | {'_base_/scai_heatmap.py', '_base_/scai_tta.py'} <= installed
    (user / 'mine.py').write_text(
        "_base_ = ['mmpose_scai::body_2d_keypoint/scai/crowdpose/"
        "td-hm_hrnet-w32_scai-8xb64-210e_crowdpose-256x192.py', "
        "'mmpose_scai::_base_/scai_tta_paper.py']\n"
        'custom_hooks = _base_.custom_hooks + [_base_.scai_tta_hook]\n')
    code = ('import json, mmpose_scai; from mmengine.config import Config; '
            "c = Config.fromfile('mine.py'); "
            'print(json.dumps(dict(pkg=mmpose_scai.__file__, text=c._text, '
            'hooks=[h["type"] for h in c.custom_hooks], layout=c.model.head.chains)))')
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([sys.executable, '-c', code], cwd=user, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['pkg'].startswith(str(target))
    assert out['hooks'] == ['SyncBuffersHook', 'SCAITTAHook']
    assert out['layout'] == dict(layout='crowdpose')
    assert str(mim / 'configs' / '_base_' / 'scai_heatmap.py') in out['text']
    assert ROOT not in out['text'].replace(str(tmp_path), '').replace(sys.prefix, '')
    # `mim train mmpose_scai` runs the package's .mim/tools/train.py (plugin first)
    (user / 'tiny.py').write_text(
        "_base_ = ['mmpose_scai::body_2d_keypoint/topdown_heatmap/coco/"
        "td-hm_res18_1xb16-1e_coco-sample-128x96.py']\n"
        "train_dataloader = dict(num_workers=0, persistent_workers=False, "
        "dataset=dict(indices=8))\n"
        "val_dataloader = dict(num_workers=0, persistent_workers=False, "
        "dataset=dict(indices=4))\n")
    mim_cmd = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run([mim_cmd, 'train', 'mmpose_scai', 'tiny.py', '--work-dir', 'wd'],
                          cwd=user, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (user / 'wd' / 'epoch_1.pth').is_file()


def test_command_line_entry_point_usage(capsys):
    from mmpose_scai.__main__ import main
    for argv in ([], ['fit', 'x.py']):
        with pytest.raises(SystemExit, match=r'usage: python -m mmpose_scai \{train,test\}'):
            main(argv)
