"""Benchmark metrics against hand-computed values on tiny inputs."""
import json

import numpy as np
import pytest

from benchmarks.analysis import chain_mean, instance_errors, signal_report
from benchmarks.coco_eval import write_limb_only_ann
from benchmarks.metrics import (MatchTable, ap_from_matches, batch_correlation,
                                           batch_means, bootstrap_ap_diff, keypoint_summary,
                                           mean_error, normalized_errors, pck, pearson,
                                           rankdata, selection_report, spearman,
                                           torso_size)


def person(ls=(0., 0.), rh=(3., 4.)):
    """One COCO-17 instance: left shoulder and right hip given (torso 5 by default),
    every other limb joint at (10, 10), face unlabelled."""
    gt = np.full((17, 2), 10.)
    gt[5], gt[12] = ls, rh
    vis = np.ones(17)
    vis[:5] = 0
    return gt, vis


def test_torso_size_is_left_shoulder_to_right_hip():
    g1, v1 = person()
    g2, v2 = person(rh=(0., 8.))
    g3, v3 = person()
    v3[12] = 0  # right hip unlabelled -> no torso
    t = torso_size(np.stack([g1, g2, g3]), np.stack([v1, v2, v3]))
    assert t[0] == pytest.approx(5.)
    assert t[1] == pytest.approx(8.)
    assert np.isnan(t[2])
    # the other shoulder / hip do not matter
    g4, v4 = person()
    g4[6], g4[11] = (100., 100.), (-50., 3.)
    assert torso_size(g4[None], v4[None])[0] == pytest.approx(5.)


def test_pck_and_distal_error_by_hand():
    gt, vis = person()
    pred = gt.copy()
    pred[9] += (0., 1.)       # left wrist off by 1.0 -> 0.2 torso: counts (<=)
    pred[10] += (3., 4.)      # right wrist off by 5 -> 1.0 torso
    pred[15] += (1.2, 0.)     # left ankle off by 1.2 -> 0.24 torso
    vis[16] = 0               # right ankle unlabelled: ignored
    pred[16] += 100.
    err = normalized_errors(pred[None], gt[None], vis[None], np.array([5.]))
    assert err[0, 9] == pytest.approx(0.2)
    assert err[0, 10] == pytest.approx(1.0)
    assert np.isnan(err[0, 16]) and np.isnan(err[0, 0])
    # 12 limb joints, 11 labelled; correct: 9 exact + wrist at 0.2 = 9 of 11
    assert pck(err) == pytest.approx(9 / 11)
    assert pck(err, (9, 10, 15, 16)) == pytest.approx(1 / 3)
    assert mean_error(err) == pytest.approx((0.2 + 1.0 + 0.24) / 3)
    s = keypoint_summary(pred[None], gt[None], vis[None])
    assert s['pck'] == pytest.approx(9 / 11)
    assert s['distal_err'] == pytest.approx(0.48)
    assert s['n_torso'] == 1


def test_instances_without_torso_do_not_count():
    g1, v1 = person()
    g2, v2 = person()
    v2[5] = 0
    pred = np.stack([g1, g2 + 50.])
    s = keypoint_summary(pred, np.stack([g1, g2]), np.stack([v1, v2]))
    assert s['pck'] == 1.0 and s['distal_err'] == 0.0 and s['n_torso'] == 1


def test_pearson_spearman_and_ranks():
    x = np.array([1., 2., 3., 4.])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.)
    assert pearson(x, -x) == pytest.approx(-1.)
    # hand: x=[1,2,3], y=[1,3,2] -> r = 0.5
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    assert np.isnan(pearson([1, 2], [1, 2]))
    # NaN pairs are dropped
    assert pearson([1, 2, np.nan, 3], [1, 3, 5, 2]) == pytest.approx(0.5)
    assert list(rankdata([10., 20., 20., 5.])) == [2., 3.5, 3.5, 1.]
    # monotone but non-linear: Spearman 1, Pearson < 1
    y = np.exp(3 * x)
    assert spearman(x, y) == pytest.approx(1.)
    assert pearson(x, y) < 0.99
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.)


def test_batch_means_follow_the_seeded_shuffle():
    v = np.arange(8.)
    order = np.random.default_rng(3).permutation(8)
    m = batch_means(v, batch_size=4, seed=3)
    assert m == pytest.approx([v[order[:4]].mean(), v[order[4:]].mean()])
    # a partial last batch is dropped, NaNs are skipped within a batch
    m2 = batch_means(np.array([1., np.nan, 3., 5., 7.]), 2, order=np.arange(5))
    assert m2 == pytest.approx([1., 4.])
    # not dataset order: with a trend along the dataset order, consecutive batches
    # would correlate perfectly; shuffled batches of pure noise do not
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=640), rng.normal(size=640)
    trend = np.linspace(0, 100, 640)
    assert abs(batch_correlation(a + 0 * trend, b, 32, seed=0)) < 0.6
    assert batch_correlation(a + trend, b + trend, 32, seed=0) > 0.99


