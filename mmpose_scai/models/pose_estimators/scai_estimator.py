"""SCAIPoseEstimator: a top-down estimator that trains only the SCAI networks, by stage."""
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict
from torch import nn

from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.registry import MODELS

from ...structures import ChainInputs, ChainTargets
from ..heads.scai_head import REFINER_KEYS, scai_head_key


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

    Each network's step runs under its own wrapper (AMP, ``clip_grad``); several
    processes train it through :class:`SCAIDistributedDataParallel`, which averages
    each network's gradients before its step.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self.head, 'refiner'):
            raise TypeError('SCAIPoseEstimator needs head=dict(type="SCAIHead", ...), got '
                            f'{type(self.head).__name__}')
        for module in self.frozen_modules():
            module.requires_grad_(False)
        #: (found, expected) base weights of the last state dict loaded; None: none yet
        self.base_keys_loaded: Optional[Tuple[int, int]] = None
        self._register_load_state_dict_pre_hook(self._note_base_keys)

    def frozen_modules(self) -> List[nn.Module]:
        """The base model: backbone, neck and the wrapped head."""
        mods = [self.backbone, self.head.base_head]
        return mods + ([self.neck] if self.with_neck else [])

    def base_keys(self) -> List[str]:
        """State-dict keys of the frozen base (backbone, neck, wrapped head)."""
        own = tuple('head.' + k for k in REFINER_KEYS)
        return [k for k in self.state_dict() if not k.startswith(own)
                and not k.startswith('data_preprocessor.')]

    def _note_base_keys(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Count the base weights in a state dict being loaded (an MMPose checkpoint
        names the wrapped head's keys ``head.X``, a SCAI one ``head.base_head.X``)."""
        keys = set()
        for key in state_dict:
            if not key.startswith(prefix):
                continue
            key = key[len(prefix):]
            if key.startswith('head.'):
                key = 'head.' + scai_head_key(key[len('head.'):])
            keys.add(key)
        expected = self.base_keys()
        self.base_keys_loaded = (sum(k in keys for k in expected), len(expected))

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
        """The training stage of the current epoch (from MMEngine's message hub).

        The number of multi-round rounds is drawn from a generator seeded by the
        iteration, so every rank draws the same R and a resumed run the same as an
        uninterrupted one.
        """
        cfg = dict(pretrain_epochs=1, correct_epochs=1, max_rounds=3)
        cfg.update((self.train_cfg or {}).get('scai', {}))
        hub = MessageHub.get_current_instance()
        epoch = hub.get_info('epoch', 0)
        if epoch < cfg['pretrain_epochs']:
            return dict(name='pretrain', rounds=0)
        if epoch < cfg['pretrain_epochs'] + cfg['correct_epochs']:
            return dict(name='correct', rounds=1)
        gen = torch.Generator().manual_seed(int(hub.get_info('iter', 0)))
        rounds = int(torch.randint(1, cfg['max_rounds'] + 1, (), generator=gen).item())
        return dict(name='multi_round', rounds=rounds)

    def train_step(self,
                   data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict,
                   grad_sync: Optional[Callable[[nn.Module], None]] = None
                   ) -> Dict[str, torch.Tensor]:
        """One iteration of the current stage; returns the log variables.

        Each network's losses are computed inside its own wrapper's ``optim_context``
        (AMP autocast, e.g. ``--amp``), and its update goes through that wrapper
        (loss scaling, ``clip_grad``). The backward reaches only the stepped network's
        parameters, so the others' gradients (e.g. Γ's in Φ's loss) stay untouched.

        Args:
            data (dict | tuple | list): A batch from the dataloader.
            optim_wrapper (OptimWrapperDict): Keys ``phi``, ``gamma``, ``corr``.
            grad_sync (Callable, optional): Called with the network about to be
                stepped, after its backward: :class:`SCAIDistributedDataParallel`
                averages its gradients over the ranks there.
        """
        if not isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError('SCAIPoseEstimator trains three networks with their own '
                            'optimizers: set optim_wrapper = dict(constructor='
                            '"SCAIOptimWrapperConstructor", phi=..., gamma=..., corr=...)')
        stage = self.stage()
        first = 'phi' if stage['name'] == 'pretrain' else 'corr'
        with optim_wrapper[first].optim_context(self):
            data = self.data_preprocessor(data, True)
            with torch.no_grad():
                feats = self.extract_feat(data['inputs'])
            inp, tgt, f = self.head.prepare_train(feats, data['data_samples'])
        f = f.float()  # a network trained without autocast takes float32 features
        gamma_uses_lc = (self.train_cfg or {}).get('scai', {}).get('gamma_uses_lc', False)
        head, nets = self.head, self.scai_networks()
        log_vars: Dict[str, torch.Tensor] = self.mask_stats(inp, tgt)

        def step(name: str, loss_fn: Callable[[], Dict[str, torch.Tensor]]) -> None:
            wrapper = optim_wrapper[name]
            with wrapper.optim_context(self):
                loss, logs = self.parse_losses(loss_fn())
            params = [p for p in nets[name].parameters() if p.requires_grad]
            wrapper.backward(wrapper.scale_loss(loss), inputs=params)
            if wrapper.should_update():
                if grad_sync is not None:
                    grad_sync(nets[name])
                wrapper.step()
                wrapper.zero_grad()
            log_vars.update(logs)

        if stage['name'] == 'pretrain':
            step('phi', lambda: head.loss_phi(inp, tgt, f))
            step('gamma', lambda: head.loss_gamma(inp, tgt, f))
        else:
            state = []

            def corr_losses() -> Dict[str, torch.Tensor]:
                losses, corrected = head.loss_correction(inp, tgt, f, stage['rounds'])
                state.append(corrected)
                return losses

            def gamma_losses() -> Dict[str, torch.Tensor]:
                losses = head.loss_gamma(inp, tgt, f, state=state[0])
                if gamma_uses_lc:
                    again, _ = head.loss_correction(inp, tgt, f, stage['rounds'])
                    losses['loss_gamma_lc'] = again['loss_corr']
                return losses

            step('corr', corr_losses)
            step('gamma', gamma_losses)
        log_vars['scai_stage'] = torch.tensor(float(
            ('pretrain', 'correct', 'multi_round').index(stage['name'])))
        return log_vars

    @staticmethod
    def mask_stats(inp: ChainInputs, tgt: ChainTargets) -> Dict[str, torch.Tensor]:
        """Log variables on the chain instances (instance x enabled chain) the losses
        can learn from: ``scai_learnable`` (their number) and ``scai_masked_frac``
        (the fraction masked: unlabelled, or the base's anchor heatmap maximum below
        ``min_anchor_score``, or non-finite heatmaps)."""
        total = tgt.mask.numel()
        learnable = tgt.mask.sum().float()
        return dict(scai_learnable=learnable.detach(),
                    scai_masked_frac=(1 - learnable / max(total, 1)).detach(),
                    scai_anchor_masked_frac=(~inp.valid).float().mean().detach())
