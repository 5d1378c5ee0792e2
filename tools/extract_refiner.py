"""Write the SCAI refiner of a trained SCAI checkpoint (no base weights) to a small file.

The base of the BlazePose SCAI model is not trained here (it is converted from
MediaPipe's model, see tools/fetch_blazepose.py), so only the refiner is shipped;
``mmpose_scai.utils.scai_checkpoint(base, refiner)`` rebuilds a loadable checkpoint.

Example:
    python tools/extract_refiner.py \\
        work_dirs/benchmark-blazepose/given/scai_n2000_s3-2-1/scai/main/epoch_6.pth \\
        checkpoints/scai_blazepose-ghum-heavy_lspet-256x256.pth
"""
import argparse
import os.path as osp
from typing import Optional

import torch

from mmpose_scai.utils.weights import REFINER_KEYS, save_checkpoint, sha256sum


def extract_refiner(checkpoint: str, out: str, meta: Optional[dict] = None) -> str:
    """Write only the SCAI refiner of a trained SCAI checkpoint (``head.refiner.*`` and
    ``head.chain_labelled``) to ``out``: a small file to ship without the base.

    Args:
        checkpoint (str): A checkpoint of a ``SCAIPoseEstimator`` (MMEngine format).
        out (str): Output path.
        meta (dict, optional): Merged into the output's ``meta`` (provenance).

    Returns:
        str: ``out``.
    """
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    state = ckpt.get('state_dict', ckpt)
    refiner = {k: v for k, v in state.items() if k.startswith(REFINER_KEYS)}
    if not any(k.startswith('head.refiner.') for k in refiner):
        raise KeyError(f'{checkpoint} has no SCAI refiner weights (head.refiner.*)')
    src_meta = ckpt.get('meta', {}) if isinstance(ckpt.get('meta'), dict) else {}
    info = {k: src_meta[k] for k in ('epoch', 'iter', 'dataset_meta') if k in src_meta}
    info.update(meta or {})
    save_checkpoint(dict(state_dict=refiner, meta=info), out)
    return out




def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint', help='trained SCAI checkpoint')
    p.add_argument('out', help='refiner-only output file')
    p.add_argument('--note', default=None, help='provenance note stored in its meta')
    args = p.parse_args(argv)
    meta = dict(note=args.note) if args.note else None
    out = extract_refiner(args.checkpoint, args.out, meta=meta)
    print(f'{out}: {osp.getsize(out)} bytes, sha256 {sha256sum(out)}')


if __name__ == '__main__':
    main()
