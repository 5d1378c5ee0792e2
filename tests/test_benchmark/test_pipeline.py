"""The benchmark pipeline end to end on a handful of real images with tiny models."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmpose_scai.benchmark import Pipeline, Settings
from mmpose_scai.benchmark.cache import build_model
from mmpose_scai.benchmark.pipeline import BASE_CONFIG, SCAI_CONFIG
from mmpose_scai.utils import DATA_ROOT_ENV, repo_root

TINY_BASE = {'model.backbone.base_channels': 16, 'model.head.in_channels': 128,
             'model.head.deconv_out_channels': (32, 32, 32)}
TINY_SCAI = {'model.backbone.base_channels': 16, 'model.head.base_head.in_channels': 128,
             'model.head.base_head.deconv_out_channels': (32, 32, 32),
             'model.head.refiner.min_anchor_score': 0.0}


@pytest.fixture(scope='module')
def finished(data_root, tmp_path_factory):
    """One pipeline run (tiny untrained base, 1 epoch per SCAI stage on 16 images,
    16 images per split); a second run on the same work dir reuses everything."""
    wd = tmp_path_factory.mktemp('bench')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ROOT_ENV, data_root)
        root = repo_root()
        s = Settings(work_dir=str(wd), base_config=osp.join(root, BASE_CONFIG),
                     scai_config=osp.join(root, SCAI_CONFIG), limit=8, batch_size=4,
                     num_workers=0, bootstrap=20, train_images=8,
                     stages=dict(pretrain_epochs=1, correct_epochs=1, multi_epochs=1,
                                 max_rounds=2),
                     base_cfg_options=dict(TINY_BASE), scai_cfg_options=dict(TINY_SCAI))
        # an untrained tiny base saved as an ordinary MMPose checkpoint
        probe = Pipeline(s, echo=lambda m: None)
        model = build_model(probe.cfg('base'))
        torch.save(dict(state_dict=model.state_dict(), meta={}), wd / 'base.pth')
        s.base_checkpoint = str(wd / 'base.pth')
        messages = []
        rep = Pipeline(s, echo=messages.append).run()
        again = []
        rep2 = Pipeline(s, echo=again.append).run()
    return dict(wd=wd, rep=rep, rep2=rep2, messages=messages, again=again)


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
    again = '\n'.join(finished['again'])
    assert 'already trained, reused' in again
    assert 'tuning (cached)' in again
    r1 = {r['variant']['name']: r['AP'] for r in finished['rep']['rows']['test']}
    r2 = {r['variant']['name']: r['AP'] for r in finished['rep2']['rows']['test']}
    assert r1 == r2
