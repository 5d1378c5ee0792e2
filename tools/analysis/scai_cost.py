"""Params, FLOPs and CPU time of the SCAI refinement vs its base model.

Example:
    python tools/analysis/scai_cost.py \
        configs/body_2d_keypoint/scai/coco/td-hm_hrnet-w32_scai-8xb64-210e_coco-256x192.py
"""
import argparse
import json

import os.path as osp  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # the repository root: benchmarks/
import mmpose_scai  # noqa: F401  (shims first)
from mmengine.config import Config

from mmpose.apis import init_model
from benchmarks.cost import refinement_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    w, h = cfg.codec['input_size']
    model = init_model(cfg, None, device='cpu')
    cost = refinement_cost(model, (args.batch, 3, h, w), args.repeat)
    print(json.dumps(dict(config=args.config.split('/')[-1], batch=args.batch, **cost),
                     indent=1))


if __name__ == '__main__':
    main()
