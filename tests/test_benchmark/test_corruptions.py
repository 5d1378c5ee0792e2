"""Distribution-shift transforms: corruptions (imagecorruptions) and synthetic occlusion."""
import os.path as osp

import numpy as np
import pytest
from mmpose.registry import TRANSFORMS

from benchmarks.corruptions import (CORRUPTIONS, DISTAL_JOINTS, SHIFTS, ImageCorruption,
                                    SyntheticOcclusion, shift_pipeline, shift_transform_cfg)

INPUT_SIZE = (96, 128)
VAL_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=INPUT_SIZE),
    dict(type='PackPoseInputs'),
]
RANDOM_CORRUPTIONS = ('gaussian_noise', 'motion_blur')  # draw random numbers per image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


@pytest.fixture(scope='module')
def lspet_test(data_root):
    """A few LSPET test instances (CocoDataset, top-down) with the plain test pipeline."""
    from mmpose.datasets import CocoDataset
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    root = osp.join(data_root, 'lspet')
    assert osp.isfile(osp.join(root, 'annotations', 'test.json')), root

    def build(pipeline, n=4):
        return CocoDataset(data_root=root + '/', ann_file='annotations/test.json',
                           data_prefix=dict(img='images/'), data_mode='topdown',
                           test_mode=True, indices=n, pipeline=pipeline)
    return build


@pytest.fixture(scope='module')
def loaded(lspet_test):
    """Results dicts after ``LoadImage`` (the state the shift transforms see)."""
    ds = lspet_test([dict(type='LoadImage')])
    items = [ds[i] for i in range(len(ds))]
    assert all(it['img'].dtype == np.uint8 and it['img'].ndim == 3 for it in items)
    return items


def fresh(results: dict) -> dict:
    out = dict(results)
    for k in ('img', 'keypoints', 'keypoints_visible', 'bbox'):
        out[k] = results[k].copy()
    return out


# ---------------------------------------------------------------- construction and errors

def test_registered_and_names():
    assert TRANSFORMS.get('ImageCorruption') is ImageCorruption
    assert TRANSFORMS.get('SyntheticOcclusion') is SyntheticOcclusion
    assert set(SHIFTS) == set(CORRUPTIONS) | {'occlusion'}
    for name in ('gaussian_noise', 'motion_blur', 'defocus_blur', 'jpeg_compression',
                 'brightness', 'contrast', 'low_resolution'):
        assert name in SHIFTS


@pytest.mark.parametrize('name', ['gausian_noise', 'fog', '', None])
def test_unknown_corruption_is_an_error_naming_it(name):
    with pytest.raises(ValueError, match=repr(name).replace('(', r'\(')):
        TRANSFORMS.build(dict(type='ImageCorruption', corruption=name, severity=1))
    if name is not None:
        with pytest.raises(ValueError, match='unknown shift'):
            shift_pipeline(VAL_PIPELINE, name, 1)


@pytest.mark.parametrize('severity', [0, 6, -1, 2.5, '3', True])
def test_bad_severity_is_an_error_naming_it(severity):
    pat = 'severity.*' + repr(severity).replace('.', r'\.')
    with pytest.raises(ValueError, match=pat):
        TRANSFORMS.build(dict(type='ImageCorruption', corruption='contrast',
                              severity=severity))
    with pytest.raises(ValueError, match=pat):
        TRANSFORMS.build(dict(type='SyntheticOcclusion', severity=severity))
    with pytest.raises(ValueError, match=pat):
        shift_pipeline(VAL_PIPELINE, 'occlusion', severity)


def test_other_construction_errors():
    with pytest.raises(ValueError, match='fill'):
        SyntheticOcclusion(1, fill='blur')
    with pytest.raises(ValueError, match='TopdownAffine'):
        shift_pipeline([dict(type='LoadImage'), dict(type='PackPoseInputs')], 'contrast', 1)
    occ = SyntheticOcclusion(1)
    res = dict(img=np.zeros((64, 64, 3), np.uint8), img_id=1, bbox=np.array([[0, 0, 63, 63.]]),
               keypoints=np.zeros((1, 5, 2)), keypoints_visible=np.ones((1, 5)))
    with pytest.raises(ValueError, match='5 keypoints'):
        occ(res)


