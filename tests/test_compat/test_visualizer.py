"""B11: the opencv backend of ``PoseLocalVisualizer`` draws keypoints under numpy 2."""
import numpy as np

from mmpose_scai.compat import visualizer


def test_active_on_numpy_2():
    assert visualizer.needed() == (int(np.__version__.split('.')[0]) >= 2)
    assert visualizer.is_applied() == visualizer.needed()


def test_keypoints_drawn_with_opencv_backend():
    from mmengine.structures import InstanceData

    from mmpose.structures import PoseDataSample
    from mmpose.visualization import PoseLocalVisualizer
    vis = PoseLocalVisualizer(name='b11', backend='opencv', radius=3)
    vis.set_dataset_meta(dict(num_keypoints=2, skeleton_links=[(0, 1)],
                              keypoint_colors=np.array([[255, 0, 0], [0, 255, 0]]),
                              skeleton_link_colors=np.array([[0, 0, 255]])))
    sample = PoseDataSample()
    sample.pred_instances = InstanceData(keypoints=np.array([[[10., 10.], [30., 20.]]]),
                                         keypoint_scores=np.ones((1, 2)))
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    out = vis.add_datasample('b11', image, sample, draw_gt=False, show=False)
    assert out.shape == image.shape
    assert out[10, 10].any() and out[20, 30].any()  # both keypoints painted
