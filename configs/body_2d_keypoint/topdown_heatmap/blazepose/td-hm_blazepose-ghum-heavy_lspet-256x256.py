# MediaPipe's BlazePose-GHUM heavy landmark model (converted from its .tflite, not trained
# here) as an MMPose top-down heatmap model: 256x256 RGB crops in [0, 1], square crops of
# 1.5x the box's longer side, 17 COCO heatmaps at 64x64 (sigmoid of the model's logits).
# Evaluated on LSPET-test (GT boxes, 12 limb joints scored); the train/val parts mirror
# the LSPET base configs so that SCAI configs can inherit this one. See README.md here.
#   python tools/fetch_blazepose.py   # writes the checkpoint that `load_from` names
#   mim test mmpose <this config> --checkpoint $(python tools/fetch_blazepose.py --quiet)
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)
# = mmpose_scai.utils.blazepose_checkpoint_path('heavy'), written by tools/fetch_blazepose.py
load_from = ('{{$SCAI_CACHE_DIR:~/.cache/mmpose_scai}}/'
             'blazepose-ghum-heavy_coco-256x256-59e42d71-v1.pth')

codec = dict(type='MSRAHeatmap', input_size=(256, 256), heatmap_size=(64, 64), sigma=2)

model = dict(
    _delete_=True,
    # TopdownPoseEstimator + an optional test-time choice among 4 rotations of the crop
    type='RotationTTAPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
        bgr_to_rgb=True),
    backbone=dict(type='BlazePoseGHUM', arch='heavy'),
    head=dict(
        type='HeatmapHead',
        in_channels=48,
        out_channels=17,
        deconv_out_channels=None,
        conv_out_channels=None,
        # the tflite's last 1x1 conv (its 17 COCO rows) + sigmoid: heatmaps in [0, 1]
        final_layer=dict(type='SigmoidConv2d', kernel_size=1),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    # rotation_tta=True: also run the crop rotated by 90/180/270 degrees and keep, per
    # person, the rotation with the highest mean limb heatmap peak (4x the cost)
    test_cfg=dict(
        flip_test=False, flip_mode='heatmap', shift_heatmap=True, rotation_tta=False))

# data: $SCAI_DATA_ROOT/lspet (default: data/demo/lspet, relative to the working directory)
data_root = '{{$SCAI_DATA_ROOT:data/demo}}/lspet/'
dataset_type = 'HoldoutCocoDataset'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.5),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.5),
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

# no ann_file: CocoMetric scores the held-out images against their own annotations
val_evaluator = dict(type='CocoMetric', ann_file=None)
test_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/test.json')
