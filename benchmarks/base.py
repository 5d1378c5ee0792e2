"""Step 1: the base model — reuse, resume or train it; its learning curve; the pick.

The base is an ordinary MMPose config trained in-process by MMEngine's ``Runner`` in
``<work_dir>/base``: a finished run is reused, an interrupted one resumed
(``resume=True`` picks the last checkpoint). Every epoch's weights are kept for the
learning curve; only the last checkpoint keeps the optimizer state (for resuming). The
checkpoint is picked by validation AP only.
"""
import copy
import glob
import json
import os
import os.path as osp
import re
from typing import Callable, Dict, Optional

import torch

EPOCH_CKPT = re.compile(r'epoch_(\d+)\.pth$')
RESUME_KEYS = ('optimizer', 'param_schedulers', 'message_hub')


def epoch_checkpoints(work_dir: str) -> Dict[int, str]:
    """``{epoch: path}`` of the ``epoch_N.pth`` files in ``work_dir``."""
    out = {}
    for path in glob.glob(osp.join(work_dir, 'epoch_*.pth')):
        m = EPOCH_CKPT.search(path)
        if m:
            out[int(m.group(1))] = path
    return dict(sorted(out.items()))


def val_curve(work_dir: str, key: str = 'coco/AP') -> Dict[int, Dict[str, float]]:
    """Validation metrics per epoch from every run's ``vis_data/scalars.json``.

    A resumed run writes a new timestamped folder; a later run's value for an epoch
    replaces an earlier one.

    Returns:
        dict: ``{epoch: {'coco/AP': .., 'coco/AP .5': .., ...}}``.
    """
    curve: Dict[int, Dict[str, float]] = {}
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    for path in files:
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if key in row and 'step' in row:
                    curve[int(row['step'])] = {k: v for k, v in row.items()
                                               if k.startswith('coco/')}
    return dict(sorted(curve.items()))


def train_epochs_done(work_dir: str) -> int:
    ckpts = epoch_checkpoints(work_dir)
    return max(ckpts) if ckpts else 0


def pick_checkpoint(curve: Dict[int, Dict[str, float]], ckpts: Dict[int, str],
                    key: str = 'coco/AP') -> Optional[int]:
    """The epoch with the best validation ``key`` among those with a checkpoint (the
    earliest on a tie); None if there is none."""
    cands = [(v[key], -e) for e, v in curve.items() if e in ckpts and key in v]
    if not cands:
        return None
    return -max(cands)[1]


def ensure_base(cfg, work_dir: str, max_epochs: int,
                echo: Callable[[str], None] = print) -> Dict:
    """Make sure the base config ``cfg`` has trained ``max_epochs`` epochs in
    ``work_dir`` (reuse, resume or train), then drop the optimizer state of every
    checkpoint but the last.

    Returns:
        dict: ``status`` ('reused', 'resumed from epoch N', 'trained') and ``epochs``.
    """
    done = train_epochs_done(work_dir)
    status = 'reused'
    if done < max_epochs:
        from mmengine.runner import Runner
        cfg = copy.deepcopy(cfg)
        cfg.work_dir = work_dir
        cfg.train_cfg['max_epochs'] = max_epochs
        cfg.resume, cfg.load_from = done > 0, None
        status = f'resumed from epoch {done}' if done else 'trained'
        echo(f'[base] {status}: training to epoch {max_epochs} in {work_dir}')
        Runner.from_cfg(cfg).train()
    slim_checkpoints(work_dir)
    return dict(status=status, epochs=train_epochs_done(work_dir))


def slim_checkpoints(work_dir: str) -> None:
    """Keep only the weights (and meta) of every epoch checkpoint but the last."""
    for path in list(epoch_checkpoints(work_dir).values())[:-1]:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        if any(k in ckpt for k in RESUME_KEYS):
            torch.save({k: v for k, v in ckpt.items() if k not in RESUME_KEYS},
                       path + '.tmp')
            os.replace(path + '.tmp', path)