# ---------------------------------------------------------------- shift_pipeline

def test_shift_pipeline_inserts_before_topdown_affine():
    base = [dict(t) for t in VAL_PIPELINE]
    for shift in SHIFTS:
        p = shift_pipeline(base, shift, 3, seed=7)
        types = [t['type'] for t in p]
        i = types.index('TopdownAffine')
        assert p[i - 1] == shift_transform_cfg(shift, 3, seed=7)
        assert types[:i - 1] == ['LoadImage', 'GetBBoxCenterScale']
        assert len(p) == len(base) + 1
    assert base == VAL_PIPELINE  # input untouched
    clean = shift_pipeline(base, None)
    assert clean == base and clean is not base
    assert shift_transform_cfg('low_resolution', 5)['corruption'] == 'low_resolution'


# ---------------------------------------------------------------- corruptions

@pytest.mark.parametrize('name', list(CORRUPTIONS))
def test_corruption_deterministic_per_image(name, loaded):
    a = loaded[0]
    t = ImageCorruption(name, 3, seed=0)
    orig = a['img'].copy()
    out1 = t(fresh(a))['img']
    out2 = ImageCorruption(name, 3, seed=0)(fresh(a))['img']
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(a['img'], orig)  # the loaded image is not modified
    assert out1.shape == orig.shape and out1.dtype == np.uint8
    assert not np.array_equal(out1, orig)
    if name in RANDOM_CORRUPTIONS:
        # same image content, another image id / seed: other random draws
        other_id = t(dict(fresh(a), img_id=a['img_id'] + 1))['img']
        other_seed = ImageCorruption(name, 3, seed=1)(fresh(a))['img']
        assert not np.array_equal(out1, other_id)
        assert not np.array_equal(out1, other_seed)
    # numpy's global RNG is left as it was
    st = np.random.get_state()[1].copy()
    t(fresh(a))
    np.testing.assert_array_equal(np.random.get_state()[1], st)


@pytest.mark.parametrize('name', list(CORRUPTIONS))
def test_corruption_monotone_in_severity(name, loaded):
    for item in loaded[:2]:
        clean = item['img']
        outs = [ImageCorruption(name, s)(fresh(item))['img'] for s in range(1, 6)]
        p = [psnr(clean, o) for o in outs]
        assert all(x > y for x, y in zip(p, p[1:])), (name, p)
        if name == 'brightness':
            m = [o.mean() for o in outs]
            assert all(x < y for x, y in zip(m, m[1:])), m
        if name == 'contrast':
            s = [o.astype(float).std() for o in outs]
            assert all(x > y for x, y in zip(s, s[1:])), s


def test_corruption_handles_grayscale_and_rgb():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (48, 40), dtype=np.uint8)
    out = ImageCorruption('jpeg_compression', 5)(dict(img=gray, img_id=0))['img']
    assert out.shape == gray.shape and out.dtype == np.uint8
    rgb = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    o_rgb = ImageCorruption('jpeg_compression', 5, channel_order='rgb')(
        dict(img=rgb, img_id=0))['img']
    o_bgr = ImageCorruption('jpeg_compression', 5, channel_order='bgr')(
        dict(img=rgb[..., ::-1].copy(), img_id=0))['img']
    np.testing.assert_array_equal(o_rgb, o_bgr[..., ::-1])


# ---------------------------------------------------------------- occlusion

