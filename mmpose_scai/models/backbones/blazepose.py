"""BlazePose-GHUM landmark model (heatmap branch) as an MMPose backbone.

The heavy landmark model of MediaPipe Pose (``pose_landmark_heavy.tflite``) is a
MobileNetV2-like encoder (inverted residual blocks with ReLU6, BatchNorm folded into the
convolutions) and an FPN-like decoder that adds 48-channel lateral maps to bilinear x2
upsamplings, back to 1/4 of the input. The model's heatmap layer is a 1x1 convolution of
that 48-channel map; here it belongs to the head (see :class:`SigmoidConv2d`), so the
backbone's output is the context f that a :class:`SCAIHead` reads.

The full and lite landmark models have the same layout, shallower and narrower (lite's
decoder is 32 channels wide). Weights come from the ``.tflite`` files, see
``tools/model_converters/blazepose2mmpose.py``.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor

from mmpose.models.backbones.base_backbone import BaseBackbone
from mmpose.registry import MODELS

# Per stage, (out_channels, mid_channels, kernel_size, stride) of each inverted residual
# block; read off the tflite graphs (stage i ends at 1/2^(i+2) of the input).
ARCH_SETTINGS = {
    'heavy': dict(
        stem_channels=(24, 24),
        stages=[
            [(32, 96, 3, 2), (32, 128, 3, 1), (32, 192, 3, 1), (32, 192, 3, 1)],
            [(56, 192, 5, 2)] + [(56, 336, 5, 1)] * 3,
            [(112, 336, 3, 2)] + [(112, 672, 3, 1)] * 5 + [(160, 672, 5, 1)] +
            [(160, 960, 5, 1)] * 5,
            [(272, 960, 5, 2)] + [(272, 1632, 5, 1)] * 7,
        ],
        top_channels=1632,
        out_channels=48),
    'full': dict(
        stem_channels=(24, 16),
        stages=[
            [(24, 64, 3, 2), (24, 144, 3, 1)],
            [(32, 144, 5, 2), (32, 192, 5, 1)],
            [(64, 192, 3, 2), (64, 384, 3, 1), (64, 384, 3, 1), (88, 384, 5, 1),
             (88, 528, 5, 1), (88, 528, 5, 1)],
            [(144, 528, 5, 2)] + [(144, 864, 5, 1)] * 3,
        ],
        top_channels=864,
        out_channels=48),
    'lite': dict(
        stem_channels=(24, 8),
        stages=[
            [(16, 32, 3, 2), (16, 96, 3, 1)],
            [(24, 96, 5, 2), (24, 144, 5, 1)],
            [(40, 144, 3, 2), (40, 240, 3, 1), (40, 240, 3, 1), (56, 240, 5, 1),
             (56, 336, 5, 1), (56, 336, 5, 1)],
            [(96, 336, 5, 2)] + [(96, 576, 5, 1)] * 3,
        ],
        top_channels=576,
        out_channels=32),
}


def conv(in_channels: int,
         out_channels: int,
         kernel_size: int = 1,
         stride: int = 1,
         groups: int = 1,
         relu6: bool = True) -> nn.Sequential:
    """Conv (bias, BN folded) + optional ReLU6; 'same' padding as in the tflite graph.

    The graph pads stride-2 layers explicitly and symmetrically (1 for 3x3, 2 for 5x5),
    which is PyTorch's ``padding=k // 2`` too.
    """
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                  groups=groups)
    ]
    if relu6:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


def dw_conv(channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Depthwise conv + ReLU6."""
    return conv(channels, channels, kernel_size, stride, groups=channels)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> kxk depthwise (ReLU6) -> 1x1 project (linear), plus the
    input when the shape is kept.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int): Expanded channels; equal to ``in_channels`` for no
            expansion layer.
        kernel_size (int): Depthwise kernel size.
        stride (int): Depthwise stride.
        residual (bool): Add the input (only when the shape is kept).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 residual: bool = True) -> None:
        super().__init__()
        layers = []
        if mid_channels != in_channels:
            layers.append(conv(in_channels, mid_channels))
        layers += [
            dw_conv(mid_channels, kernel_size, stride),
            conv(mid_channels, out_channels, relu6=False)
        ]
        self.layers = nn.Sequential(*layers)
        self.residual = residual and stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(x)
        return x + out if self.residual else out


