"""A tiny SCAI training config on the real COCO sample, for the training tests.

Deterministic: no random augmentation (so a resumed or multi-process run sees the
same inputs as an uninterrupted single-process one) and fixed seeds. ``full_labels``
keeps the persons with all 17 keypoints labelled, so every rank's losses average over
the same number of chain instances (then the rank-averaged gradient equals the
single-process gradient of the same global batch).
"""
import copy
import json
import os.path as osp

from mmengine.config import Config

from benchmarks.data_root import repo_root

CONFIG = osp.join(repo_root(), 'configs', 'body_2d_keypoint', 'topdown_heatmap', 'coco',
                  'td-hm_res18_1xb16-1e_coco-sample-128x96.py')
NET = dict(type='ChainConvNet', width=8, dilations=(1, 2), context_channels=4)
LR = dict(phi=1e-3, gamma=2e-3, corr=4.1e-4)


def full_labels(data_root: str, out_dir: str) -> str:
    """Annotation file of the COCO sample's fully labelled persons (4 of 107)."""
    with open(osp.join(data_root, 'coco_sample', 'annotations',
                       'person_keypoints.json')) as f:
        coco = json.load(f)
    coco['annotations'] = [a for a in coco['annotations'] if a['num_keypoints'] == 17]
    ids = {a['image_id'] for a in coco['annotations']}
    coco['images'] = [i for i in coco['images'] if i['id'] in ids]
    path = osp.join(out_dir, 'full_labels.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def tiny_train_cfg(data_root: str, ann_file: str, batch_size: int = 4,
                   max_epochs: int = 3, times: int = 2, pretrain_epochs: int = 1,
                   correct_epochs: int = 1) -> Config:
    """SCAI on a tiny ResNet-18 base, ``times`` x the persons of ``ann_file`` per epoch,
    with the shipped SCAI defaults: per-network schedules (x0.5 per epoch here),
    SCAIDistributedDataParallel and SCAITrainCheckHook."""
    cfg = Config.fromfile(CONFIG)
    codec = cfg.codec
    pipeline = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'),
        dict(type='TopdownAffine', input_size=codec['input_size']),
        dict(type='GenerateTarget', encoder=codec),
        dict(type='PackPoseInputs')
    ]
    root = osp.join(data_root, 'coco_sample')
    cfg.train_dataloader = dict(
        batch_size=batch_size, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='RepeatDataset', times=times, dataset=dict(
            type='CocoDataset', data_root=root, ann_file=ann_file,
            data_prefix=dict(img='images/'), pipeline=pipeline)))
    cfg.train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=100)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.randomness = dict(seed=0)
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.scai_train_check = dict(type='SCAITrainCheckHook')
    base = copy.deepcopy(cfg.model)
    cfg.model = dict(
        type='SCAIPoseEstimator',
        data_preprocessor=base.data_preprocessor,
        backbone=dict(base.backbone, base_channels=8),
        head=dict(type='SCAIHead',
                  base_head=dict(base.head, in_channels=64, deconv_out_channels=(16, 16, 16)),
                  # the base is untrained: keep every anchor
                  refiner=dict(phi=NET, gamma=NET, corr=dict(NET, context_channels=0),
                               min_anchor_score=0.)),
        train_cfg=dict(scai=dict(pretrain_epochs=pretrain_epochs,
                                 correct_epochs=correct_epochs, max_rounds=3)),
        test_cfg=dict(flip_test=False))
    cfg.optim_wrapper = dict(
        constructor='SCAIOptimWrapperConstructor',
        **{n: dict(optimizer=dict(type='Adam', lr=lr)) for n, lr in LR.items()})
    pre = pretrain_epochs
    cfg.param_scheduler = dict(
        phi=[dict(type='ExponentialLR', gamma=0.5, by_epoch=True, begin=0, end=pre)],
        gamma=[dict(type='ExponentialLR', gamma=0.5, by_epoch=True, begin=0)],
        corr=[dict(type='ExponentialLR', gamma=0.5, by_epoch=True, begin=pre)])
    cfg.model_wrapper_cfg = dict(type='SCAIDistributedDataParallel',
                                 broadcast_buffers=False, find_unused_parameters=False)
    return cfg
