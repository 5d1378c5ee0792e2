"""One optimizer wrapper per SCAI network, so each stage steps only its own network."""
from typing import Optional

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from mmpose.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: Optimizer names of the three networks, as keys of ``optim_wrapper``.
NETWORKS = ('phi', 'gamma', 'corr')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SCAIOptimWrapperConstructor:
    """Builds one optimizer wrapper per SCAI network (``phi``, ``gamma``, ``corr``).

    Any other top-level key of ``optim_wrapper`` (``type``, ``clip_grad``,
    ``loss_scale``, ``dtype``, ...) is a default for every network; a network's own
    config wins. (``accumulative_counts`` is not supported: MMEngine's
    ``OptimWrapperDict`` does not initialise its wrappers' counters.) So ``--amp`` of MMPose's ``tools/train.py``
    (which sets ``optim_wrapper.type='AmpOptimWrapper'`` and ``loss_scale='dynamic'``
    at the top level) makes all three wrappers ``AmpOptimWrapper``s, and
    ``optim_wrapper=dict(clip_grad=dict(max_norm=1.))`` clips each network's step.

    Args:
        optim_wrapper_cfg (dict): ``dict(phi=dict(optimizer=...), gamma=..., corr=...)``,
            each an ordinary ``optim_wrapper`` config, plus shared defaults.
        paramwise_cfg (dict, optional): Applied to every network.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None
                 ) -> None:
        missing = [n for n in NETWORKS if n not in optim_wrapper_cfg]
        if missing:
            raise ValueError(f'SCAI optim_wrapper needs the keys {NETWORKS}; missing '
                             f'{missing}')
        shared = {k: v for k, v in optim_wrapper_cfg.items() if k not in NETWORKS}
        if 'optimizer' in shared:
            raise ValueError('SCAI optim_wrapper: give each network its own optimizer '
                             f'(keys {NETWORKS}), not a top-level `optimizer`')
        self.cfgs = {name: {**shared, **optim_wrapper_cfg[name]} for name in NETWORKS}
        self.paramwise_cfg = paramwise_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)  # unwrap DDP
        nets = model.scai_networks()
        return OptimWrapperDict(**{
            name: DefaultOptimWrapperConstructor(dict(self.cfgs[name]),
                                                 self.paramwise_cfg)(nets[name])
            for name in NETWORKS
        })