@MODELS.register_module()
class BlazePoseGHUM(BaseBackbone):
    """The heatmap branch of BlazePose-GHUM's landmark model, up to its last feature map.

    Input is an RGB crop in [0, 1] (``mean=0, std=255`` in the data preprocessor), of
    256x256 for the released weights.

    Args:
        arch (str): ``'heavy'`` (10.46 M parameters, 48 output channels), ``'full'``
            (48 channels) or ``'lite'`` (32 channels), after the three landmark models.
        init_cfg (dict, optional): Init config, e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')`` for a converted checkpoint.

    Example:
        >>> model = BlazePoseGHUM().eval()
        >>> model(torch.rand(1, 3, 256, 256))[0].shape
        torch.Size([1, 48, 64, 64])
    """

    def __init__(self, arch: str = 'heavy', init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in ARCH_SETTINGS:
            raise KeyError(f'Unknown BlazePose arch {arch!r}; '
                           f'choose from {list(ARCH_SETTINGS)}.')
        cfg = ARCH_SETTINGS[arch]
        self.arch = arch
        c0, c = cfg['stem_channels']
        # 1/2: a strided 3x3 conv and a depthwise-separable block without residual
        self.stem = nn.Sequential(
            conv(3, c0, 3, stride=2), InvertedResidual(c0, c, c0, residual=False))
        self.stages = nn.ModuleList()
        for blocks in cfg['stages']:
            layers = []
            for out_c, mid_c, k, s in blocks:
                layers.append(InvertedResidual(c, out_c, mid_c, k, s))
                c = out_c
            self.stages.append(nn.Sequential(*layers))
        out = cfg['out_channels']
        # 1/32: expand, two depthwise 3x3, project to the decoder width
        top = cfg['top_channels']
        self.top = nn.Sequential(
            conv(c, top), dw_conv(top), dw_conv(top), conv(top, out))
        # lateral maps of the 1/4, 1/8 and 1/16 stages
        self.laterals = nn.ModuleList(
            nn.Sequential(dw_conv(blocks[-1][0]), conv(blocks[-1][0], out))
            for blocks in cfg['stages'][:-1])
        self.out_channels = out

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Tensor[B, 3, 256, 256] (RGB in [0, 1]) -> (Tensor[B, 48, 64, 64],) (32
        channels for ``'lite'``)."""
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        x = self.top(x)
        for lateral, feat in zip(self.laterals[::-1], feats[-2::-1]):
            # tflite RESIZE_BILINEAR with half_pixel_centers=True, align_corners=False
            x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
            x = x + lateral(feat)
        return (x, )

    def train(self, mode: bool = True) -> 'BlazePoseGHUM':
        super().train(mode)
        return self  # BaseBackbone.train returns None, which breaks `.eval()` chaining

    def convs_in_order(self) -> Tuple[List[nn.Conv2d], List[List[nn.Conv2d]]]:
        """The encoder's and top block's convolutions in data-flow order, and each
        lateral's (finest first): the order the ``.tflite`` converter fills them."""

        def convs(module: nn.Module) -> List[nn.Conv2d]:
            return [m for m in module.modules() if isinstance(m, nn.Conv2d)]

        trunk = convs(self.stem) + convs(self.stages) + convs(self.top)
        return trunk, [convs(lateral) for lateral in self.laterals]


@MMENGINE_MODELS.register_module()
class SigmoidConv2d(nn.Conv2d):
    """A Conv2d followed by a sigmoid, as the heatmap head's ``final_layer``.

    BlazePose's heatmap layer outputs logits (about -90 ... +4), trained with a
    per-pixel sigmoid. MMPose's codecs read a heatmap's maximum as the keypoint score,
    and SCAI's networks, targets and ``min_anchor_score`` assume heatmaps in [0, 1];
    the sigmoid gives both (score = sigmoid of the peak logit; the argmax and the
    quarter-pixel shift of the MSRA decoder are unchanged by a monotone map). Being a
    Conv2d, it keeps ``final_layer.in_channels`` and the ``weight``/``bias`` keys.

    Use as ``HeatmapHead(..., final_layer=dict(type='SigmoidConv2d', kernel_size=1))``.
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(super().forward(x))

