"""Step 2: train SCAI on the frozen base with MMEngine's Runner (staged schedule).

The SCAI config is used as shipped (networks, losses, optimizers); the benchmark only
sets where to load the base from, the stage lengths, the number of training images (a
seeded random subset of LSPET-train minus the validation split, to fit a CPU budget)
and the work dir. A finished run is reused, an interrupted one resumed.
"""
import copy
import json
import os.path as osp
import time
from typing import Callable, Optional

import numpy as np

from .base import epoch_checkpoints


def scai_train_config(config: str, work_dir: str, load_from: str, stages: dict,
                      train_images: Optional[int] = None, num_workers: int = 2,
                      cfg_options: Optional[dict] = None, log_interval: int = 25,
                      seed: int = 0, name: str = 'scai'):
    """The SCAI config prepared for one benchmark training run.

    Args:
        config (str): The SCAI config file.
        work_dir (str): Output folder.
        load_from (str): Base (or earlier SCAI) checkpoint.
        stages (dict): ``pretrain_epochs``, ``correct_epochs``, ``multi_epochs`` and
            optional ``max_rounds`` / ``gamma_uses_lc``.
        train_images (int, optional): Train on this many images (a seeded random subset
            of the training part); None: all.
        cfg_options (dict, optional): Merged into the config last.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.load_from = load_from
    cfg.experiment_name = f'{name}_{time.strftime("%Y%m%d_%H%M%S")}'
    epochs = stages['pretrain_epochs'] + stages['correct_epochs'] + stages['multi_epochs']
    scai = dict(pretrain_epochs=stages['pretrain_epochs'],
                correct_epochs=stages['correct_epochs'])
    for k in ('max_rounds', 'gamma_uses_lc'):
        if k in stages:
            scai[k] = stages[k]
    cfg.model.train_cfg.scai.update(scai)
    # validation is done by the benchmark on cached heatmaps, not during training
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        max_keep_ckpts=-1, save_best=None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=log_interval)
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.randomness = dict(seed=seed)
    loader = cfg.train_dataloader
    loader.num_workers = num_workers
    loader.persistent_workers = num_workers > 0
    if train_images:
        n = _train_part_size(loader.dataset)
        if train_images < n:
            idx = np.sort(np.random.default_rng(seed).permutation(n)[:train_images])
            loader.dataset.indices = idx.tolist()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    schedules_follow_stages(cfg)
    return cfg


def schedules_follow_stages(cfg) -> None:
    """Move the per-network lr schedules (``param_scheduler`` keyed by network) to the
    config's stage boundaries: Φ's ends and C's begins at ``pretrain_epochs``."""
    sched = cfg.get('param_scheduler')
    if not isinstance(sched, dict):
        return
    pre = cfg.model.train_cfg.scai.get('pretrain_epochs', 1)
    for s in sched.get('phi', []):
        s['end'] = max(pre, 1)
    if pre >= cfg.train_cfg['max_epochs']:
        sched['corr'] = []  # C never trains in this run
    for s in sched.get('corr', []):
        s['begin'] = pre


def _train_part_size(dataset_cfg) -> int:
    """Number of instances of the training part (train file minus the holdout)."""
    path = osp.join(dataset_cfg.data_root, dataset_cfg.ann_file)
    with open(path) as f:
        n = len(json.load(f)['annotations'])
    if dataset_cfg.get('type') == 'HoldoutCocoDataset' and \
            dataset_cfg.get('part', 'train') == 'train':
        n -= dataset_cfg.get('holdout_size', 500)
    return n


def train_scai(cfg, echo: Callable[[str], None] = print) -> dict:
    """Run, resume or reuse the training of ``cfg``.

    An interrupted run resumes from its last checkpoint with MMEngine's ``resume``
    (``SCAITrainCheckHook`` restores every network's optimizer and schedule, and the
    stage).

    Returns:
        dict: ``checkpoint`` (the last epoch's), ``stage1`` (the checkpoint at the end
        of the Φ/Γ pre-training, if it exists), ``status`` and ``seconds``.
    """
    from mmengine.runner import Runner

    pre = cfg.model.train_cfg.scai.get('pretrain_epochs', 0)
    epochs = cfg.train_cfg['max_epochs']
    ckpts = epoch_checkpoints(cfg.work_dir)
    if epochs in ckpts:
        echo(f'[scai] {cfg.work_dir}: {epochs} epochs already trained, reused')
        return dict(checkpoint=ckpts[epochs], stage1=ckpts.get(pre), status='reused',
                    seconds=0.0)
    status = 'trained'
    if ckpts:
        cfg = copy.deepcopy(cfg)
        cfg.resume, cfg.load_from = True, None  # the last checkpoint of the work dir
        status = f'resumed from epoch {max(ckpts)}'
        echo(f'[scai] {cfg.work_dir}: {status}')
    t0 = time.perf_counter()
    Runner.from_cfg(cfg).train()
    ckpts = epoch_checkpoints(cfg.work_dir)
    return dict(checkpoint=ckpts[epochs], stage1=ckpts.get(pre), status=status,
                seconds=time.perf_counter() - t0)
