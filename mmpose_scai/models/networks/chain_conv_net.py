"""The SCAI networks on chain heatmaps: prediction Φ, fitness feedback Γ, correction C.

All three share one building block, :class:`ChainConvNet`: a small dilated FCN whose
weights are shared by every chain (a learned chain embedding tells chains apart), run on
all chains of a batch at once and at a reduced working resolution. This is what keeps the
refinement cheap next to the backbone (method spec §4, "Cost budget").
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class ChainConvNet(BaseModule):
    """Shared-weight dilated FCN over chains.

    Args:
        in_channels (int): Heatmap channels per chain (3 for Φ/Γ, 2 for C).
        num_chains (int): Number of chains G (size of the chain embedding).
        out_channels (int): Output channels per chain. Defaults to 1.
        width (int): Channels of the hidden layers.
        dilations (Sequence[int]): One 3x3 conv per entry; their dilations set the reach.
        context_channels (int): Channels of the squeezed image context f (0: none).
        feat_channels (int): Channels of the base feature map f (needed when
            ``context_channels > 0``).
        scale (int): Working resolution is the heatmap size divided by ``scale``.
        residual (bool): Return ``x[:, :, 0] + output`` (a correction network, whose
            zero-initialised output layer makes an untrained net the identity).
    """

    def __init__(self,
                 in_channels: int,
                 num_chains: int,
                 out_channels: int = 1,
                 width: int = 16,
                 dilations: Sequence[int] = (1, 2, 4, 8, 4, 1),
                 context_channels: int = 0,
                 feat_channels: int = 0,
                 scale: int = 2,
                 residual: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if context_channels and not feat_channels:
            raise ValueError('context_channels > 0 needs the base feature channels '
                             '(feat_channels); the wrapped head exposes none.')
        self.scale = scale
        self.residual = residual
        self.context_channels = context_channels
        if context_channels:
            self.squeeze = nn.Conv2d(feat_channels, context_channels, 1)
        self.embed = nn.Embedding(num_chains, width)
        nn.init.zeros_(self.embed.weight)
        self.stem = nn.Conv2d(in_channels + context_channels, width, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Conv2d(width, width, 3, padding=d, dilation=d) for d in dilations)
        self.out = nn.Conv2d(width, out_channels, 1)
        if residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def encode_context(self, feats: Optional[Tensor], size: Sequence[int]
                       ) -> Optional[Tensor]:
        """Squeeze the base feature map once per batch.

        Args:
            feats (Tensor[B, C_f, H_f, W_f] | None): Base features f.
            size (tuple): Heatmap size (h, w).

        Returns:
            Tensor[B, C_ctx, h/scale, w/scale] or None.
        """
        if not self.context_channels:
            return None
        if feats is None:
            raise ValueError('This network takes image context but no features were '
                             'given.')
        work = self._work_size(size)
        return F.relu(self.squeeze(F.adaptive_avg_pool2d(feats, work)))

    def _work_size(self, size: Sequence[int]):
        return (max(1, size[0] // self.scale), max(1, size[1] // self.scale))

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        """Run on all chains at once.

        Args:
            x (Tensor[B, G, C_in, h, w]): Chain heatmaps.
            context (Tensor[B, C_ctx, h', w'] | None): From :meth:`encode_context`.

        Returns:
            Tensor[B, G, out_channels, h, w] (``out_channels`` squeezed when 1).
        """
        b, g, c, h, w = x.shape
        y = x.reshape(b * g, c, h, w)
        work = self._work_size((h, w))
        if work != (h, w):
            y = F.adaptive_avg_pool2d(y, work)
        if context is not None:
            y = torch.cat([y, context.repeat_interleave(g, dim=0)], dim=1)
        emb = self.embed.weight[:g].repeat(b, 1)[:, :, None, None]
        y = F.relu(self.stem(y) + emb)
        for conv in self.body:
            y = F.relu(conv(y))
        y = self.out(y)
        if work != (h, w):
            y = F.interpolate(y, size=(h, w), mode='bilinear', align_corners=False)
        y = y.reshape(b, g, -1, h, w)
        if self.residual:
            y = x[:, :, :1] + y
        return y[:, :, 0] if y.shape[2] == 1 else y
