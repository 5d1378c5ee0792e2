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

    Args:
        optim_wrapper_cfg (dict): ``dict(phi=dict(optimizer=...), gamma=..., corr=...)``,
            each an ordinary ``optim_wrapper`` config.
        paramwise_cfg (dict, optional): Applied to every network.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None
                 ) -> None:
        missing = [n for n in NETWORKS if n not in optim_wrapper_cfg]
        extra = [n for n in optim_wrapper_cfg if n not in NETWORKS]
        if missing or extra:
            raise ValueError(f'SCAI optim_wrapper needs exactly the keys {NETWORKS}; '
                             f'missing {missing}, unknown {extra}')
        self.cfgs = optim_wrapper_cfg
        self.paramwise_cfg = paramwise_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = getattr(model, 'module', model)  # unwrap DDP
        nets = model.scai_networks()
        return OptimWrapperDict(**{
            name: DefaultOptimWrapperConstructor(dict(self.cfgs[name]),
                                                 self.paramwise_cfg)(nets[name])
            for name in NETWORKS
        })