def test_occlusion_keeps_keypoints_and_covers_the_chosen_joint(loaded):
    colour = (0, 255, 0)
    for item in loaded:
        for sev in (1, 5):
            res = fresh(item)
            kpts, vis = res['keypoints'].copy(), res['keypoints_visible'].copy()
            out = SyntheticOcclusion(sev, fill=colour)(res)
            np.testing.assert_array_equal(out['keypoints'], kpts)
            np.testing.assert_array_equal(out['keypoints_visible'], vis)
            joints, boxes = out['occluded_joints'], out['occlusion_boxes']
            assert len(joints) == len(boxes) >= 1
            for j, (x0, y0, x1, y1) in zip(joints, boxes):
                assert j in DISTAL_JOINTS[17] and vis[0, j] > 0  # a labelled distal joint
                x, y = kpts[0, j]
                assert x0 <= x < x1 and y0 <= y < y1
                assert tuple(out['img'][int(y), int(x)]) == colour
            # nothing outside the patches changed
            mask = np.zeros(out['img'].shape[:2], bool)
            for x0, y0, x1, y1 in boxes:
                mask[y0:y1, x0:x1] = True
            np.testing.assert_array_equal(out['img'][~mask], item['img'][~mask])
            assert (out['img'][mask] == colour).all()


def test_occlusion_deterministic_and_varies(loaded):
    a = loaded[0]
    t = SyntheticOcclusion(3, seed=0)
    o1, o2 = t(fresh(a)), SyntheticOcclusion(3, seed=0)(fresh(a))
    np.testing.assert_array_equal(o1['img'], o2['img'])
    np.testing.assert_array_equal(o1['occlusion_boxes'], o2['occlusion_boxes'])
    # another image id, instance id or seed on the same pixels: another placement
    variants = [t(dict(fresh(a), img_id=a['img_id'] + k))['occlusion_boxes'] for k in range(1, 6)]
    variants += [t(dict(fresh(a), id=a['id'] + 1))['occlusion_boxes'],
                 SyntheticOcclusion(3, seed=1)(fresh(a))['occlusion_boxes']]
    assert sum(not np.array_equal(v, o1['occlusion_boxes']) for v in variants) >= 5
    # the texture fill changed the pixels under the patch
    x0, y0, x1, y1 = o1['occlusion_boxes'][0]
    assert not np.array_equal(o1['img'][y0:y1, x0:x1], a['img'][y0:y1, x0:x1])


def test_occlusion_area_grows_with_severity(loaded):
    def area(sev):
        return np.mean([sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in
                            SyntheticOcclusion(sev, seed=s)(fresh(it))['occlusion_boxes'])
                        for it in loaded for s in range(3)])
    areas = [area(s) for s in range(1, 6)]
    assert all(x < y for x, y in zip(areas, areas[1:])), areas


def test_occlusion_without_labelled_joint_and_fills():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
    base = dict(img=img, img_id=3, id=3, bbox=np.array([[10, 10, 50, 70.]]),
                keypoints=np.zeros((1, 17, 2)), keypoints_visible=np.zeros((1, 17)))
    out = SyntheticOcclusion(4, fill='mean')(fresh(base))
    assert list(out['occluded_joints']) == [-1, -1]
    assert not np.array_equal(out['img'], img)
    np.testing.assert_array_equal(out['keypoints_visible'], 0)  # still unlabelled, no more
    for fill in ('noise', 'texture'):
        o = SyntheticOcclusion(2, fill=fill, joints=[0])(
            dict(fresh(base), keypoints_visible=np.ones((1, 17))))
        assert list(o['occluded_joints']) == [0]


# ---------------------------------------------------------------- a real MMPose pipeline

def test_real_test_pipeline_on_lspet(lspet_test):
    clean_ds = lspet_test(VAL_PIPELINE, n=3)
    clean = [clean_ds[i] for i in range(len(clean_ds))]
    for shift in SHIFTS:
        ds = lspet_test(shift_pipeline(VAL_PIPELINE, shift, 3, seed=0), n=3)
        for i, c in enumerate(clean):
            s = ds[i]
            assert s['inputs'].shape == c['inputs'].shape == (3, INPUT_SIZE[1], INPUT_SIZE[0])
            assert not np.array_equal(s['inputs'].numpy(), c['inputs'].numpy()), shift
            np.testing.assert_array_equal(ds[i]['inputs'].numpy(), s['inputs'].numpy())
            gs, gc = s['data_samples'].gt_instances, c['data_samples'].gt_instances
            np.testing.assert_array_equal(gs.keypoints, gc.keypoints)
            np.testing.assert_array_equal(gs.keypoints_visible, gc.keypoints_visible)
            assert s['data_samples'].metainfo['img_id'] == c['data_samples'].metainfo['img_id']