def test_selection_report_by_hand():
    eb = np.array([0.1, 0.5, 0.3, 0.4])
    ec = np.array([0.2, 0.1, 0.3, 0.9])
    sb = np.array([1., 1., 1., 1.])
    sc = np.array([0.5, 0.5, 2., 2.])  # accept decisions 0 and 1
    r = selection_report(eb, ec, sb, sc, thr=0.25)
    assert r['n'] == 4 and r['accept_frac'] == 0.5
    assert r['never_err'] == pytest.approx(np.mean(eb))
    assert r['always_err'] == pytest.approx(np.mean(ec))
    assert r['rule_err'] == pytest.approx(np.mean([0.2, 0.1, 0.3, 0.4]))
    assert r['oracle_err'] == pytest.approx(np.mean([0.1, 0.1, 0.3, 0.4]))
    # right: 0 wrong (accepted worse), 1 right, 2 tie counts right, 3 right
    assert r['rule_acc'] == pytest.approx(0.75)
    assert r['never_acc'] == pytest.approx(0.75)  # 0, 2, 3
    assert r['always_acc'] == pytest.approx(0.5)  # 1, 2
    # decision 2 is a tie; on the other three the rule is right twice
    assert r['tie_frac'] == pytest.approx(0.25)
    assert r['rule_acc_nontie'] == pytest.approx(2 / 3)
    assert r['never_pck'] == pytest.approx(0.25)
    assert r['oracle_pck'] == pytest.approx(0.5)
    # non-finite decisions are dropped
    r2 = selection_report(np.r_[eb, np.nan], np.r_[ec, 0.], np.r_[sb, 1.], np.r_[sc, 1.])
    assert r2['n'] == 4


def entry(scores, matched, gt_ignore=(0, ), dt_ignore=None):
    """A COCOeval evalImgs entry with the same match at all 10 thresholds."""
    d = len(scores)
    dtm = np.tile(np.where(np.asarray(matched), 1, -1), (10, 1))
    dti = np.zeros((10, d)) if dt_ignore is None else np.tile(dt_ignore, (10, 1))
    return dict(dtScores=list(scores), dtMatches=dtm, dtIgnore=dti,
                gtIgnore=np.asarray(gt_ignore))


def test_ap_from_matches_by_hand():
    # three images, one GT each; scores 0.9 (TP), 0.8 (FP), 0.7 (TP)
    es = [entry([0.9], [True]), entry([0.8], [False]), entry([0.7], [True])]
    r = ap_from_matches(es)
    # recall 1/3 at precision 1; recall 2/3 at precision 2/3; 101-point interpolation:
    # thresholds 0..0.33 (34 points) -> 1, 0.34..0.66 (33 points) -> 2/3, rest 0
    expect = (34 * 1 + 33 * (2 / 3)) / 101
    assert r['AP'] == pytest.approx(expect)
    assert r['AP .5'] == pytest.approx(expect)
    assert r['AR'] == pytest.approx(2 / 3)
    # all right -> 1; an image counted twice changes the mix
    assert ap_from_matches([entry([0.9], [True])] * 2)['AP'] == pytest.approx(1.)
    r2 = ap_from_matches(es, counts=np.array([0, 1, 1]))  # FP ranked above the TP
    assert r2['AP'] == pytest.approx(51 / 101 * 0.5)
    assert r2['AR'] == pytest.approx(0.5)
    # ignored GT and ignored detections do not count
    es3 = [entry([0.9], [True]), entry([0.8], [True], gt_ignore=(1, ), dt_ignore=[1])]
    assert ap_from_matches(es3)['AP'] == pytest.approx(1.)
    assert np.isnan(ap_from_matches([None, None])['AP'])


