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
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint', help='trained SCAI checkpoint')
    p.add_argument('out', help='refiner-only output file')
    p.add_argument('--note', default=None, help='provenance note stored in its meta')
    args = p.parse_args(argv)
    from mmpose_scai.utils.weights import extract_refiner, sha256sum
    meta = dict(note=args.note) if args.note else None
    out = extract_refiner(args.checkpoint, args.out, meta=meta)
    print(f'{out}: {osp.getsize(out)} bytes, sha256 {sha256sum(out)}')


if __name__ == '__main__':
    main()
