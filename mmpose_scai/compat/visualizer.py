"""B11: ``PoseLocalVisualizer`` (opencv backend) cannot draw keypoints with numpy 2.

``PoseLocalVisualizer._draw_instances_kpts`` passes ``radius=np.array([r])`` to
``OpencvBackendVisualizer.draw_circles``, which calls ``int(radius)``; numpy 2 refuses
``int()`` of a 1-d array (``TypeError: only 0-dimensional arrays can be converted to
Python scalars``), so ``MMPoseInferencer``, ``PoseVisualizationHook`` and the demo's
visualisation fail as soon as one keypoint is drawn.

Fix: the opencv branch of ``draw_circles`` receives a one-element radius as a scalar.
The matplotlib backend and every other call are unchanged.
"""
import numpy as np

_applied = False


def needed() -> bool:
    """True when numpy refuses ``int()`` of a one-element 1-d array (numpy 2)."""
    try:
        int(np.array([1.]))
    except TypeError:
        return True
    return False


def is_applied() -> bool:
    return _applied


def apply() -> bool:
    """Wrap ``OpencvBackendVisualizer.draw_circles`` if needed; return whether it is in
    effect."""
    global _applied
    if _applied:
        return True
    if not needed():
        return False
    try:  # fails where another shim is off or mmcv is broken: nothing to fix then
        from mmpose.visualization.opencv_backend_visualizer import \
            OpencvBackendVisualizer
    except Exception:  # noqa: BLE001  (the user's own import reports it)
        return False

    draw_circles = OpencvBackendVisualizer.draw_circles

    def _draw_circles(self, center, radius, *args, **kwargs):
        if self.backend == 'opencv' and np.size(radius) == 1:
            radius = float(np.asarray(radius).reshape(-1)[0])
        return draw_circles(self, center, radius, *args, **kwargs)

    OpencvBackendVisualizer.draw_circles = _draw_circles
    _applied = True
    return True