def test_shift_inserted_into_the_repo_config_pipeline():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'configs/body_2d_keypoint/topdown_heatmap/lspet/td-hm_res18_1xb32-6e_lspet-128x96.py'))
    p = shift_pipeline(cfg.test_dataloader.dataset.pipeline, 'motion_blur', 5)
    built = [TRANSFORMS.build(t) for t in p]
    assert [type(t).__name__ for t in built][1:4] == [
        'GetBBoxCenterScale', 'ImageCorruption', 'TopdownAffine']


def test_imagecorruptions_imports_without_pkg_resources():
    """setuptools >= 82 drops ``pkg_resources``, which imagecorruptions imports: a stand-in
    is provided so the corruptions keep working."""
    import json
    import subprocess
    import sys
    shift_py = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                        'benchmarks', 'corruptions.py')
    code = ('import sys, json, importlib.util, numpy as np\n'
            'sys.modules["pkg_resources"] = None  # import pkg_resources -> ImportError\n'
            f'spec = importlib.util.spec_from_file_location("shift_mod", {shift_py!r})\n'
            'm = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n'
            'img = np.full((40, 40, 3), 128, np.uint8)\n'
            'out = m.ImageCorruption("gaussian_noise", 2)(dict(img=img, img_id=1))["img"]\n'
            'print(json.dumps(dict(changed=bool((out != img).any()), '
            'stub=sys.modules["pkg_resources"] is not None)))')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == dict(changed=True, stub=True)


def test_occlusion_in_a_real_pipeline_on_the_coco_sample(data_root):
    """17-keypoint COCO persons, several per image: in MMPose's own test pipeline the
    occlusion keeps every keypoint and its visibility, covers a labelled wrist or ankle
    of that person, and gives two persons of one image their own patches."""
    from mmpose.datasets import CocoDataset
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    root = osp.join(data_root, 'coco_sample')

    def build(pipeline):
        return CocoDataset(data_root=root + '/', ann_file='annotations/person_keypoints.json',
                           data_prefix=dict(img='images/'), data_mode='topdown',
                           test_mode=True, pipeline=pipeline)
    upto_affine = shift_pipeline(VAL_PIPELINE, 'occlusion', 5, seed=0)[:3]
    assert [t['type'] for t in upto_affine] == ['LoadImage', 'GetBBoxCenterScale',
                                               'SyntheticOcclusion']
    occ_ds, clean_ds = build(upto_affine), build(VAL_PIPELINE)
    packed = build(shift_pipeline(VAL_PIPELINE, 'occlusion', 5, seed=0))
    by_image = {}
    for i in range(min(len(occ_ds), 24)):
        r = occ_ds[i]
        vis = r['keypoints_visible'][0]
        raw = occ_ds.get_data_info(i)
        np.testing.assert_array_equal(r['keypoints'], raw['keypoints'])
        np.testing.assert_array_equal(r['keypoints_visible'], raw['keypoints_visible'])
        for j, (x0, y0, x1, y1) in zip(r['occluded_joints'], r['occlusion_boxes']):
            if j >= 0:
                assert j in DISTAL_JOINTS[17] and vis[j] > 0
                x, y = r['keypoints'][0, j]
                assert x0 <= x < x1 and y0 <= y < y1
        by_image.setdefault(r['img_id'], []).append(r['occlusion_boxes'].tobytes())
        # after TopdownAffine and packing: the same labels as the clean pipeline
        gs, gc = packed[i]['data_samples'].gt_instances, clean_ds[i]['data_samples'].gt_instances
        np.testing.assert_array_equal(gs.keypoints, gc.keypoints)
        np.testing.assert_array_equal(gs.keypoints_visible, gc.keypoints_visible)
    crowded = [boxes for boxes in by_image.values() if len(boxes) > 1]
    assert crowded and all(len(set(b)) == len(b) for b in crowded)
