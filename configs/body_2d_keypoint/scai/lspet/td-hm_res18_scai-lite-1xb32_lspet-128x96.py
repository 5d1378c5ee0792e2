# SCAI-Lite on the small LSPET base: the same SCAIHead, losses, staged estimator and
# test-time adapter as the heatmap variant, with the coordinate refiner (small per-chain
# MLPs on the decoded chain points). Pre-train it on keypoints alone and fine-tune it on
# the base's predictions with tools/scai_lite.py (no image is needed for either), or
# train it like the heatmap variant through the Runner with this config.
_base_ = ['./td-hm_res18_scai-1xb32-6e_lspet-128x96.py']

model = dict(
    head=dict(
        refiner=dict(
            _delete_=True,
            type='SCAILiteRefiner',
            hidden=64,
            depth=2,
            corr_depth=2,
            use_scores=True,
            correct_slots=('D', ),
            start='phi',
            min_anchor_score=0.1,
            # selective correction: refine only chains whose base D score is below
            # this; tools/scai_lite.py picks it on the 500-image holdout (None: all)
            max_distal_score=None),
        # point distance: ChainHeatmapLoss over a point's 1x2 "map" is its L2 distance
        loss=dict(type='ChainHeatmapLoss', mode='l2')))
