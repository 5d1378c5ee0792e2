"""SCAIPoseEstimator: a top-down estimator that trains only the SCAI networks, by stage."""
from typing import Dict, List, Union

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict
from torch import nn

from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.registry import MODELS



@MODELS.register_module()
class SCAIPoseEstimator(TopdownPoseEstimator):
    """Top-down estimator whose frozen base feeds a :class:`SCAIHead`.

    Backbone, neck and the wrapped head get no gradient and keep their BatchNorm
    statistics. ``train_step`` steps Φ, Γ and C with their own optimizers
    (``optim_wrapper`` with keys ``phi``, ``gamma``, ``corr``, built by
    :class:`SCAIOptimWrapperConstructor`) and follows the schedule of
    ``train_cfg['scai']``:

    - epochs ``[0, pretrain_epochs)``: Φ and Γ alternating on L_Φ, L_Γ;
    - the next ``correct_epochs``: C on L_C (Γ on L_Γ of corrected inputs, or on
      L_C + L_Γ with ``gamma_uses_lc=True``);
    - the remaining epochs: the same with ``R ~ U{1..max_rounds}`` unrolled rounds.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.head, 'refiner'):
            raise TypeError('SCAIPoseEstimator needs head=dict(type="SCAIHead", ...), got '
                            f'{type(self.head).__name__}')
        for module in self.frozen_modules():
            module.requires_grad_(False)

    def frozen_modules(self) -> List[nn.Module]:
        """The base model: backbone, neck and the wrapped head."""
        mods = [self.backbone, self.head.base_head]
        return mods + ([self.neck] if self.with_neck else [])

    def train(self, mode: bool = True) -> 'SCAIPoseEstimator':
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def scai_networks(self) -> Dict[str, nn.Module]:
        """The trainable networks by optimizer name."""
        refiner = self.head.refiner
        return dict(phi=refiner.phi, gamma=refiner.gamma, corr=refiner.corr)

    def stage(self) -> Dict[str, Union[str, int]]:
        """The training stage of the current epoch (from MMEngine's message hub)."""
        cfg = dict(pretrain_epochs=1, correct_epochs=1, max_rounds=3)
        cfg.update((self.train_cfg or {}).get('scai', {}))
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        if epoch < cfg['pretrain_epochs']:
            return dict(name='pretrain', rounds=0)
        if epoch < cfg['pretrain_epochs'] + cfg['correct_epochs']:
            return dict(name='correct', rounds=1)
        rounds = int(torch.randint(1, cfg['max_rounds'] + 1, ()).item())
        return dict(name='multi_round', rounds=rounds)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One iteration of the current stage; returns the log variables."""
        if not isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError('SCAIPoseEstimator trains three networks with their own '
                            'optimizers: set optim_wrapper = dict(constructor='
                            '"SCAIOptimWrapperConstructor", phi=..., gamma=..., corr=...)')
        data = self.data_preprocessor(data, True)
        with torch.no_grad():
            feats = self.extract_feat(data['inputs'])
        head = self.head
        inp, tgt, f = head.prepare_train(feats, data['data_samples'])
        stage = self.stage()
        gamma_uses_lc = (self.train_cfg or {}).get('scai', {}).get('gamma_uses_lc', False)
        log_vars: Dict[str, torch.Tensor] = {}

        def step(name: str, losses: Dict[str, torch.Tensor]) -> None:
            loss, logs = self.parse_losses(losses)
            optim_wrapper.zero_grad()  # drop gradients leaked into the other networks
            optim_wrapper[name].update_params(loss)
            log_vars.update(logs)

        if stage['name'] == 'pretrain':
            step('phi', head.loss_phi(inp, tgt, f))
            step('gamma', head.loss_gamma(inp, tgt, f))
        else:
            losses, state = head.loss_correction(inp, tgt, f, stage['rounds'])
            step('corr', losses)
            gamma_losses = head.loss_gamma(inp, tgt, f, state=state)
            if gamma_uses_lc:
                again, _ = head.loss_correction(inp, tgt, f, stage['rounds'])
                gamma_losses['loss_gamma_lc'] = again['loss_corr']
            step('gamma', gamma_losses)
        log_vars['scai_stage'] = torch.tensor(float(
            ('pretrain', 'correct', 'multi_round').index(stage['name'])))
        return log_vars
