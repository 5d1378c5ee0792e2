import torch

from mmpose_scai.chains import KeypointChains
from mmpose_scai.models.utils.heatmaps import heatmap_peaks, render_gaussians, virtual_heatmaps
from tests.test_chains import COCO


def test_peaks_recover_subpixel_gaussian_centres():
    coords = torch.tensor([[10.3, 20.6], [3.0, 4.0], [40.7, 60.2]])
    hm = render_gaussians(coords, torch.tensor([1., .5, .8]), (48, 64), sigma=2.)
    assert hm.shape == (3, 64, 48)
    found, maxvals = heatmap_peaks(hm)
    assert torch.allclose(found, coords, atol=0.05)
    assert torch.allclose(maxvals, torch.tensor([1., .5, .8]), atol=0.05)


def test_virtual_neck_is_the_shoulder_midpoint_with_the_weaker_amplitude():
    chains = KeypointChains(COCO, layout='coco')
    hm = torch.zeros(1, 17, 64, 48)
    ls, rs = COCO.index('left_shoulder'), COCO.index('right_shoulder')
    hm[0, ls] = render_gaussians(torch.tensor([30., 20.]), torch.tensor(0.9), (48, 64), 2.)
    hm[0, rs] = render_gaussians(torch.tensor([10., 24.]), torch.tensor(0.4), (48, 64), 2.)
    neck = virtual_heatmaps(hm, chains, sigma=2.)
    assert neck.shape == (1, 1, 64, 48)
    coords, maxval = heatmap_peaks(neck)
    assert torch.allclose(coords[0, 0], torch.tensor([20., 22.]), atol=0.05)
    assert abs(maxval.item() - 0.4) < 0.01
