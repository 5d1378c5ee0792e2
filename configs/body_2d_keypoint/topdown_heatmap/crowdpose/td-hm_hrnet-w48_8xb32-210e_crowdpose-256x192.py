# HRNet-W48 on CrowdPose: MMPose ships W32 only, so this widens its W32 config the way
# MMPose's COCO W48 config widens W32 (ImageNet-pretrained W48, 32 images per GPU).
# No trained checkpoint exists; train it with `mim train mmpose <this config>`.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/crowdpose/'
    'td-hm_hrnet-w32_8xb64-210e_crowdpose-256x192.py'
]
custom_imports = dict(imports=['mmpose_scai'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w48-8ef0771d.pth')),
    head=dict(in_channels=48))

train_dataloader = dict(batch_size=32)
auto_scale_lr = dict(base_batch_size=256)
