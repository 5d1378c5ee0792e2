"""CPU latency per instance of the SCAI refinement (heatmap or lite), with and without TTA.

The base is excluded: it runs once, and only ``SCAIHead.refine`` (prepare, correction,
write-back; plus adaptation with ``--tta``) is timed on its heatmaps. As in
``scai_cost.py`` every chain is refined (all chains enabled, no anchor rejected), so the
figures are the worst case of one batch.

Example:
    python tools/analysis/scai_latency.py \
        configs/body_2d_keypoint/scai/lspet/td-hm_res18_scai-lite-1xb32_lspet-128x96.py \
        --batch 32 --tta '{}' --threads 1
"""
import argparse
import json

import os.path as osp  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # the repository root: benchmarks/
import mmpose_scai  # noqa: F401  (shims first)
import torch
from mmengine.config import Config

from mmpose.apis import init_model
from benchmarks.cost import refinement_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--tta', default=None,
                        help='TestTimeAdapter options as JSON, e.g. \'{}\' (default '
                        'preset) or \'{"preset": "paper"}\'; omit for no TTA timing')
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    w, h = cfg.codec['input_size']
    model = init_model(cfg, args.checkpoint, device='cpu')
    head = model.head
    head.chain_labelled.fill_(1)
    head.refiner.min_anchor_score = 0.
    torch.manual_seed(0)
    with torch.no_grad():
        heatmaps, f = head.base_forward(model.extract_feat(torch.rand(args.batch, 3, h, w)))
    tta = None if args.tta is None else json.loads(args.tta)
    out = refinement_latency(head, heatmaps, f, args.repeat, args.rounds, tta)
    print(json.dumps(dict(config=args.config.split('/')[-1],
                          refiner=type(head.refiner).__name__, **out), indent=1))


if __name__ == '__main__':
    main()
