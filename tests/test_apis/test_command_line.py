"""The README's command-line path: a config of the user's, in a folder outside the
repository, inherits a shipped SCAI config through ``mmpose_scai::`` and switches TTA on;
``python -m mmpose_scai test`` runs MMPose's test tool on it."""
import os
import subprocess
import sys

import torch
from mmengine.config import Config

import mmpose_scai  # noqa: F401
from mmpose.registry import MODELS
from benchmarks.data_root import DATA_ROOT_ENV

USER_CFG = '''
_base_ = ['mmpose_scai::body_2d_keypoint/scai/lspet/td-hm_res18_scai-1xb32-6e_lspet-128x96.py']
custom_hooks = _base_.custom_hooks + [dict(type='SCAITTAHook', preset='default')]
model = dict(head=dict(refiner=dict(min_anchor_score=0.)))
test_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                       dataset=dict(indices=8))
'''


def test_mmpose_test_tool_with_tta_from_a_user_folder(tmp_path, data_root):
    cfg_path = tmp_path / 'my_scai_tta.py'
    cfg_path.write_text(USER_CFG)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    model.head.chain_labelled.fill_(1)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'scai.pth')
    env = dict(os.environ, **{DATA_ROOT_ENV: data_root})
    proc = subprocess.run(
        [sys.executable, '-m', 'mmpose_scai', 'test', cfg_path.name, 'scai.pth',
         '--work-dir', 'work'], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'SCAI TTA (test, 1 batches, episodic)' in log  # the hook ran
    assert 'coco/AP:' in log
    assert 'Failed to search registry' not in log