def test_ap_from_matches_equals_cocoeval(tmp_path):
    """On a small real COCOeval run the re-accumulated AP equals COCOeval's."""
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval
    rng = np.random.default_rng(0)
    sig = np.full(17, 0.05)
    images, anns, dets = [], [], []
    for i in range(1, 13):
        images.append(dict(id=i, width=200, height=200, file_name=f'{i}.jpg'))
        k = rng.uniform(20, 180, (17, 2))
        kp = np.c_[k, np.full(17, 2)]
        anns.append(dict(id=i, image_id=i, category_id=1, iscrowd=0, area=4000.,
                         bbox=[10, 10, 180, 180], keypoints=kp.ravel().tolist(),
                         num_keypoints=17))
        noisy = k + rng.normal(0, 2 + 3 * (i % 4), k.shape)
        dets.append(dict(image_id=i, category_id=1, score=float(rng.uniform()),
                         keypoints=np.c_[noisy, np.ones(17)].ravel().tolist()))
    gt = dict(images=images, annotations=anns,
              categories=[dict(id=1, name='person', keypoints=[str(j) for j in range(17)],
                               skeleton=[])])
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'dt.json').write_text(json.dumps(dets))
    coco = COCO(str(tmp_path / 'gt.json'))
    ev = COCOeval(coco, coco.loadRes(str(tmp_path / 'dt.json')), 'keypoints', sig, True)
    ev.params.useSegm = None
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    table = MatchTable(ev.evalImgs[:len(ev.params.imgIds)])
    r = table.ap()
    assert r['AP'] == pytest.approx(ev.stats[0], abs=1e-12)
    assert r['AP .5'] == pytest.approx(ev.stats[1], abs=1e-12)
    assert r['AP .75'] == pytest.approx(ev.stats[2], abs=1e-12)
    assert r['AR'] == pytest.approx(ev.stats[5], abs=1e-12)
    assert 0 < r['AP'] < 1


def test_bootstrap_is_paired_seeded_and_brackets_the_difference():
    good = [entry([0.9], [True])] * 20
    mixed = [entry([0.9 - 0.01 * i], [i % 2 == 0]) for i in range(20)]
    b = bootstrap_ap_diff(good, mixed, n=200, seed=0)
    assert b['diff'] == pytest.approx(1 - ap_from_matches(mixed)['AP'])
    assert b['lo'] <= b['diff'] <= b['hi'] and b['lo'] > 0
    assert b['p_le0'] == 0.0
    assert bootstrap_ap_diff(good, mixed, n=200, seed=0) == b
    assert bootstrap_ap_diff(good, mixed, n=200, seed=1) != b
    same = bootstrap_ap_diff(mixed, mixed, n=100, seed=0)
    assert same['diff'] == 0 and same['lo'] == 0 and same['hi'] == 0
    with pytest.raises(ValueError):
        bootstrap_ap_diff(good, mixed[:3], n=10)


def test_limb_only_annotation(tmp_path):
    kp = [1, 1, 2] * 3 + [0, 0, 0] * 2 + [5, 5, 2] * 12
    src = tmp_path / 'a.json'
    src.write_text(json.dumps(dict(images=[], categories=[], annotations=[
        dict(id=1, keypoints=kp, num_keypoints=15),
        dict(id=2, keypoints=[1, 1, 2] * 5 + [0, 0, 0] * 12, num_keypoints=5)])))
    dst = write_limb_only_ann(str(src), str(tmp_path / 'out' / 'b.json'))
    anns = json.loads(open(dst).read())['annotations']
    assert anns[0]['keypoints'][:15] == [0] * 15
    assert anns[0]['keypoints'][15:] == kp[15:]
    assert anns[0]['num_keypoints'] == 12
    assert anns[1]['num_keypoints'] == 0


def test_instance_errors_and_signal_report():
    rng = np.random.default_rng(0)
    n = 96
    gts, viss = zip(*[person() for _ in range(n)])
    gt, vis = np.stack(gts), np.stack(viss)
    noise = rng.uniform(0, 2, n)
    pred = gt.copy()
    pred[:, (9, 10, 15, 16)] += noise[:, None, None]  # distal error grows with noise
    meta = dict(gt_keypoints=gt, gt_visible=vis)
    t = instance_errors(pred, meta)
    assert t['distal'] == pytest.approx(noise * np.sqrt(2) / 5)
    # E_s = the noise itself (perfect signal), confidence = random
    es = np.repeat(noise[:, None], 4, 1)
    es[0, 1] = np.nan
    scores = rng.uniform(size=(n, 17))
    s = signal_report(es, pred, scores, meta, np.array([9, 10, 15, 16]), batch_size=8)
    assert s['inst_r_err'] == pytest.approx(1.)
    assert s['chain_spearman_es'] == pytest.approx(1.)
    assert abs(s['chain_spearman_conf']) < 0.3
    assert s['batch_r_err'] == pytest.approx(1.)
    assert s['inst_r_acc'] < 0
    assert s['n_chain'] == 4 * n - 1
    assert chain_mean(np.array([[1., np.nan], [np.nan, np.nan]]))[0] == 1.
