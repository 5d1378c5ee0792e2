"""Pieces of the SCAI-Lite benchmark step that need no trained model."""
import numpy as np
import torch

from benchmarks.lite import LiteSettings, cache_points
from benchmarks.pipeline import portable_paths
from mmpose_scai.models.utils.heatmaps import render_gaussians


def test_cache_points_maps_labels_into_the_heatmap_frame():
    """Heatmaps rendered at the labels' heatmap-frame positions decode back to the
    labels; unlabelled and out-of-frame keypoints get weight 0."""
    rng = np.random.default_rng(0)
    n, k, (w, h) = 5, 17, (24, 32)
    hm_pts = rng.uniform(3, 20, (n, k, 2)).astype(np.float32)
    hm_pts[0, 3] = (-4., 5.)  # outside the frame
    centre = rng.uniform(100, 200, (n, 2)).astype(np.float32)
    scale = rng.uniform(80, 160, (n, 1)).astype(np.float32) * np.array([0.75, 1.])
    img = hm_pts / np.array([w, h]) * scale[:, None] + centre[:, None] - 0.5 * scale[:, None]
    vis = np.ones((n, k), np.float32)
    vis[1, 5] = 0
    heatmaps = render_gaussians(torch.from_numpy(hm_pts).clamp(0, 23), torch.ones(n, k),
                                (w, h), 2.0)
    cache = dict(heatmaps=heatmaps, meta=dict(
        gt_keypoints=img, gt_visible=vis, input_center=centre,
        input_scale=scale.astype(np.float32),
        input_size=np.tile(np.array([[96., 128.]], np.float32), (n, 1))))
    pts = cache_points(cache, (w, h))
    assert pts['pred'].shape == (n, k, 2) and pts['heatmap_size'] == (w, h)
    ok = pts['weight'] > 0
    assert not ok[0, 3] and not ok[1, 5] and int(ok.sum()) == n * k - 2
    assert torch.allclose(pts['gt'][ok], torch.from_numpy(hm_pts)[ok], atol=1e-3)
    assert torch.allclose(pts['pred'][ok], pts['gt'][ok], atol=0.05)
    assert (pts['scores'] <= 1).all() and (pts['scores'] > 0.9).all()


def test_lite_settings_tag_separates_non_default_runs():
    assert LiteSettings().tag() == 'lite'
    a, b = LiteSettings(train_images=10), LiteSettings(train_images=11)
    assert a.tag().startswith('lite_') and a.tag() != b.tag()
    assert a.tag() == LiteSettings(train_images=10).tag()
    assert LiteSettings(latency_repeat=3, latency_threads=None).tag() == 'lite'


def test_portable_paths_rewrites_absolute_paths_only():
    rep = {'ckpt': '/repo/work_dirs/b/e6/lite/lite_phi.pth',
           'outside': ['/scratch/wd/base/epoch_6.pth', '/scratch/wd'],
           'cmd': 'tools/benchmark.py --config /repo/configs/x.py --n 3',
           'other': '/etc/hostname', 'rel': 'configs/a/b.py', 'num': 1.5}
    out = portable_paths(rep, '/scratch/wd', root='/repo')
    assert out == {'ckpt': 'work_dirs/b/e6/lite/lite_phi.pth',
                   'outside': ['<work_dir>/base/epoch_6.pth', '<work_dir>'],
                   'cmd': 'tools/benchmark.py --config configs/x.py --n 3',
                   'other': '<abs>/hostname', 'rel': 'configs/a/b.py', 'num': 1.5}
