"""Regenerate the embedded demo subset ``data/demo`` from the shared data root.

The subset keeps the folder layout of the shared data (``coco_sample/``, ``lspet/``),
so a config works on either unchanged. Usage::

    python tools/make_demo_subset.py [--src ../shared/data] [--dst data/demo]
"""
import argparse
import json
import os
import os.path as osp
import shutil
from typing import Dict, List

# The four COCO val2017 images that also ship in open-mmlab/mmpose tests/data/coco.
COCO_IMAGE_IDS = [785, 40083, 196141, 197388]
LSPET_NUM_TEST = 20  # the first test images, in id order


def subset_coco(coco: Dict, image_ids: List[int]) -> Dict:
    """Keep the given images with all of their annotations."""
    keep = set(image_ids)
    out = {k: v for k, v in coco.items() if k not in ('images', 'annotations')}
    out['images'] = [im for im in coco['images'] if im['id'] in keep]
    out['annotations'] = [a for a in coco['annotations'] if a['image_id'] in keep]
    missing = keep - {im['id'] for im in out['images']}
    if missing:
        raise ValueError(f'image ids not in the source annotations: {sorted(missing)}')
    return out


def copy_subset(src: str, dst: str, ann_rel: str, img_rel: str,
                image_ids: List[int]) -> Dict:
    """Write the filtered annotation file and copy its images from ``src`` to ``dst``."""
    with open(osp.join(src, ann_rel)) as f:
        coco = subset_coco(json.load(f), image_ids)
    os.makedirs(osp.dirname(osp.join(dst, ann_rel)), exist_ok=True)
    os.makedirs(osp.join(dst, img_rel), exist_ok=True)
    with open(osp.join(dst, ann_rel), 'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    for im in coco['images']:
        shutil.copyfile(osp.join(src, img_rel, im['file_name']),
                        osp.join(dst, img_rel, im['file_name']))
    return coco


def main() -> None:
    here = osp.dirname(osp.dirname(osp.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', default=osp.join(here, '..', 'shared', 'data'))
    parser.add_argument('--dst', default=osp.join(here, 'data', 'demo'))
    args = parser.parse_args()

    for sub in ('coco_sample', 'lspet'):
        shutil.rmtree(osp.join(args.dst, sub), ignore_errors=True)
    coco = copy_subset(osp.join(args.src, 'coco_sample'), osp.join(args.dst, 'coco_sample'),
                       'annotations/person_keypoints.json', 'images', COCO_IMAGE_IDS)
    with open(osp.join(args.src, 'lspet', 'annotations', 'test.json')) as f:
        lspet_ids = sorted(im['id'] for im in json.load(f)['images'])[:LSPET_NUM_TEST]
    lspet = copy_subset(osp.join(args.src, 'lspet'), osp.join(args.dst, 'lspet'),
                        'annotations/test.json', 'images', lspet_ids)
    shutil.copyfile(osp.join(args.src, 'lspet', 'LSPET_README.txt'),
                    osp.join(args.dst, 'lspet', 'LSPET_README.txt'))
    for name, ds in (('coco_sample', coco), ('lspet', lspet)):
        persons = sum(a.get('num_keypoints', 0) > 0 for a in ds['annotations'])
        print(f'{name}: {len(ds["images"])} images, {len(ds["annotations"])} '
              f'annotations ({persons} persons with keypoints)')


if __name__ == '__main__':
    main()
