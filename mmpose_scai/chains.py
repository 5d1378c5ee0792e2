"""Keypoint chains A -> B -> C -> D (proximal to distal), resolved by keypoint name.

One :class:`KeypointChains` object serves every network, loss and adapter: it turns a
dataset's keypoint names into index tensors and never hard-codes keypoint ids.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.registry import Registry

#: Built-in chain layouts, looked up by name (``chains=dict(layout='coco')``).
CHAIN_LAYOUTS = Registry('scai chain layout')

SLOTS = ('A', 'B', 'C', 'D')


def _limbs(anchor: str) -> Dict[str, Tuple[str, str, str, str]]:
    """The four limb chains shared by the COCO, CrowdPose and MPII layouts."""
    return dict(
        left_arm=(anchor, 'left_shoulder', 'left_elbow', 'left_wrist'),
        right_arm=(anchor, 'right_shoulder', 'right_elbow', 'right_wrist'),
        left_leg=(anchor, 'left_hip', 'left_knee', 'left_ankle'),
        right_leg=(anchor, 'right_hip', 'right_knee', 'right_ankle'))


@CHAIN_LAYOUTS.register_module('coco')
def coco_layout() -> dict:
    """COCO-17: six chains from a neck synthesized as the shoulders' midpoint."""
    chains = _limbs('neck')
    chains.update(
        left_head=('neck', 'nose', 'left_eye', 'left_ear'),
        right_head=('neck', 'nose', 'right_eye', 'right_ear'))
    return dict(chains=chains, virtual=dict(neck=('left_shoulder', 'right_shoulder')))


@CHAIN_LAYOUTS.register_module('crowdpose')
def crowdpose_layout() -> dict:
    """CrowdPose-14: four limb chains from its real ``neck``."""
    return dict(chains=_limbs('neck'), virtual=dict())


@CHAIN_LAYOUTS.register_module('mpii')
def mpii_layout() -> dict:
    """MPII-16: four limb chains sharing ``thorax`` as the anchor."""
    return dict(chains=_limbs('thorax'), virtual=dict())


