"""Heatmap helpers: sub-pixel peaks, Gaussian rendering, virtual keypoints, the
wrapped head's forward with its features, the flip-test average."""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmpose.models.utils.tta import flip_heatmaps
from ...chains import KeypointChains


def heatmap_peaks(heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
    """Sub-pixel peak of each heatmap: the argmax refined by a log-parabola fit.

    The fit through the log values at the argmax and its neighbours is exact for a
    Gaussian, so rendered targets give back their keypoint.

    Args:
        heatmaps (Tensor[..., h, w]): Heatmaps.

    Returns:
        tuple:
        - coords (Tensor[..., 2]): (x, y) in heatmap pixels.
        - maxvals (Tensor[...]): the heatmap maximum.
    """
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h, w)
    maxvals, idx = flat.reshape(flat.shape[0], -1).max(dim=1)
    ix, iy = idx % w, torch.div(idx, w, rounding_mode='floor')
    rows = torch.arange(flat.shape[0], device=flat.device)

    def offset(at, size, pick):
        lo, hi = (at - 1).clamp(min=0), (at + 1).clamp(max=size - 1)
        logs = [pick(p).clamp(min=1e-10).log() for p in (lo, at, hi)]
        curv = logs[0] - 2 * logs[1] + logs[2]
        off = 0.5 * (logs[0] - logs[2]) / curv.clamp(max=-1e-6)
        inner = (at > 0) & (at < size - 1) & torch.isfinite(off)
        return torch.where(inner, off.clamp(-0.5, 0.5), torch.zeros_like(off))

    x = ix.float() + offset(ix, w, lambda c: flat[rows, iy, c])
    y = iy.float() + offset(iy, h, lambda r: flat[rows, r, ix])
    coords = torch.stack([x, y], dim=-1)
    return coords.reshape(*lead, 2), maxvals.reshape(lead)


def render_gaussians(coords: Tensor, amplitude: Tensor, size: Tuple[int, int],
                     sigma: float) -> Tensor:
    """Render one Gaussian per point.

    Args:
        coords (Tensor[..., 2]): (x, y) in heatmap pixels.
        amplitude (Tensor[...]): peak value of each Gaussian.
        size (tuple): heatmap size (w, h).
        sigma (float): Gaussian sigma in heatmap pixels.

    Returns:
        Tensor[..., h, w]
    """
    w, h = size
    xs = torch.arange(w, device=coords.device, dtype=coords.dtype)
    ys = torch.arange(h, device=coords.device, dtype=coords.dtype)
    gx = torch.exp(-(xs - coords[..., 0:1])**2 / (2 * sigma**2))
    gy = torch.exp(-(ys - coords[..., 1:2])**2 / (2 * sigma**2))
    return amplitude[..., None, None] * gy[..., :, None] * gx[..., None, :]


def virtual_heatmaps(heatmaps: Tensor, chains: KeypointChains, sigma: float
                     ) -> Tensor:
    """Heatmaps of the virtual keypoints (e.g. the COCO neck) from their two sources.

    The Gaussian sits at the midpoint of the two peaks, with the smaller peak value as
    amplitude, so an uncertain shoulder makes an uncertain neck.

    Args:
        heatmaps (Tensor[B, K, h, w]): Base (or target) heatmaps.
        chains (KeypointChains): Defines the virtual keypoints.
        sigma (float): The codec's Gaussian sigma.

    Returns:
        Tensor[B, V, h, w]
    """
    b, _, h, w = heatmaps.shape
    pairs = chains.virtual_pairs.to(heatmaps.device)
    if pairs.numel() == 0:
        return heatmaps.new_zeros(b, 0, h, w)
    coords, maxvals = heatmap_peaks(heatmaps[:, pairs.reshape(-1)].reshape(b, -1, 2, h, w))
    return render_gaussians(coords.mean(2), maxvals.min(2).values.clamp(min=0), (w, h),
                            sigma)


def forward_with_features(head: nn.Module, feats: Tuple[Tensor, ...]
                          ) -> Tuple[Tensor, Optional[Tensor]]:
    """Run a heatmap head's own ``forward`` and keep the input f of its final layer.

    Returns:
        tuple: heatmaps (Tensor[B, K, h, w]) and f (Tensor[B, C_f, h, w]; None if the
        final layer was not called).
    """
    captured = []
    hook = head.final_layer.register_forward_pre_hook(
        lambda module, args: captured.append(args[0]))
    try:
        heatmaps = head.forward(feats)
    finally:
        hook.remove()
    return heatmaps, (captured[-1] if captured else None)


def flip_average(heatmaps: Tensor, flipped: Tensor, flip_indices: Sequence[int],
                 test_cfg: dict, decoder: Optional[object] = None) -> Tensor:
    """The flip-test average of a heatmap head, Tensor[B, K, h, w].

    ``flipped`` (the heatmaps of the mirrored input) is flipped back with the
    ``flip_mode`` and ``shift_heatmap`` of ``test_cfg``. Without ``shift_heatmap`` it
    follows MMPose's configs: MSRA-style codecs shift by one pixel, ``UDPHeatmap`` does
    not.
    """
    shift = test_cfg.get('shift_heatmap', type(decoder).__name__ != 'UDPHeatmap')
    back = flip_heatmaps(flipped, flip_mode=test_cfg.get('flip_mode', 'heatmap'),
                         flip_indices=flip_indices, shift_heatmap=shift)
    return (heatmaps + back) * 0.5
