"""The shift evaluation (issue 13): units on synthetic results, and one end-to-end run of
real MMPose pipelines with shifted real images, tiny untrained models and 8 instances."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from benchmarks import Pipeline, Settings
from benchmarks.cache import build_model
from benchmarks.pipeline import BASE_CONFIG, SCAI_CONFIG
from benchmarks.shift import (CLEAN, ShiftBenchmark, ShiftSettings, goals,
                                         relative_paths, render_markdown, shift_methods,
                                         subset_cache, subset_indices, summarize)
from benchmarks.data_root import DATA_ROOT_ENV, repo_root

CHOSEN = dict(start='base', rounds=3,
              tta=dict(preset='default', select_quantile=None, safeguard='batch'))
TINY_BASE = {'model.backbone.base_channels': 16, 'model.head.in_channels': 128,
             'model.head.deconv_out_channels': (32, 32, 32)}
TINY_SCAI = {'model.backbone.base_channels': 16, 'model.head.base_head.in_channels': 128,
             'model.head.base_head.deconv_out_channels': (32, 32, 32),
             'model.head.refiner.min_anchor_score': 0.0}


# ------------------------------------------------------------------------ units

def test_methods_follow_the_tuned_settings():
    ms = {m.name: m for m in shift_methods(CHOSEN)}
    assert list(ms) == ['base', 'base+flip', '+SCAI', '+SCAI+flip', '+SCAI+TTA',
                        '+SCAI+TTA+flip', '+SCAI+TTA selective', '+SCAI+TTA continual']
    assert not ms['base'].refine and not ms['base+flip'].refine and ms['base+flip'].flip
    for name in list(ms)[2:]:
        assert (ms[name].start, ms[name].rounds) == ('base', 3)
    assert ms['+SCAI'].tta is None and ms['+SCAI+flip'].flip
    assert ms['+SCAI+TTA'].tta == dict(CHOSEN['tta'], mode='episodic')
    assert ms['+SCAI+TTA selective'].tta['select_quantile'] == 0.5
    assert ms['+SCAI+TTA selective'].tta['mode'] == 'episodic'
    assert ms['+SCAI+TTA continual'].tta['mode'] == 'continual'
    assert CHOSEN['tta'] == dict(preset='default', select_quantile=None, safeguard='batch')


def test_subset_is_fixed_sorted_and_seeded():
    a = subset_indices(1000, 50, seed=0)
    assert a == subset_indices(1000, 50, seed=0) and a == sorted(set(a)) and len(a) == 50
    assert a != subset_indices(1000, 50, seed=1)
    assert subset_indices(1000, None) is None and subset_indices(10, 20) is None
    cache = dict(heatmaps=torch.arange(10.).view(10, 1, 1, 1), heatmaps_flip=None,
                 feats=torch.arange(10.).view(10, 1, 1, 1), meta=dict(id=np.arange(10) + 100))
    sub = subset_cache(cache, [1, 4])
    assert sub['heatmaps'].flatten().tolist() == [1., 4.]
    assert sub['meta']['id'].tolist() == [101, 104] and sub['heatmaps_flip'] is None
    assert subset_cache(cache, None) is cache


def _synthetic_results(methods, shifts=('contrast', 'occlusion'), sevs=(1, 3, 5)):
    """AP falls with severity; SCAI gains 0.01 per severity; E_s follows the error."""
    out = []
    for split in ('test', 'coco'):
        for sh, v in [(CLEAN, 0)] + [(s, v) for s in shifts for v in sevs]:
            k = 1 if sh == 'contrast' else 2
            base_ap = 0.5 - 0.05 * v * k
            rows = {m: dict(AP=base_ap + (0.01 * v if 'SCAI' in m else 0.0)
                            + (0.005 if 'flip' in m else 0.0), pck=0.5 - 0.02 * v,
                            distal_err=1.0 + 0.1 * v * k) for m in methods}
            out.append(dict(shift=sh, severity=v, split=split, n=10, seconds=1.0, rows=rows,
                            detector=dict(E_base=1.0 + 0.02 * v * k, E_base_rel=0.5, one_minus_score=0.5,
                                          distal_err=1.0 + 0.1 * v * k, inst_r_err=0.1)))
    return out


def test_summary_means_goals_and_detector_correlation():
    methods = [m.name for m in shift_methods(CHOSEN)]
    res = _synthetic_results(methods)
    summ = summarize(res, methods, (1, 3, 5), ('test', 'coco'))['test']
    assert summ['shifts'] == ['contrast', 'occlusion']
    # mean over the two shifts at severity 3: (0.5 - 0.15 + 0.5 - 0.30) / 2
    assert summ['mean']['base']['3']['AP'] == pytest.approx(0.275)
    assert summ['mean']['base']['0']['AP'] == pytest.approx(0.5)
    all_ap = np.mean([0.5 - 0.05 * v * k for k in (1, 2) for v in (1, 3, 5)])
    assert summ['mean']['base']['all']['AP'] == pytest.approx(all_ap)
    g = summ['goals']
    assert g['tta_ge_scai'] and g['scai_ge_base_flip']  # mean gain 0.03 > flip's 0.005
    assert g['gain_grows_with_severity']
    assert g['tta_gain_over_base_by_severity'] == pytest.approx([0, 0.01, 0.03, 0.05])
    d = summ['detector']
    assert d['all']['n'] == 7 and d['all']['r_err'] == pytest.approx(1.0)
    assert d['per_shift']['occlusion']['rho_err'] == pytest.approx(1.0)
    assert len(d['per_shift']['contrast']['E_base']) == 4
    # an opposite trend is reported as such (a negative result stays negative)
    for r in res:
        r['detector']['E_base'] = 2.0 - r['detector']['E_base']
    d2 = summarize(res, methods, (1, 3, 5), ('test',))['test']['detector']
    assert d2['all']['r_err'] == pytest.approx(-1.0)


def test_goals_flag_a_failure():
    mean = {m: {s: dict(AP=ap) for s in ('0', '1', 'all')} for m, ap in
            (('base', 0.3), ('base+flip', 0.4), ('+SCAI', 0.35), ('+SCAI+TTA', 0.34))}
    g = goals(mean, (1,))
    assert g['tta_ge_scai'] is False and g['scai_ge_base_flip'] is False


def test_relative_paths_and_markdown():
    root = repo_root()
    obj = dict(a=osp.join(root, 'work_dirs', 'x.pth'), b=[osp.join(root, 'docs')],
               c='python ' + osp.join(root, 'tools', 'benchmark_shift.py'), d=3)
    rel = relative_paths(obj, root)
    assert rel == dict(a='work_dirs/x.pth', b=['docs'], c='python tools/benchmark_shift.py',
                       d=3)
    methods = shift_methods(CHOSEN)
    res = _synthetic_results([m.name for m in methods])
    rep = dict(settings=dict(shifts=['contrast', 'occlusion'], severities=[1, 3, 5], seed=0),
               benchmark_settings=dict(base_config='configs/x/base.py'),
               subset=dict(limit=None, seed=0, n=dict(test=10, coco=10)),
               base=dict(epoch=6), tuning=CHOSEN, methods=[m.to_dict() for m in methods],
               conditions=res, summary=summarize(res, [m.name for m in methods], (1, 3, 5),
                                                 ('test', 'coco')),
               finished='now', wall_seconds=60, compute_seconds=50, command='python x.py',
               machine=dict(cpu='cpu', cpus=2, torch='x', torch_threads=2))
    md = render_markdown(rep)
    for text in ('## LSPET-test: mean over 2 shifts', 'mAP-C (all)',
                 '| +SCAI+TTA continual |', 'E_s vs severity', '**all 7 conditions**',
                 'gain_grows_with_severity = yes', 'scai_ge_base_flip = yes'):
        assert text in md, text
    # the mean table row of base: clean 50.0, severities 42.5 / 27.5 / 12.5
    assert '| base | 50.0 | 42.5 | 27.5 | 12.5 |' in md


# -------------------------------------------------------------- end to end, real

@pytest.fixture(scope='module')
def shift_run(data_root, tmp_path_factory):
    """Tiny untrained base and SCAI, 8 instances per split, 2 shifts x severities 1, 5;
    steps 3-4 of the pipeline (SCAI training, tuning; tested in test_pipeline.py) are
    replaced by an untrained checkpoint and fixed settings. Run twice: the second run
    must reuse every cache and row."""
    wd = tmp_path_factory.mktemp('shift')
    docs = wd / 'docs'
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ROOT_ENV, data_root)
        root = repo_root()
        s = Settings(work_dir=str(wd), base_config=osp.join(root, BASE_CONFIG),
                     scai_config=osp.join(root, SCAI_CONFIG), limit=8, batch_size=4,
                     num_workers=0, base_cfg_options=dict(TINY_BASE),
                     scai_cfg_options=dict(TINY_SCAI))
        probe = Pipeline(s, echo=lambda m: None)
        torch.manual_seed(0)
        torch.save(dict(state_dict=build_model(probe.cfg('base')).state_dict(), meta={}),
                   wd / 'base.pth')
        torch.save(dict(state_dict=build_model(probe.cfg('scai')).state_dict(), meta={}),
                   wd / 'scai.pth')
        s.base_checkpoint = str(wd / 'base.pth')

        def run(messages):
            pipe = Pipeline(s, echo=messages.append)

            def train():
                pipe.report['scai_checkpoints'] = dict(scai=str(wd / 'scai.pth'))

            def tune():
                pipe.tuning = dict(chosen=CHOSEN)
            pipe.step_train, pipe.step_tune = train, tune
            ss = ShiftSettings(shifts=('contrast', 'occlusion'), severities=(1, 5),
                               docs_dir=str(docs))
            bench = ShiftBenchmark(pipe, ss)
            return bench, bench.run()
        first, second = [], []
        bench, rep = run(first)
        mtimes = {p: os.stat(p).st_mtime_ns for p in _files(wd / 'given')}
        _, rep2 = run(second)
        mtimes2 = {p: os.stat(p).st_mtime_ns for p in _files(wd / 'given')}
    return dict(wd=wd, docs=docs, bench=bench, rep=rep, rep2=rep2, first=first,
                second=second, mtimes=mtimes, mtimes2=mtimes2)


def _files(folder):
    return sorted(osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs)


def test_every_condition_and_method_is_evaluated(shift_run):
    rep, wd = shift_run['rep'], shift_run['wd']
    names = [m.name for m in shift_methods(CHOSEN)]
    conds = {(c['shift'], c['severity'], c['split']) for c in rep['conditions']}
    assert conds == {(sh, v, sp) for sp in ('test', 'coco') for sh, v in
                     [(CLEAN, 0), ('contrast', 1), ('contrast', 5), ('occlusion', 1),
                      ('occlusion', 5)]}
    for c in rep['conditions']:
        assert list(c['rows']) == names and c['n'] == 8
        for r in c['rows'].values():
            assert 0 <= r['AP'] <= 1 and np.isfinite(r['distal_err'])
        assert 'selected_frac' in c['rows']['+SCAI+TTA']['tta']
        assert 0 <= c['detector']['refinable_frac'] <= 1
        if c['severity']:
            # the base heatmaps of a shifted condition: once, where the issue says
            path = wd / 'given' / 'shift' / f'{c["shift"]}-{c["severity"]}' / f'{c["split"]}.pt'
            assert path.is_file()
    for c in rep['conditions']:  # the adapter ran wherever a chain was refinable
        sel = c['rows']['+SCAI+TTA']['tta']['selected_frac']
        assert (sel > 0) == (c['detector']['refinable_frac'] > 0), c['detector']
    assert set(rep['summary']) == {'test', 'coco'}
    assert rep['summary']['test']['mean']['+SCAI']['all']['AP'] >= 0
    assert rep['subset']['n'] == dict(test=8, coco=8)


def test_shifted_caches_keep_the_ground_truth_and_change_the_input(shift_run):
    bench = shift_run['bench']
    for split in ('test', 'coco'):
        clean = bench.base_cache(CLEAN, 0, split)
        for sh in ('contrast', 'occlusion'):
            c = bench.base_cache(sh, 5, split)
            assert c['heatmaps'].shape == clean['heatmaps'].shape
            assert c['heatmaps_flip'] is not None and c['feats'] is not None
            for k in ('id', 'img_id', 'gt_keypoints', 'gt_visible', 'input_center'):
                np.testing.assert_array_equal(c['meta'][k], clean['meta'][k])
            assert not torch.equal(c['heatmaps'], clean['heatmaps'])
        # severity matters: contrast 1 and 5 give other base outputs
        assert not torch.equal(bench.base_cache('contrast', 1, split)['heatmaps'],
                               bench.base_cache('contrast', 5, split)['heatmaps'])


def test_resume_reuses_caches_and_rows(shift_run):
    assert shift_run['mtimes'] == shift_run['mtimes2']
    assert not any('cache contrast' in m for m in shift_run['second'])
    assert any('cache contrast-1 test' in m for m in shift_run['first'])
    strip = lambda r: {k: v for k, v in r.items()  # noqa: E731
                       if k not in ('finished', 'wall_seconds', 'machine', 'command')}
    assert strip(shift_run['rep']) == strip(shift_run['rep2'])


def test_reports_and_docs_are_written(shift_run):
    wd, docs = shift_run['wd'], shift_run['docs']
    md = (wd / 'shift_report.md').read_text()
    assert md == (docs / 'benchmarks_shift.md').read_text()
    assert md in '\n'.join(shift_run['second'])  # the tables exactly as printed (last run)
    rep = json.loads((docs / 'benchmarks_shift.json').read_text())
    assert repo_root() not in json.dumps(rep)
    assert rep['summary']['test']['detector']['all']['n'] == 5
    png = (docs / 'benchmarks_shift.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10000
    assert json.loads((wd / 'shift_report.json').read_text())['summary'] == rep['summary']
