"""The three-base table: SCAI's gain and E_s's quality against the strength of the base.

Each argument is ``NAME=REPORT`` (a ``tools/benchmark.py`` report.json); a report that
does not exist is listed as "not finished this session".

Example:
    python tools/benchmark_bases.py "ResNet-18, 6 epochs=docs/benchmarks.json" \\
        "BlazePose-GHUM heavy=docs/benchmarks_blazepose.json"
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.report import bases_table  # noqa: E402


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('bases', nargs='+', help='NAME=REPORT')
    p.add_argument('--out', default=None, help='also write the table to this file')
    args = p.parse_args(argv)
    reports = {}
    for item in args.bases:
        name, _, path = item.partition('=')
        if osp.isfile(path):
            with open(path) as f:
                reports[name] = json.load(f)
        else:
            reports[name] = None
    text = bases_table(reports)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return text


if __name__ == '__main__':
    main()
