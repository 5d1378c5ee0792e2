"""Write the LSPET metafile (MMPose model-index format) from a benchmark report.

The Results of ``configs/body_2d_keypoint/scai/lspet/scai_lspet.yml`` are the numbers
``tools/benchmark.py`` printed; after a new benchmark run, refresh them with one command:

Example:
    python tools/make_metafile.py                          # from docs/benchmarks.json
    python tools/make_metafile.py --report work_dirs/benchmark/report.json

The SCAI model on the frozen BlazePose-GHUM base takes its Results from the BlazePose
benchmark report (``--blazepose-report``, default ``docs/benchmarks_blazepose.json``, used
when it exists); its Weights are the shipped refiner (rebuild a loadable checkpoint with
``mmpose_scai.utils.scai_checkpoint``). The 20-epoch ResNet-18 base and SCAI on it take
theirs from ``--r18-20e-report`` (default ``docs/benchmarks_r18-20e.json``).
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional

import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METAFILE = osp.join('configs', 'body_2d_keypoint', 'scai', 'lspet', 'scai_lspet.yml')
BASE_CFG = 'configs/body_2d_keypoint/topdown_heatmap/lspet/td-hm_res18_1xb32-6e_lspet-128x96.py'
SCAI_CFG = 'configs/body_2d_keypoint/scai/lspet/td-hm_res18_scai-1xb32-6e_lspet-128x96.py'
LITE_CFG = 'configs/body_2d_keypoint/scai/lspet/td-hm_res18_scai-lite-1xb32_lspet-128x96.py'
# (config, collection, architecture, benchmark row whose test settings match the config)
MODELS = [
    (BASE_CFG, 'SimpleBaseline2D-LSPET', ['SimpleBaseline2D', 'ResNet'], 'base'),
    (SCAI_CFG, 'SCAI-LSPET', ['SimpleBaseline2D', 'ResNet', 'SCAI'], '+SCAI'),
    (LITE_CFG, 'SCAI-LSPET', ['SimpleBaseline2D', 'ResNet', 'SCAI-Lite'], '+SCAI-Lite'),
]
BASE_20E_CFG = ('configs/body_2d_keypoint/topdown_heatmap/lspet/'
                'td-hm_res18_1xb32-20e_lspet-128x96.py')
SCAI_20E_CFG = ('configs/body_2d_keypoint/scai/lspet/'
                'td-hm_res18-20e_scai-1xb32-6e_lspet-128x96.py')
# models of the 20-epoch base's benchmark: (config, collection, architecture, row)
R18_20E_MODELS = [
    (BASE_20E_CFG, 'SimpleBaseline2D-LSPET', ['SimpleBaseline2D', 'ResNet'], 'base'),
    (SCAI_20E_CFG, 'SCAI-LSPET', ['SimpleBaseline2D', 'ResNet', 'SCAI'], '+SCAI'),
]
BLAZE_SCAI_CFG = ('configs/body_2d_keypoint/scai/lspet/'
                  'td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256.py')
BLAZE_REFINER = 'checkpoints/scai_blazepose-ghum-heavy_lspet-256x256.pth'
# models of the BlazePose benchmark: (config, collection, architecture, row, weights)
BLAZE_MODELS = [
    (BLAZE_SCAI_CFG, 'SCAI-LSPET', ['BlazePose-GHUM', 'SCAI'], '+SCAI', BLAZE_REFINER),
]
BLAZE_DATASETS = {
    'test': 'LSPET (test split, 1,000 persons; frozen BlazePose-GHUM heavy base)',
    'coco': 'COCO sample (80 persons, 12 limb joints; frozen BlazePose-GHUM heavy base)',
}
DATASETS = {  # report split -> metafile dataset name
    'test': 'LSPET (test split, 1,000 persons; CPU-trained base)',
    'coco': 'COCO sample (80 persons, 12 limb joints; cross-dataset)',
}
COLLECTIONS = [
    dict(Name='SCAI-LSPET',
         Paper=dict(Title='Self-Correctable and Adaptable Inference for Generalizable '
                    'Human Pose Estimation', URL='https://arxiv.org/abs/2303.11180'),
         README='configs/body_2d_keypoint/scai/README.md'),
    dict(Name='SimpleBaseline2D-LSPET',
         Paper=dict(Title='Simple baselines for human pose estimation and tracking',
                    URL='https://arxiv.org/abs/1804.06208'),
         README='docs/benchmarks.md'),
]


def _metrics(row: Dict) -> Dict[str, float]:
    keys = [('AP', 'AP'), ('AP@0.5', 'AP50'), ('AP@0.75', 'AP75'), ('AR', 'AR'),
            ('PCK@0.2', 'pck'), ('distal error / torso', 'distal_err')]
    return {name: round(float(row[k]), 4) for name, k in keys if row.get(k) is not None}


def _find(rows: List[Dict], name: str) -> Optional[Dict]:
    return next((r for r in rows if r['variant']['name'] == name), None)


def _model(report: Dict, config: str, collection: str, arch: List[str], row_name: str,
           datasets: Dict[str, str]) -> Dict:
    results, variant = [], None
    for split, dataset in datasets.items():
        row = _find(report.get('rows', {}).get(split, []), row_name)
        if row is not None:
            variant = row['variant']
            results.append(dict(Dataset=dataset, Metrics=_metrics(row),
                                Task='Body 2D Keypoint'))
    meta = dict(Architecture=arch, **{'Training Data': 'LSPET'})
    if variant is not None:
        settings = ', '.join(f'{k}={variant.get(k)}'
                             for k in ('flip', 'refine', 'rounds', 'tta'))
        meta['Benchmark'] = (f'tools/benchmark.py, {report.get("finished", "?")}, '
                             f'row "{row_name}" ({settings})')
    model = {'Config': config, 'In Collection': collection, 'Metadata': meta,
             'Name': osp.splitext(osp.basename(config))[0]}
    if results:
        model['Results'] = results
    return model


def lspet_metafile(report: Dict, blaze_report: Optional[Dict] = None,
                   r18_20e_report: Optional[Dict] = None) -> Dict:
    """The LSPET metafile as a dict, Results filled from a benchmark report.

    Args:
        report: ``tools/benchmark.py``'s JSON (``rows`` per split, each row with
            ``variant.name`` and COCO-style metrics).
        blaze_report: The same for the BlazePose base (``make benchmark-blazepose``);
            None: its models are listed without Results.
        r18_20e_report: The same for the 20-epoch ResNet-18 base
            (``make benchmark-r18-20e``); None: its models are listed without Results.

    Returns:
        dict: ``Collections`` and ``Models`` in MMPose's metafile layout; a model
        whose row is not in the report gets no ``Results``.
    """
    models = [_model(report, config, collection, arch, row_name, DATASETS)
              for config, collection, arch, row_name in MODELS]
    models += [_model(r18_20e_report or {}, config, collection, arch, row_name, DATASETS)
               for config, collection, arch, row_name in R18_20E_MODELS]
    for config, collection, arch, row_name, weights in BLAZE_MODELS:
        model = _model(blaze_report or {}, config, collection, arch, row_name,
                       BLAZE_DATASETS)
        model['Metadata']['Weights note'] = (
            'SCAI refiner only; with the converted base: '
            'mmpose_scai.utils.scai_checkpoint(blazepose_checkpoint("heavy"), Weights)')
        model['Weights'] = weights
        models.append(model)
    return dict(Collections=COLLECTIONS, Models=models)


def dump(metafile: Dict) -> str:
    """YAML text with a header naming the generator (key order kept)."""
    header = ('# LSPET models of this plugin (CPU benchmark, not COCO). Generated by\n'
              '# tools/make_metafile.py from the benchmark report; do not edit by hand.\n')
    return header + yaml.safe_dump(metafile, sort_keys=False, allow_unicode=True,
                                   width=100)


def _load_if_there(path: str) -> Optional[Dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--report', default=osp.join('docs', 'benchmarks.json'))
    parser.add_argument('--blazepose-report',
                        default=osp.join('docs', 'benchmarks_blazepose.json'))
    parser.add_argument('--r18-20e-report',
                        default=osp.join('docs', 'benchmarks_r18-20e.json'))
    parser.add_argument('--out', default=METAFILE)
    args = parser.parse_args(argv)
    path = args.report if osp.isabs(args.report) else osp.join(REPO, args.report)
    with open(path) as f:
        report = json.load(f)
    optional = [_load_if_there(osp.join(REPO, p))  # an absolute path stays as it is
                for p in (args.blazepose_report, args.r18_20e_report)]
    text = dump(lspet_metafile(report, *optional))
    out = args.out if osp.isabs(args.out) else osp.join(REPO, args.out)
    with open(out, 'w') as f:
        f.write(text)
    print(f'wrote {args.out} from {args.report}')


if __name__ == '__main__':
    main()
