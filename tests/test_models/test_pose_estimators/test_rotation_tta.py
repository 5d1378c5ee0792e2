"""RotationTTAPoseEstimator: exact un-rotation and the per-instance choice."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from mmpose_scai.models.pose_estimators.rotation_tta import unrotate_keypoints


@pytest.mark.parametrize('k', range(4))
def test_unrotate_keypoints_inverts_rot90(k):
    size = 7
    rng = np.random.default_rng(k)
    for _ in range(5):
        x, y = rng.integers(0, size, 2)
        img = torch.zeros(1, 1, size, size)
        img[0, 0, y, x] = 1
        ry, rx = torch.nonzero(torch.rot90(img, k, dims=(2, 3))[0, 0] == 1)[0].tolist()
        back = unrotate_keypoints(torch.tensor([[float(rx), float(ry)]]), k, size)
        assert back.tolist() == [[float(x), float(y)]]


def _model(rotation_tta: bool):
    """BlazePoseGHUM (random weights) + a sigmoid heatmap head at 32x32."""
    codec = dict(type='MSRAHeatmap', input_size=(32, 32), heatmap_size=(8, 8), sigma=1)
    cfg = dict(
        type='RotationTTAPoseEstimator',
        backbone=dict(type='BlazePoseGHUM'),
        head=dict(type='HeatmapHead', in_channels=48, out_channels=17,
                  deconv_out_channels=None, final_layer=dict(type='SigmoidConv2d'),
                  decoder=codec),
        test_cfg=dict(rotation_tta=rotation_tta, flip_test=False))
    import mmpose_scai  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    model = MODELS.build(cfg)
    model.eval()
    return model


def test_rotation_tta_off_is_the_plain_estimator():
    torch.manual_seed(0)
    plain, rot = _model(False), _model(True)
    rot.load_state_dict(plain.state_dict())
    inputs = torch.rand(2, 3, 32, 32)

    def samples():
        out = []
        for _ in range(2):
            s = PoseDataSample(metainfo=dict(input_size=(32, 32), input_center=np.array(
                [16., 16.]), input_scale=np.array([32., 32.]), flip_indices=list(range(17))))
            s.gt_instances = InstanceData(bboxes=np.zeros((1, 4)), bbox_scores=np.ones(1))
            out.append(s)
        return out

    with torch.no_grad():
        a = plain.predict(inputs, samples())
        b = rot.predict(inputs, samples())
        rot.test_cfg['rotation_tta'] = False
        c = rot.predict(inputs, samples())
    for x, y, z in zip(a, b, c):
        np.testing.assert_allclose(x.pred_instances.keypoints, z.pred_instances.keypoints)
        assert y.pred_instances.rotation[0] in (0, 90, 180, 270)
        # the chosen rotation scores at least as high as the upright pass
        assert y.pred_instances.keypoint_scores[0, 5:].mean() >= \
            x.pred_instances.keypoint_scores[0, 5:].mean() - 1e-6
