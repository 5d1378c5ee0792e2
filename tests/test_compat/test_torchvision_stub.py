"""B2: torchvision-free ``torchvision.transforms.ToPILImage``."""
import importlib
import sys

import numpy as np
import pytest
import torch

from mmpose_scai.compat import DISABLE_ENV, torchvision_stub


def test_active_placeholder():
    from torchvision.transforms import ToPILImage
    assert ToPILImage is torchvision_stub.ToPILImage
    assert torchvision_stub.is_applied()
    # Only the submodule is provided: probing for torchvision itself still fails.
    assert importlib.util.find_spec('torchvision') is None
    with pytest.raises(ModuleNotFoundError):
        import torchvision  # noqa: F401


def test_to_pil_image_float_chw_and_hw():
    from torchvision.transforms import ToPILImage
    chw = torch.zeros(3, 4, 5)
    chw[0, 1, 2] = 1.0
    img = ToPILImage()(chw)
    arr = np.asarray(img)
    assert img.size == (5, 4) and arr.shape == (4, 5, 3)
    assert arr[1, 2, 0] == 255 and arr.sum() == 255
    gray = ToPILImage()(torch.full((4, 5), 0.5))
    assert gray.mode == 'L' and np.asarray(gray)[0, 0] == 127
    assert ToPILImage()(torch.full((1, 2, 2), 7, dtype=torch.uint8)).getpixel((0, 0)) == 7


def test_simcc_visualizer_draws():
    from mmpose.visualization.simcc_vis import SimCCVisualizer
    heatmaps = torch.rand(17, 32, 24)
    img = np.zeros((32, 24, 3), dtype=np.uint8)
    out = SimCCVisualizer().draw_instance_xy_heatmap(heatmaps, overlaid_image=img, n=3)
    assert isinstance(out, np.ndarray) and out.ndim == 3 and out.any()


def test_disabled_by_env(run_py):
    code = '''
import json
compat.apply_compat()
res = {}
for name in ('torchvision.transforms', 'mmpose.visualization'):
    try:
        __import__(name); res[name] = 'ok'
    except ModuleNotFoundError as e:
        res[name] = e.name
print(json.dumps(res))
'''
    res = run_py(code, env={DISABLE_ENV: 'torchvision'})
    assert res == {'torchvision.transforms': 'torchvision',
                   'mmpose.visualization': 'torchvision'}


def test_inert_when_torchvision_installed(run_py, tmp_path):
    fake = tmp_path / 'torchvision'
    fake.mkdir()
    (fake / '__init__.py').write_text('')
    (fake / 'transforms.py').write_text('class ToPILImage:\n    real = True\n')
    code = '''
import json
report = compat.apply_compat()['torchvision']
from torchvision.transforms import ToPILImage
print(json.dumps(dict(report=report,
                      real=getattr(ToPILImage, 'real', False))))
'''
    res = run_py(code, env={'PYTHONPATH': str(tmp_path)})
    assert res == {'report': False, 'real': True}
    assert 'torchvision' not in sys.modules
