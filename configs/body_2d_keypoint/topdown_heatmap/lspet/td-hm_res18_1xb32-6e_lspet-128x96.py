# A small CPU-trainable base model on real LSPET sports photos (COCO-17 layout, 12 limb
# joints labelled). ResNet-18 from scratch at 128x96 (no pretrained weights are reachable),
# 6 epochs of Adam 1e-3 with a cosine decay (what fits one working session on a shared
# 2-core machine; ~5 min per epoch when the machine is otherwise idle).
# Trained on LSPET-train minus the 500-image validation split (seed 0), validated on
# that split; LSPET-test is only for the final report.
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

train_cfg = dict(max_epochs=6, val_interval=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=300, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', T_max=6, eta_min=1e-5, by_epoch=True, begin=0, end=6)
]
auto_scale_lr = dict(base_batch_size=32)
# every epoch's checkpoint is kept: the benchmark reports the base's learning curve
default_hooks = dict(
    checkpoint=dict(interval=1, save_best='coco/AP', rule='greater', max_keep_ckpts=-1))

codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=1.5)

model = dict(
    backbone=dict(depth=18, init_cfg=None),
    head=dict(in_channels=512, deconv_out_channels=(128, 128, 128), decoder=codec),
    test_cfg=dict(flip_test=False))

# data: $SCAI_DATA_ROOT/lspet (default: data/demo/lspet, relative to the working directory)
data_root = '{{$SCAI_DATA_ROOT:data/demo}}/lspet/'
dataset_type = 'HoldoutCocoDataset'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        part='train',
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        part='holdout',
        data_root=data_root,
        ann_file='annotations/train.json',
        bbox_file=None,
        data_prefix=dict(img='images/'),
        pipeline=val_pipeline))
# the report's test split; scored on the 12 limb joints (face slots are unlabelled)
test_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/test.json',
        bbox_file=None,
        test_mode=True,
        data_prefix=dict(img='images/'),
        pipeline=val_pipeline))

# no ann_file: CocoMetric scores the 500 held-out images against their own annotations
# (train.json would count every other training image as a missed detection)
val_evaluator = dict(type='CocoMetric', ann_file=None)
test_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/test.json')
