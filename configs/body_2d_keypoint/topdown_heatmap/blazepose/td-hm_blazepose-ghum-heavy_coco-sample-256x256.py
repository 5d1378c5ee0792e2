# BlazePose-GHUM heavy (see td-hm_blazepose-ghum-heavy_lspet-256x256.py) tested on the
# COCO val2017 sample (36 images, 80 persons with keypoints, GT boxes, all 17 keypoints).
_base_ = ['./td-hm_blazepose-ghum-heavy_lspet-256x256.py']

coco_root = '{{$SCAI_DATA_ROOT:data/demo}}/coco_sample/'

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=coco_root,
        data_mode='topdown',
        ann_file='annotations/person_keypoints.json',
        bbox_file=None,
        test_mode=True,
        data_prefix=dict(img='images/'),
        pipeline=_base_.val_pipeline))
test_evaluator = dict(ann_file=coco_root + 'annotations/person_keypoints.json')
