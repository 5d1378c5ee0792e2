# The paper-scale networks (method spec §4): Φ/Γ are 12 dilated 3x3 convs of width 64 at
# full heatmap resolution, C six of width 64. About 2.7x an HRNet-W32 forward per pass: a
# reference to measure against, not a default. Configs merge it as
# `model = dict(head=dict(refiner=_base_.scai_paper_refiner))`.
_paper_dilations = (1, 1, 2, 2, 4, 4, 8, 8, 4, 2, 1, 1)
scai_paper_refiner = dict(
    phi=dict(type='ChainConvNet', width=64, scale=1, context_channels=32,
             dilations=_paper_dilations),
    gamma=dict(type='ChainConvNet', width=64, scale=1, context_channels=32,
               dilations=_paper_dilations),
    corr=dict(type='ChainConvNet', width=64, scale=1, dilations=(1, 2, 4, 8, 2, 1)))
