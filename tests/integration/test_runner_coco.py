"""A real MMEngine Runner with CocoMetric on the real COCO sample.

The metric is shown to be real: heatmaps rendered from the ground truth score AP = 1,
the tiny untrained model does not. A checkpoint the Runner saved loads back (B8).
"""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS
from benchmarks.data_root import DATA_ROOT_ENV, repo_root

CONFIG = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'topdown_heatmap', 'coco',
                  'td-hm_res18_1xb16-1e_coco-sample-128x96.py')


@MODELS.register_module(force=True)
class GTRenderedHeatmapHead(HeatmapHead):
    """Test-only head: predicts heatmaps rendered by its codec from the GT keypoints."""

    def predict(self, feats, batch_data_samples, test_cfg={}):
        heatmaps = [
            torch.from_numpy(
                self.decoder.encode(d.gt_instances.transformed_keypoints,
                                    d.gt_instances.keypoints_visible)['heatmaps'])
            for d in batch_data_samples
        ]
        return self.decode(torch.stack(heatmaps))


@pytest.fixture(scope='module')
def cfg(data_root, monkeypatch_module):
    monkeypatch_module.setenv(DATA_ROOT_ENV, data_root)
    return Config.fromfile(CONFIG)


@pytest.fixture(scope='module')
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope='module')
def sample_counts(cfg):
    with open(cfg.test_evaluator.ann_file) as f:
        coco = json.load(f)
    persons = [a for a in coco['annotations'] if a['num_keypoints'] > 0 and not a['iscrowd']]
    return len(coco['images']), len(persons)


def _runner(cfg, tmp_path, name: str) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(tmp_path / name)
    cfg.experiment_name = name
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    return Runner.from_cfg(cfg)


def test_sample_is_the_real_one(data_root, uses_demo_data, sample_counts):
    assert sample_counts == ((4, 12) if uses_demo_data else (36, 80))


def test_gt_heatmaps_score_ap_one(cfg, tmp_path, sample_counts):
    cfg = copy.deepcopy(cfg)
    # Unbiased (DARK) rendering + decoding without blur: a Gaussian's log is quadratic,
    # so DARK's Taylor step recovers the sub-pixel position exactly.
    codec = dict(cfg.codec, unbiased=True, blur_kernel_size=3)
    cfg.model.head.update(type='GTRenderedHeatmapHead', decoder=codec)
    cfg.model.test_cfg.flip_test = False
    pipeline = cfg.test_dataloader.dataset.pipeline
    # A wide crop keeps every labelled joint (some lie outside their box) off the border.
    pipeline[1] = dict(type='GetBBoxCenterScale', padding=3.0)
    pipeline[-1] = dict(type='PackPoseInputs', pack_transformed=True)
    runner = _runner(cfg, tmp_path, 'gt_heatmaps')
    assert len(runner.test_dataloader.dataset) == sample_counts[1]
    metrics = runner.test()
    assert metrics['coco/AP'] == pytest.approx(1.0, abs=1e-6)
    assert metrics['coco/AR'] == pytest.approx(1.0, abs=1e-6)


def test_tiny_model_scores_below_one(cfg, tmp_path):
    metrics = _runner(cfg, tmp_path, 'tiny').test()
    assert 0.0 <= metrics['coco/AP'] < 0.5


def test_runner_checkpoint_loads_back(cfg, tmp_path):
    from mmpose.apis import init_model
    cfg = copy.deepcopy(cfg)
    cfg.train_cfg.val_interval = 2  # train only
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    runner = _runner(cfg, tmp_path, 'train')
    runner.train()
    ckpt = osp.join(runner.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    trained = runner.model.state_dict()

    raw = torch.load(ckpt)  # weights_only=True: needs the B8 allow-list
    assert raw['meta']['epoch'] == 1 and 'message_hub' in raw
    model = init_model(cfg, ckpt, device='cpu')
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    fresh = MODELS.build(cfg.model)
    load_checkpoint(fresh, ckpt, map_location='cpu')
    assert torch.equal(fresh.head.final_layer.weight, trained['head.final_layer.weight'])
