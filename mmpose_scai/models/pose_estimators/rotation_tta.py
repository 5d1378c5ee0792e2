"""Test-time choice among 4 rotations of the crop, for bases that expect upright persons.

BlazePose was trained on upright persons; LSPET has many inverted (gymnastics) poses.
With ``test_cfg=dict(rotation_tta=True)`` the crop is also run rotated by 90, 180 and
270 degrees and, per instance, the rotation whose limb keypoints have the highest mean
score (the heatmap peaks) is kept; its keypoints are rotated back exactly (the crop is
rotated pixel by pixel, so no interpolation is involved). Off by default.
"""
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import PixelData
from torch import Tensor

from mmpose.models.pose_estimators import TopdownPoseEstimator
from mmpose.registry import MODELS
from mmpose.utils.typing import SampleList

COCO_LIMBS = tuple(range(5, 17))  # shoulders ... ankles


def unrotate_keypoints(keypoints: Tensor, k: int, size: int) -> Tensor:
    """Keypoints found in ``torch.rot90(crop, k, dims=(2, 3))`` -> in ``crop``.

    Args:
        keypoints (Tensor[..., 2]): (x, y) in the rotated crop's pixels.
        k (int): Quarter turns applied to the crop.
        size (int): Side of the square crop (pixel centres at 0 ... size - 1).
    """
    for _ in range(k % 4):  # one torch.rot90 step moves (x, y) to (y, size - 1 - x)
        keypoints = torch.stack([size - 1 - keypoints[..., 1], keypoints[..., 0]], -1)
    return keypoints


@MODELS.register_module()
class RotationTTAPoseEstimator(TopdownPoseEstimator):
    """A :class:`TopdownPoseEstimator` with an optional 4-rotation test-time choice.

    ``test_cfg`` adds ``rotation_tta`` (bool, default False) and ``rotation_keypoints``
    (the keypoint indices whose mean score picks the rotation; default the 12 COCO limb
    joints). Works with ``flip_test``; needs a square input.
    """

    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        if not self.test_cfg.get('rotation_tta', False):
            return super().predict(inputs, data_samples)
        size = inputs.shape[-1]
        if inputs.shape[-2] != size:
            raise ValueError('rotation_tta needs a square input, got '
                             f'{tuple(inputs.shape[-2:])}.')
        limbs: Sequence[int] = self.test_cfg.get('rotation_keypoints', COCO_LIMBS)
        best_score = best_k = best = best_fields = None
        for k in range(4):
            x = torch.rot90(inputs, k, dims=(2, 3))
            feats = self.extract_feat(x)
            if self.test_cfg.get('flip_test', False):
                feats = [feats, self.extract_feat(x.flip(-1))]
            preds = self.head.predict(feats, data_samples, test_cfg=self.test_cfg)
            preds, fields = preds if isinstance(preds, tuple) else (preds, None)
            # one score per instance: mean over the chosen keypoints of its heatmap peaks
            score = torch.stack([
                torch.as_tensor(p.keypoint_scores[..., list(limbs)]).float().mean(-1).max()
                for p in preds
            ])
            if best is None:
                best_score, best, best_fields = score, preds, fields
                best_k = torch.zeros_like(score, dtype=torch.long)
                continue
            for i in torch.nonzero(score > best_score).flatten().tolist():
                best_score[i], best_k[i], best[i] = score[i], k, preds[i]
                if fields is not None:
                    best_fields[i] = fields[i]
        for i, k in enumerate(best_k.tolist()):
            pred = best[i]
            pred.keypoints = unrotate_keypoints(
                torch.as_tensor(pred.keypoints), k, size).numpy()
            pred.set_field(np.full(len(pred.keypoints), k * 90), 'rotation')
            if best_fields is not None:
                best_fields[i] = self._unrotate_fields(best_fields[i], k)
        return self.add_pred_to_datasample(best, best_fields, data_samples)

    @staticmethod
    def _unrotate_fields(fields: PixelData, k: int) -> PixelData:
        """Rotate output heatmaps back (for display; pixel-exact only for keypoints)."""
        out = PixelData()
        for key, value in fields.items():
            value = torch.as_tensor(value)
            out.set_field(torch.rot90(value, -k, dims=(-2, -1)), key)
        return out
