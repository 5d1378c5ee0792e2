"""The pinned stack imports the MMPose entry points the plugin relies on."""
import importlib

import pytest


@pytest.mark.parametrize('module', ['mmpose.models', 'mmpose.apis', 'mmpose.visualization',
                                    'mmpose.evaluation', 'mmpose.datasets'])
def test_mmpose_module_imports(module):
    assert importlib.import_module(module)


def test_entry_points():
    from mmpose.apis import inference_topdown, init_model
    from mmpose.evaluation import CocoMetric
    from mmpose.registry import METRICS, MODELS
    from mmpose.visualization import PoseLocalVisualizer
    assert callable(init_model) and callable(inference_topdown)
    assert METRICS.get('CocoMetric') is CocoMetric
    assert MODELS.get('TopdownPoseEstimator') is not None
    assert PoseLocalVisualizer


def test_xtcocotools_numpy2_abi():
    # B3: the published wheel fails here with "numpy.dtype size changed".
    import numpy as np
    from xtcocotools.coco import COCO  # noqa: F401
    assert int(np.__version__.split('.')[0]) >= 2


def test_pkg_resources_for_mmpose_paths():
    # B4: MMEngine resolves ``mmpose::`` config paths through pkg_resources.
    from mmengine.utils import get_installed_path
    assert get_installed_path('mmpose')
