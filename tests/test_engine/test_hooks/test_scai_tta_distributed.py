"""Two gloo processes give the same adapted predictions as one (per-instance mode)."""
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import numpy as np
from mmengine.utils import get_installed_path

from benchmarks.data_root import DATA_ROOT_ENV
from tests.test_engine.test_hooks.test_scai_tta_hook import (  # noqa: F401 (fixtures)
    checkpoint, plain_cfg, scai_cfg)

HOOK = dict(type='SCAITTAHook', unit='instance', steps=3, lr=1e-2, select_quantile=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_test(cfg_path, ckpt, out, data_root, nproc, hook=True):
    test_py = osp.join(get_installed_path('mmpose'), '.mim', 'tools', 'test.py')
    launch = [sys.executable, test_py] if nproc == 1 else [
        sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
        f'--master_port={free_port()}', test_py]
    cmd = launch + [cfg_path, ckpt, '--work-dir', osp.dirname(out), '--dump', out]
    if nproc > 1:
        cmd += ['--launcher', 'pytorch']
    env = dict(os.environ, **{DATA_ROOT_ENV: data_root, 'OMP_NUM_THREADS': '1'})
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert ('tta_E_s_before' in log) == hook, log[-4000:]  # statistics reach the log
    with open(out, 'rb') as f:
        return {r['id']: dict(r['pred_instances'], heatmaps=r['pred_fields']['heatmaps'].numpy())
                for r in pickle.load(f)}


def test_two_gloo_processes_equal_one_in_instance_mode(plain_cfg, checkpoint, tmp_path,  # noqa: F811
                                                       data_root):
    cfg = scai_cfg(plain_cfg)
    cfg.custom_hooks = [HOOK]
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)
    cfg_path = str(tmp_path / 'scai_tta.py')
    cfg.dump(cfg_path)
    cfg.custom_hooks = []
    plain_path = str(tmp_path / 'scai.py')
    cfg.dump(plain_path)
    plain = run_test(plain_path, checkpoint, str(tmp_path / 'plain' / 'p.pkl'), data_root,
                     1, hook=False)
    one = run_test(cfg_path, checkpoint, str(tmp_path / 'one' / 'p.pkl'), data_root, 1)
    two = run_test(cfg_path, checkpoint, str(tmp_path / 'two' / 'p.pkl'), data_root, 2)
    assert one.keys() == two.keys() == plain.keys() and len(one) == 16
    # the comparison has teeth: adaptation changed some instance's heatmaps
    assert any(not np.allclose(one[i]['heatmaps'], plain[i]['heatmaps'], atol=1e-5)
               for i in one)
    for i in one:
        np.testing.assert_allclose(one[i]['keypoints'], two[i]['keypoints'], atol=1e-4)
        np.testing.assert_allclose(one[i]['keypoint_self_errors'],
                                   two[i]['keypoint_self_errors'], atol=1e-4)
        # the adapted heatmaps themselves (keypoints of this tiny model rarely move)
        np.testing.assert_allclose(one[i]['heatmaps'], two[i]['heatmaps'], atol=1e-5)
