"""The benchmark pipeline end to end on a handful of real images with tiny models."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks import Pipeline, Settings
from benchmarks.cache import build_model
from benchmarks.data_root import repo_root
from benchmarks.pipeline import BASE_CONFIG

TINY_BASE = {'model.backbone.base_channels': 16, 'model.head.in_channels': 128,
             'model.head.deconv_out_channels': (32, 32, 32)}
TINY_SCAI = {'model.backbone.base_channels': 16, 'model.head.base_head.in_channels': 128,
             'model.head.base_head.deconv_out_channels': (32, 32, 32)}


def cli_options(options: dict) -> list:
    return [f'{k}={v}' for k, v in options.items()]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``tools/benchmark.py`` as a user runs it, from the repository root."""
    proc = subprocess.run([sys.executable, 'tools/benchmark.py', *args], cwd=repo_root(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def finished(data_root, tmp_path_factory):
    """``tools/benchmark.py --quick`` end to end, shrunk further (tiny untrained base,
    8 images per split, 1 epoch per SCAI stage on 8 images); a second run on the same
    work dir reuses everything."""
    wd = tmp_path_factory.mktemp('bench')
    # an untrained tiny base saved as an ordinary MMPose checkpoint
    probe = Pipeline(Settings(work_dir=str(wd), base_cfg_options=dict(TINY_BASE),
                              base_config=osp.join(repo_root(), BASE_CONFIG)),
                     echo=lambda m: None)
    model = build_model(probe.cfg('base'))
    torch.save(dict(state_dict=model.state_dict(), meta={}), wd / 'base.pth')
    args = ['--quick', '--work-dir', str(wd), '--base-checkpoint', str(wd / 'base.pth'),
            '--limit', '8', '--batch-size', '4', '--num-workers', '0', '--bootstrap', '20',
            '--train-images', '8',
            '--base-cfg-options', *cli_options(TINY_BASE),
            '--scai-cfg-options', *cli_options(TINY_SCAI),
            '--lite-options', 'train_images=8', 'prior_epochs=(1,0)',
            'finetune_epochs=(1,1,1)', 'latency_batch=4', 'latency_repeat=2']
    first = run_cli(*args)
    rep = json.loads((wd / 'report.json').read_text())
    # interrupt the main SCAI training after its second epoch: the rerun resumes it
    [main] = wd.glob('given/*/scai/main')
    (main / 'epoch_3.pth').unlink()
    (main / 'last_checkpoint').write_text(str(main / 'epoch_2.pth'))
    again = run_cli(*args)
    rep2 = json.loads((wd / 'report.json').read_text())
    return dict(wd=wd, rep=rep, rep2=rep2, messages=first.stdout, again=again.stdout)


def test_pipeline_runs_every_step_and_reports(finished):
    rep, wd = finished['rep'], finished['wd']
    names = [r['variant']['name'] for r in rep['rows']['test']]
    for name in ('base', 'base+flip', '+SCAI', '+SCAI+TTA', '+SCAI+TTA+flip',
                 '+SCAI+TTA paper preset', 'switch: continual',
                 'ablation: C, Gamma frozen'):
        assert name in names
    for split in ('test', 'coco'):
        for r in rep['rows'][split]:
            assert r["n"] == 8
            assert 0 <= r['AP'] <= 1 and 0 <= r['pck'] <= 1
            if r['variant']['name'] != 'base+flip':
                b = r['dAP_vs_base_flip']
                assert b['lo'] <= b['diff'] + 1e-12 and b['diff'] <= b['hi'] + 1e-12
    assert set(rep['analysis']) >= {'val', 'test', 'coco', 'bootstrap'}
    sig = rep['analysis']['test']['signal']['base']
    assert sig['n_chain'] > 0
    assert osp.exists(wd / 'report.json') and osp.exists(wd / 'report.md')
    md = (wd / 'report.md').read_text()
    assert 'COCO sample' in md and 'base+flip' in md
    assert json.loads((wd / 'report.json').read_text())['tuning']['chosen']
    # the COCO sample is scored on limb joints only: face keypoints removed
    [path] = list((wd / 'ann').glob('coco_*_limbs.json'))
    ann = json.loads(path.read_text())
    assert all(a['keypoints'][:15] == [0] * 15 for a in ann['annotations'])


def test_base_row_equals_plain_decoding(finished):
    """The cached base heatmaps decode to the same AP as the base model through
    CocoMetric, and the flip cache differs from the plain one."""
    wd = finished['wd']
    cache = torch.load(wd / 'given' / 'cache' / 'test.pt', weights_only=False)
    assert cache['heatmaps'].shape[0] == 8 and cache['feats'].dtype == torch.float16
    assert not torch.equal(cache['heatmaps'], cache['heatmaps_flip'])
    assert np.isfinite(cache['meta']['gt_keypoints']).all()


def test_second_run_reuses_the_cached_steps(finished):
    again = finished['again']
    assert 'already trained, reused' in again  # the ablation
    assert 'resumed from epoch 2' in again  # the main training, interrupted
    assert [p.name for p in finished['wd'].glob('given/*/scai/main/epoch_3.pth')]
    assert 'tuning (cached)' in again
    r1 = {r['variant']['name']: r['AP'] for r in finished['rep']['rows']['test']}
    r2 = {r['variant']['name']: r['AP'] for r in finished['rep2']['rows']['test']}
    assert r1 == r2


LITE_ROWS = ('+SCAI-Lite', '+SCAI-Lite+flip', '+SCAI-Lite+TTA', '+SCAI-Lite+TTA+flip')


def test_lite_rows_next_to_the_heatmap_rows(finished):
    """SCAI-Lite is trained, tuned on val only, timed, and its rows join both tables
    (with bootstrap intervals) and the markdown report."""
    rep, wd = finished['rep'], finished['wd']
    lite = rep['lite']
    for split in ('test', 'coco'):
        rows = {r['variant']['name']: r for r in rep['rows'][split]}
        assert '+SCAI' in rows
        for name in LITE_ROWS:
            r = rows[name]
            assert r['variant']['model'] == f'lite_{lite["chosen"]["start"]}'
            assert 0 <= r['AP'] <= 1 and np.isfinite(r['distal_err'])
            assert 'dAP_vs_base_flip' in r
        assert rows['+SCAI-Lite+TTA']['tta']['steps'] >= 0
    # choices come from the validation grid, and only val holds tuning rows
    assert len(lite['grid']) == 2 * 2 and len(lite['tta_grid']) == 4
    best = max(g['AP'] for g in lite['grid'])
    assert [g for g in lite['grid'] if g['AP'] == best and
            g['start'] == lite['chosen']['start']]
    ldir = wd / lite['work_dir'].replace('<work_dir>/', '')
    assert ldir.parent == wd / 'given' and ldir.name.startswith('lite_')
    rows_dir = ldir / 'rows'
    assert list((rows_dir / 'val').glob('lite_tune*.json'))
    assert not list((rows_dir / 'test').glob('*tune*'))
    assert not list((rows_dir / 'coco').glob('*tune*'))
    for st in ('phi', 'base'):
        assert (ldir / f'lite_{st}.pth').exists()
    # the fine-tuning data: a base pass over a subset of LSPET-train minus the holdout
    pts = torch.load(wd / 'given' / 'cache' / 'train8_s0_points.pt', weights_only=False)
    assert pts['pred'].shape == (8, 17, 2) and pts['n_total'] > 8
    assert lite['training']['train_instances'] == 8
    for lt in lite['latency'].values():
        assert lt['batch'] == 4 and lt['ms_per_instance'] > 0
        assert lt['tta_ms_per_instance'] > 0
    md = (wd / 'report.md').read_text()
    assert 'SCAI-Lite' in md and 'ms / instance with TTA' in md
    assert '+SCAI-Lite+TTA+flip' in md


def test_lite_changes_predictions_and_is_reused(finished):
    """The every-chain switch refines (its keypoints differ from the base's) and a
    second run reuses the lite checkpoints and choices."""
    rep = finished['rep']
    rows = {r['variant']['name']: r for r in rep['rows']['test']}
    r_all = rows.get('SCAI-Lite switch: every chain', rows['+SCAI-Lite'])
    assert r_all['corrected_frac'] > 0
    again = finished['again']
    assert 'lite start=' not in again and 'lite chosen on val' in again
    r2 = {r['variant']['name']: r['AP'] for r in finished['rep2']['rows']['coco']}
    for name in LITE_ROWS:
        assert r2[name] == {r['variant']['name']: r['AP']
                            for r in rep['rows']['coco']}[name]


def test_report_json_has_no_machine_paths(finished):
    """Checkpoints, configs and work dirs are written relative to the repository root
    or the work dir (this work dir is outside the repository)."""
    wd = finished['wd']
    text = (wd / 'report.json').read_text()
    assert str(wd) not in text and repo_root() not in text
    rep = json.loads(text)
    assert rep['settings']['base_config'] == BASE_CONFIG
    assert rep['lite']['checkpoints']['phi'] == rep['lite']['work_dir'] + '/lite_phi.pth'
    assert rep['lite']['work_dir'].startswith('<work_dir>/given/lite_')

    def strings(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from strings(v)
        elif isinstance(o, list):
            for v in o:
                yield from strings(v)
        elif isinstance(o, str):
            yield o
    assert not [t for t in strings(rep) if t.startswith('/')]
