"""Loud failures instead of silent no-ops in SCAI training, and ``--resume`` that
resumes SCAI rather than the frozen base's checkpoint."""
from typing import List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, find_latest_checkpoint

from mmpose.registry import HOOKS
from ..optim_wrappers import NETWORKS


def is_scai_training_checkpoint(checkpoint: dict) -> bool:
    """True for a checkpoint written while training SCAI (one optimizer per network),
    False for e.g. the base model's own MMPose checkpoint."""
    optim = checkpoint.get('optimizer') if isinstance(checkpoint, dict) else None
    return isinstance(optim, dict) and all(n in optim for n in NETWORKS)


@HOOKS.register_module()
class SCAITrainCheckHook(Hook):
    """Checks a SCAI training run and says what went wrong, naming the fix.

    - ``before_run``, with ``resume=True``: a SCAI config's ``load_from`` is the frozen
      base's checkpoint, which MMEngine would try to *resume* from (its single
      optimizer does not fit SCAI's ``OptimWrapperDict``: "Mismatched state_dict").
      The run resumes from the latest checkpoint in ``work_dir`` instead, or, if there
      is none, starts from the base.
    - ``before_train`` (after loading, before the first iteration): warns when the
      frozen base was not loaded (no ``load_from``, or a checkpoint without the base's
      weights): SCAI would learn to refine a randomly initialised model.
    - every logging interval: warns with the fraction of chain instances that had
      nothing to learn from (masked) when it is at least ``warn_masked_frac`` (the
      message names the iteration: MMEngine's logger drops repeated warnings).
    - ``after_train_epoch``: raises if no chain instance of the whole epoch (on any
      rank) had a training signal: every SCAI loss was exactly zero.

    Args:
        warn_masked_frac (float): Warn when at least this fraction of the chain
            instances of a logging interval is masked. Defaults to 0.9.
        interval (int, optional): Iterations between masked-fraction checks; default
            the ``LoggerHook``'s interval.
    """

    priority = 'VERY_HIGH'

    def __init__(self, warn_masked_frac: float = 0.9, interval: Optional[int] = None
                 ) -> None:
        self.warn_masked_frac = warn_masked_frac
        self.interval = interval
        self._masked: List[float] = []
        self._anchor: List[float] = []
        self._epoch_learnable = 0.

    @staticmethod
    def _model(runner: Runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_run(self, runner: Runner) -> None:
        if not runner._resume or runner._load_from is None:
            return
        checkpoint = _load_checkpoint(runner._load_from, map_location='cpu')
        if is_scai_training_checkpoint(checkpoint):
            return
        latest = find_latest_checkpoint(runner.work_dir)
        if latest is not None:
            runner.logger.info(
                f'SCAI: resuming from {latest}, the latest checkpoint in the work dir; '
                f'load_from={runner._load_from} is the frozen base, not a SCAI training '
                'checkpoint.')
            runner._load_from = latest
        else:
            runner.logger.warning(
                f'SCAI: resume requested but {runner.work_dir} holds no checkpoint; '
                f'training starts from the base checkpoint {runner._load_from}.')
            runner._resume = False

    def before_train(self, runner: Runner) -> None:
        if self.interval is None:
            self.interval = next((h.interval for h in runner.hooks
                                  if isinstance(h, LoggerHook)), 50)
        self._check_schedules(runner)
        found = getattr(self._model(runner), 'base_keys_loaded', None)
        if found is not None and found[0] == found[1]:
            return
        if found is None:
            resumed = ', and --resume found no checkpoint in the work dir'
            why = ('no checkpoint was loaded (load_from=None'
                   + (resumed if runner._resume else '') + ')')
        else:
            why = (f'the checkpoint {runner._load_from} holds only {found[0]} of the '
                   f'{found[1]} weights of the base (backbone, neck, wrapped head)')
        runner.logger.warning(
            f'SCAI: the frozen base model was not loaded: {why}. SCAI would train its '
            'refiner on a randomly initialised base that never changes. Set load_from to '
            'the base model\'s MMPose checkpoint, e.g. --cfg-options '
            'load_from=work_dirs/<base>/best_coco_AP_epoch_N.pth.')

    def _check_schedules(self, runner: Runner) -> None:
        """Warn when C's epoch-based lr schedule does not begin with its stage."""
        schedulers = runner.param_schedulers
        if not isinstance(schedulers, dict) or not schedulers.get('corr'):
            return
        train_cfg = getattr(self._model(runner), 'train_cfg', None) or {}
        pre = train_cfg.get('scai', {}).get('pretrain_epochs', 1)
        for s in schedulers['corr']:
            if getattr(s, 'by_epoch', False) and s.begin != pre:
                runner.logger.warning(
                    f'SCAI: C\'s lr schedule {type(s).__name__} begins at epoch {s.begin}'
                    f', C\'s stage at epoch {pre} (train_cfg.scai.pretrain_epochs), so C '
                    'does not start its stage at its configured lr. Set '
                    f'param_scheduler.corr[*].begin={pre} (and phi\'s end).')

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'scai_learnable' not in outputs:
            return
        self._epoch_learnable += float(outputs['scai_learnable'])
        self._masked.append(float(outputs['scai_masked_frac']))
        self._anchor.append(float(outputs['scai_anchor_masked_frac']))
        if not (self.every_n_train_iters(runner, self.interval)
                or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            return
        masked = sum(self._masked) / len(self._masked)
        anchor = sum(self._anchor) / len(self._anchor)
        n = len(self._masked)
        self._masked, self._anchor = [], []
        if masked >= self.warn_masked_frac:
            runner.logger.warning(
                f'SCAI: {masked:.1%} of the chain instances of the {n} iteration(s) up to '
                f'iteration {runner.iter + 1} were masked, so the SCAI losses had (nearly) nothing to learn from '
                f'({anchor:.1%} because the base\'s anchor heatmap maximum is below '
                f'min_anchor_score={self._min_anchor_score(runner)}; the rest '
                'unlabelled or non-finite). Use a trained base (load_from) or lower '
                'model.head.refiner.min_anchor_score.')

    def after_train_epoch(self, runner: Runner) -> None:
        learnable = torch.tensor(self._epoch_learnable)
        all_reduce(learnable)  # every rank raises, or none
        self._epoch_learnable = 0.
        if learnable.item() == 0:
            raise RuntimeError(
                f'SCAI: no chain instance of epoch {runner.epoch + 1} (on any rank) had a '
                'training signal: every instance was masked (anchor heatmap maximum '
                f'below min_anchor_score={self._min_anchor_score(runner)}, or no labelled '
                'chain), so every SCAI loss was exactly 0. Training stops instead of '
                'stepping on zero losses: use a trained base (load_from) or lower '
                'model.head.refiner.min_anchor_score.')

    def _min_anchor_score(self, runner: Runner) -> Optional[float]:
        refiner = getattr(getattr(self._model(runner), 'head', None), 'refiner', None)
        return getattr(refiner, 'min_anchor_score', None)
