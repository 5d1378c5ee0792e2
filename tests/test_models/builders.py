"""Tiny SCAI models and fabricated batches for the model tests."""
import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from mmpose.utils import register_all_modules
from mmpose_scai.models.utils.heatmaps import render_gaussians

register_all_modules(init_default_scope=True)

MSRA = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
UDP = dict(type='UDPHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
DARK = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2,
            unbiased=True)
PREPROCESSOR = dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True)


def base_head(codec=MSRA) -> dict:
    return dict(type='HeatmapHead', in_channels=64, out_channels=17,
                deconv_out_channels=(32, 32, 32), deconv_kernel_sizes=(4, 4, 4),
                loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec)


def backbone() -> dict:
    # a ResNet-18 cut to 64 channels keeps the tests fast; BN makes the frozen-stats test real
    return dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, ), init_cfg=None)


def tiny_base_cfg(codec=MSRA, flip_test=False) -> dict:
    return dict(type='TopdownPoseEstimator', data_preprocessor=PREPROCESSOR,
                backbone=backbone(), head=base_head(codec),
                test_cfg=dict(flip_test=flip_test, shift_heatmap=False))


def tiny_scai_cfg(codec=MSRA, flip_test=False, **head) -> dict:
    head.setdefault('refiner', dict(min_anchor_score=0.))
    return dict(type='SCAIPoseEstimator', data_preprocessor=PREPROCESSOR,
                backbone=backbone(),
                head=dict(type='SCAIHead', base_head=base_head(codec), **head),
                train_cfg=dict(scai=dict(pretrain_epochs=1, correct_epochs=1)),
                test_cfg=dict(flip_test=flip_test, shift_heatmap=False))


def build(cfg: dict):
    torch.manual_seed(0)
    return MODELS.build(cfg)


def fake_samples(n: int, seed: int = 0, heatmap_size=(24, 32)):
    """Data samples with Gaussian targets at random keypoints (all labelled)."""
    g = torch.Generator().manual_seed(seed)
    w, h = heatmap_size
    out = []
    for _ in range(n):
        coords = torch.rand(17, 2, generator=g) * torch.tensor([w - 4., h - 4.]) + 2
        s = PoseDataSample(metainfo=dict(
            input_size=(96, 128), input_center=np.array([48., 64.]),
            input_scale=np.array([96., 128.]), flip_indices=[0, 2, 1, 4, 3, 6, 5, 8, 7,
                                                             10, 9, 12, 11, 14, 13, 16, 15]))
        s.gt_instances = InstanceData(bboxes=np.array([[0., 0., 96., 128.]]),
                                      bbox_scores=np.ones(1))
        s.gt_fields = PixelData(heatmaps=render_gaussians(coords, torch.ones(17), (w, h), 2.))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 17))
        out.append(s)
    return out


def fake_batch(n: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[(torch.rand(3, 128, 96, generator=g) * 255).to(torch.uint8)
                        for _ in range(n)],
                data_samples=fake_samples(n, seed))
