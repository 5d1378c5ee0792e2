"""Step 1 of the benchmark: the base trains through MMEngine's Runner to exactly the
requested epoch, resumes, is reused, and keeps optimizer state only in its last checkpoint."""
import os.path as osp

import torch
from mmengine.config import Config

from benchmarks.base import ensure_base, epoch_checkpoints
from benchmarks.data_root import repo_root
from benchmarks.pipeline import BASE_CONFIG
from tests.test_benchmark.test_pipeline import TINY_BASE


def test_ensure_base_trains_resumes_and_reuses(data_root, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root(), BASE_CONFIG))  # 6 epochs configured
    cfg.merge_from_dict({**TINY_BASE, 'train_dataloader.dataset.indices': 8,
                         'train_dataloader.batch_size': 4, 'train_dataloader.num_workers': 0,
                         'train_dataloader.persistent_workers': False,
                         'val_dataloader.dataset.indices': 4, 'val_dataloader.num_workers': 0,
                         'val_dataloader.persistent_workers': False,
                         'default_hooks.logger.interval': 1})
    wd = str(tmp_path / 'base')
    msgs = []
    assert ensure_base(cfg, wd, 1, echo=msgs.append) == dict(status='trained', epochs=1)
    assert list(epoch_checkpoints(wd)) == [1]  # the smoke run stops at its own epoch
    assert ensure_base(cfg, wd, 1, echo=msgs.append)['status'] == 'reused'
    state = ensure_base(cfg, wd, 2, echo=msgs.append)
    assert state == dict(status='resumed from epoch 1', epochs=2)
    ckpts = epoch_checkpoints(wd)
    first = torch.load(ckpts[1], map_location='cpu', weights_only=True)
    last = torch.load(ckpts[2], map_location='cpu', weights_only=True)
    assert 'optimizer' not in first and 'state_dict' in first
    assert 'optimizer' in last and last['meta']['epoch'] == 2