class KeypointChains:
    """Chains of four keypoints resolved against a dataset's keypoint names.

    Virtual keypoints (e.g. the COCO neck) are the midpoint of two real keypoints; they are
    appended after the K real ones, so chain indices address ``K + V`` slots.

    Args:
        keypoint_names (Sequence[str]): The dataset's keypoint names, in id order.
        layout (str, optional): A registered layout (``'coco'``, ``'crowdpose'``,
            ``'mpii'``). Ignored where ``chains`` is given.
        chains (dict, optional): User chains ``{name: (A, B, C, D)}`` by keypoint name.
        virtual (dict, optional): User virtual keypoints ``{name: (kpt1, kpt2)}``
            placed at the midpoint of two real keypoints.
        disabled (Sequence[str]): Chains that pass the base prediction through.

    Raises:
        ValueError: on a layout with no chains, an unknown layout, or a chain naming a
            keypoint the dataset lacks.
    """

    def __init__(self,
                 keypoint_names: Sequence[str],
                 layout: Optional[str] = 'coco',
                 chains: Optional[Dict[str, Sequence[str]]] = None,
                 virtual: Optional[Dict[str, Sequence[str]]] = None,
                 disabled: Sequence[str] = ()) -> None:
        source = f'chains={chains!r}' if chains is not None else f'layout {layout!r}'
        if chains is None:
            if layout not in CHAIN_LAYOUTS:
                raise ValueError(f'Unknown chain layout {layout!r}; known layouts: '
                                 f'{sorted(CHAIN_LAYOUTS.module_dict)}, or pass `chains`.')
            spec = CHAIN_LAYOUTS.get(layout)()
            chains, virtual = spec['chains'], {**spec['virtual'], **(virtual or {})}
        virtual = dict(virtual or {})
        if not chains:
            raise ValueError(f'The chain config ({source}) defines no chains; SCAI needs '
                             'at least one chain A -> B -> C -> D.')

        self.keypoint_names = list(keypoint_names)
        self.num_keypoints = len(self.keypoint_names)
        name2id = {n: i for i, n in enumerate(self.keypoint_names)}

        self.virtual_names = [n for n in virtual if n not in name2id]
        pairs = []
        for name in self.virtual_names:
            pair = virtual[name]
            missing = [k for k in pair if k not in name2id]
            if len(pair) != 2 or missing:
                raise ValueError(f'Virtual keypoint {name!r} must be the midpoint of two '
                                 f'keypoints of the dataset; got {tuple(pair)}, missing '
                                 f'{missing}. Dataset keypoints: {self.keypoint_names}')
            pairs.append([name2id[k] for k in pair])
        for i, name in enumerate(self.virtual_names):
            name2id[name] = self.num_keypoints + i

        self.names = list(chains)
        index = []
        for name, kpts in chains.items():
            if len(kpts) != 4:
                raise ValueError(f'Chain {name!r} needs four keypoints (A, B, C, D), '
                                 f'got {tuple(kpts)}')
            missing = [k for k in kpts if k not in name2id]
            if missing:
                raise ValueError(
                    f'Chain {name!r} names keypoints the dataset lacks: {missing}. '
                    f'Dataset keypoints: {self.keypoint_names}; virtual: '
                    f'{self.virtual_names}')
            if any(name2id[k] >= self.num_keypoints for k in kpts[1:]):
                raise ValueError(f'Chain {name!r}: only slot A may be a virtual keypoint.')
            index.append([name2id[k] for k in kpts])
        unknown = set(disabled) - set(self.names)
        if unknown:
            raise ValueError(f'Cannot disable unknown chains {sorted(unknown)}; chains are '
                             f'{self.names}')

        #: LongTensor[G, 4]: slot indices into the K + V extended keypoints.
        self.index = torch.tensor(index, dtype=torch.long)
        #: LongTensor[V, 2]: the two real keypoints of each virtual keypoint.
        self.virtual_pairs = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        #: BoolTensor[G]: chains configured to pass the base prediction through.
        self.enabled = torch.tensor([n not in disabled for n in self.names])

    @property
    def num_chains(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        names = self.keypoint_names + self.virtual_names
        body = ', '.join(f'{n}: ' + '->'.join(names[i] for i in idx)
                         for n, idx in zip(self.names, self.index.tolist()))
        return f'{self.__class__.__name__}({body})'

    def extend(self, values: torch.Tensor, virtual_values: torch.Tensor) -> torch.Tensor:
        """Append per-virtual-keypoint values along dim 1: ``[B, K, ...] -> [B, K+V, ...]``."""
        return torch.cat([values, virtual_values], dim=1)

    def gather(self, values: torch.Tensor, slots: Union[str, Sequence[str]] = SLOTS
               ) -> torch.Tensor:
        """Gather chain slots from extended keypoint values.

        Args:
            values (Tensor[B, K+V, ...]): Per-keypoint values (heatmaps, weights, ...).
            slots (str | Sequence[str]): Which slots, e.g. ``'D'`` or ``'ABC'``.

        Returns:
            Tensor[B, G, S, ...] (or Tensor[B, G, ...] for a single slot name).
        """
        cols = [SLOTS.index(s) for s in slots]
        idx = self.index[:, cols].to(values.device)
        out = values[:, idx.reshape(-1)]
        out = out.reshape(values.shape[0], self.num_chains, len(cols), *values.shape[2:])
        return out[:, :, 0] if isinstance(slots, str) and len(slots) == 1 else out

    def scatter_mean(self, base: torch.Tensor, chain_values: torch.Tensor, slot: str,
                     mask: torch.Tensor) -> torch.Tensor:
        """Write per-chain values of one slot back into per-keypoint values.

        A keypoint shared by several chains in this slot (the COCO nose) gets the mean of
        the chains that were updated; keypoints of masked chains keep ``base``.

        Args:
            base (Tensor[B, K, ...]): Values to start from.
            chain_values (Tensor[B, G, ...]): New values of ``slot`` per chain.
            slot (str): ``'B'``, ``'C'`` or ``'D'``.
            mask (BoolTensor[B, G]): Which chain values to write.

        Returns:
            Tensor[B, K, ...]
        """
        idx = self.index[:, SLOTS.index(slot)].to(base.device)
        extra = (1, ) * (base.ndim - 2)
        w = mask.to(base.dtype)
        total = torch.zeros_like(base).index_add(
            1, idx, chain_values * w.reshape(*w.shape, *extra))
        count = torch.zeros(base.shape[:2], dtype=base.dtype,
                            device=base.device).index_add(1, idx, w)
        count = count.reshape(*count.shape, *extra)
        return torch.where(count > 0, total / count.clamp(min=1), base)

    def keypoint_chain_matrix(self, slots: str = 'BCD') -> torch.Tensor:
        """Tensor[K, G]: row k averages over the chains holding keypoint k in ``slots``.

        Rows of keypoints in no chain are all zero.
        """
        m = torch.zeros(self.num_keypoints, self.num_chains)
        for g, idx in enumerate(self.index.tolist()):
            for s in slots:
                m[idx[SLOTS.index(s)], g] = 1.
        return m / m.sum(1, keepdim=True).clamp(min=1)

    def per_keypoint(self, chain_values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Spread per-chain values to keypoints (mean over chains, NaN where none valid).

        Args:
            chain_values (Tensor[B, G]): e.g. the self-referential error E_s.
            valid (BoolTensor[B, G]): chains with a meaningful value.

        Returns:
            Tensor[B, K]
        """
        m = (self.keypoint_chain_matrix() > 0).to(chain_values)
        w = valid.to(chain_values)
        num = (torch.nan_to_num(chain_values) * w) @ m.T
        den = w @ m.T
        return torch.where(den > 0, num / den.clamp(min=1e-12),
                           torch.full_like(num, float('nan')))


__all__ = ['CHAIN_LAYOUTS', 'KeypointChains', 'SLOTS']
