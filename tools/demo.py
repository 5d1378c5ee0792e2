"""`make demo`: the main job on real data.

For now: a plain MMPose test (Runner test loop + CocoMetric) of a tiny top-down config
on the COCO sample of the data root (``$SCAI_DATA_ROOT``, ``../shared/data`` or the
embedded demo subset), printing COCO AP. The SCAI end-to-end run will replace it.
"""
import argparse
import os.path as osp
import time
from typing import Dict, Optional

import mmpose_scai  # noqa: F401  (compat shims before anything imports mmpose.models)
from mmengine.config import Config
from mmengine.runner import Runner

from mmpose_scai.utils import repo_root, resolve_data_root

DEFAULT_CONFIG = osp.join('configs', 'body_2d_keypoint', 'topdown_heatmap', 'coco',
                          'td-hm_res18_1xb16-1e_coco-sample-128x96.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=osp.join(repo_root(), DEFAULT_CONFIG))
    parser.add_argument('--checkpoint', help='weights to test (default: untrained)')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    return parser.parse_args()


def run_test(config: str, work_dir: str, checkpoint: Optional[str] = None) -> Dict:
    """Run the test loop of ``config`` and return its metrics."""
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.default_hooks.visualization = dict(type='PoseVisualizationHook', enable=False)
    return Runner.from_cfg(cfg).test()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    print(f'data root: {resolve_data_root()}')
    metrics = run_test(args.config, args.work_dir, args.checkpoint)
    print(f'COCO AP on coco_sample: {metrics["coco/AP"]:.4f} '
          f'(AR {metrics["coco/AR"]:.4f}; {time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
