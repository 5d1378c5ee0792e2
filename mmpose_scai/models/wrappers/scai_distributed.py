"""Data-parallel training of SCAI's staged networks (Φ, Γ, C) over several processes."""
from typing import Dict, List, Union

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


# MMEngine's own registry: ``Runner.wrap_model`` looks wrappers up there, not in
# MMPose's child registry.
@MODEL_WRAPPERS.register_module()
class SCAIDistributedDataParallel(MMDistributedDataParallel):
    """DDP wrapper for :class:`SCAIPoseEstimator`: each network's gradients are
    averaged over the ranks right before its optimizer step.

    ``MMDistributedDataParallel.train_step`` runs one forward through DDP and one
    ``update_params`` on one optimizer; SCAI's step is several forwards and backwards
    per iteration, each stepping a different network with its own optimizer. So
    ``train_step`` calls the estimator's staged ``train_step`` and hands it a
    ``grad_sync`` callback: after the backward of network ``name`` (Φ, Γ or C) and
    before its step, one flattened all-reduce averages that network's gradients, as
    DDP's reducer would for a single optimizer.

    Why not DDP's reducer (routing each loss through ``DDP.forward``): every stage
    uses only some networks (Γ feeds Φ's loss but is not stepped on it; C is unused
    in pre-training) and the frozen base has no gradients, so the reducer would need
    ``find_unused_parameters=True`` (a graph traversal per forward) and would still
    all-reduce the gradients leaked into networks that are not stepped. Here each
    rank all-reduces exactly the network it steps, in the same order on every rank
    (the stage and the number of rounds depend only on the epoch and iteration), so
    no unused-parameter detection is needed and ``find_unused_parameters`` has no
    effect. The networks are tiny next to the base, so the lost overlap of
    communication with the backward pass is negligible. DDP itself is kept for the
    broadcast of the initial weights from rank 0, ``module`` and ``no_sync``; no
    training forward runs through it, so its reducer stays idle.

    Per rank, each loss is the mean over that rank's chain instances, as with any
    MMPose model under DDP: the averaged gradient equals the single-process one of
    the same global batch when the ranks count the same instances.

    The ``chain_labelled`` counts of the head (which chains saw a labelled distal
    keypoint) are summed over the ranks too, so every rank's checkpoint and test-time
    chain selection match a single-process run.
    """

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One staged iteration of the wrapped estimator with averaged gradients."""
        module = self.module
        counts = getattr(module.head, 'chain_labelled', None)
        before = counts.clone() if counts is not None else None
        log_vars = module.train_step(data, optim_wrapper, grad_sync=self.average_gradients)
        if counts is not None:
            delta = counts - before
            torch_dist.all_reduce(delta, group=self.process_group)
            counts.copy_(before + delta)
        return log_vars

    def average_gradients(self, network: nn.Module) -> None:
        """Average the gradients of ``network``'s trainable parameters over the ranks.

        A parameter without a gradient on every rank keeps ``grad=None`` (so Adam
        skips it, as in one process); one with a gradient on some rank gets the sum
        over ranks divided by the world size (missing gradients count as zeros).
        """
        params: List[nn.Parameter] = [p for p in network.parameters() if p.requires_grad]
        if not params:
            return
        world = torch_dist.get_world_size(self.process_group)
        ref = params[0]
        present = torch.tensor([float(p.grad is not None) for p in params],
                               device=ref.device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                          .reshape(-1).float() for p in params] + [present])
        torch_dist.all_reduce(flat, group=self.process_group)
        grads, present = flat[:-len(params)], flat[-len(params):]
        offset = 0
        for p, seen in zip(params, present.tolist()):
            n = p.numel()
            if seen:
                grad = (grads[offset:offset + n] / world).view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = grad
                else:
                    p.grad.copy_(grad)
            offset += n
