"""The benchmark's BlazePose path on a handful of real images: SCAI trained on cached
base features, the 4-rotation rows, the headline rows only (untrained lite BlazePose)."""
import os.path as osp

import numpy as np
import pytest
import torch

from benchmarks import Pipeline, Settings
from benchmarks.cache import build_model
from benchmarks.data_root import DATA_ROOT_ENV, repo_root

BLAZE_BASE = osp.join('configs', 'body_2d_keypoint', 'topdown_heatmap', 'blazepose',
                      'td-hm_blazepose-ghum-heavy_lspet-256x256.py')
BLAZE_SCAI = osp.join('configs', 'body_2d_keypoint', 'scai', 'lspet',
                      'td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256.py')
# the lite architecture (32 feature channels) keeps the test fast; weights untrained
LITE_BASE = {'model.backbone.arch': 'lite', 'model.head.in_channels': 32}
LITE_SCAI = {'model.backbone.arch': 'lite', 'model.head.base_head.in_channels': 32,
             'model.head.refiner.min_anchor_score': 0.0}


@pytest.fixture(scope='module')
def finished(data_root, tmp_path_factory):
    wd = tmp_path_factory.mktemp('bench_blaze')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ROOT_ENV, data_root)
        root = repo_root()
        s = Settings(work_dir=str(wd), base_config=osp.join(root, BLAZE_BASE),
                     scai_config=osp.join(root, BLAZE_SCAI), limit=4, batch_size=4,
                     num_workers=0, bootstrap=20, train_images=8, lite=None,
                     ablation=False, switch_rows=False, feature_cache=True,
                     rotation=True,
                     stages=dict(pretrain_epochs=1, correct_epochs=1, multi_epochs=1,
                                 max_rounds=2),
                     base_cfg_options=dict(LITE_BASE), scai_cfg_options=dict(LITE_SCAI))
        probe = Pipeline(s, echo=lambda m: None)
        torch.manual_seed(0)
        model = build_model(probe.cfg('base'))
        torch.save(dict(state_dict=model.state_dict(), meta={}), wd / 'base.pth')
        s.base_checkpoint = str(wd / 'base.pth')
        messages = []
        rep = Pipeline(s, echo=messages.append).run()
    return dict(wd=wd, rep=rep, messages=messages)


def test_scai_trains_on_cached_features(finished):
    wd, rep = finished['wd'], finished['rep']
    path = wd / 'given' / 'cache' / 'train8_s0_feats.pt'
    cached = torch.load(path, weights_only=False)
    assert cached['feats'].shape == (8, 32, 64, 64)
    assert cached['feats'].dtype == torch.float16
    assert len(cached['data_samples']) == 8
    assert cached['data_samples'][0].gt_fields.heatmaps.shape == (17, 64, 64)
    assert rep['steps']['3 train SCAI']['feature_cache']['n'] == 8
    ckpt = torch.load(rep['scai_checkpoints']['scai'].replace('<work_dir>', str(wd)),
                      weights_only=False)
    keys = ckpt['state_dict']
    # the pass-through backbone has no weights; the refiner trained and was saved
    assert not any(k.startswith('backbone.') for k in keys)
    assert any(k.startswith('head.refiner.corr.') for k in keys)
    assert 'head.base_head.final_layer.weight' in keys
    base = torch.load(wd / 'base.pth', weights_only=False)['state_dict']
    assert torch.equal(keys['head.base_head.final_layer.weight'],
                       base['head.final_layer.weight'])


def test_headline_and_rotation_rows(finished):
    rep = finished['rep']
    for split in ('test', 'coco'):
        names = [r['variant']['name'] for r in rep['rows'][split]]
        assert not any(n.startswith(('switch:', 'ablation:')) for n in names)
        assert names[:2] == ['base', 'base+flip']
        for n in ('base rot4 (peak)', 'base rot4 (E_s)', '+SCAI rot4 (peak)',
                  '+SCAI rot4 (E_s)'):
            row = next(r for r in rep['rows'][split] if r['variant']['name'] == n)
            assert np.isclose(sum(row['rotation_share']), 1.0)
            assert 0.0 <= row['AP'] <= 1.0
            assert 'dAP_vs_base_flip' in row
    assert any('rotation test k=3' in m for m in finished['messages'])


def test_e_s_is_reported_per_chain(finished):
    per = finished['rep']['analysis']['test']['signal']['base']['per_chain']
    assert set(per) <= {'left_arm', 'right_arm', 'left_leg', 'right_leg', 'left_head',
                        'right_head'}
    assert per and all(c['n'] > 2 for c in per.values())
    # None: undefined (constant values among a handful of persons)
    assert all(c[k] is None or -1 <= c[k] <= 1 for c in per.values()
               for k in ('spearman_es', 'spearman_conf'))
