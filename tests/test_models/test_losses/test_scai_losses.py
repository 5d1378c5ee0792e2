import math

import pytest
import torch

from mmpose_scai.models.losses import ChainHeatmapLoss, CorrectionLoss


def tiny():
    pred = torch.zeros(2, 1, 2, 2)
    target = torch.zeros(2, 1, 2, 2)
    pred[0, 0, 0, 0] = 3.
    target[0, 0, 1, 1] = 4.   # instance 0: distance sqrt(9 + 16) = 5
    pred[1, 0] = 1.            # instance 1: distance sqrt(4) = 2, mse 1
    return pred, target


def test_l2_is_the_per_instance_euclidean_distance_averaged_over_valid_chains():
    pred, target = tiny()
    loss = ChainHeatmapLoss('l2')
    both = torch.ones(2, 1, dtype=torch.bool)
    assert loss(pred, target, both).item() == pytest.approx(3.5)
    assert loss(pred, target, torch.tensor([[True], [False]])).item() == pytest.approx(5.)
    assert loss(pred, target, torch.zeros(2, 1, dtype=torch.bool)).item() == 0.


def test_mse_mode_and_weight():
    pred, target = tiny()
    loss = ChainHeatmapLoss('mse', loss_weight=2.)
    assert loss(pred, target, torch.ones(2, 1, dtype=torch.bool)).item() == pytest.approx(
        2 * (25 / 4 + 1) / 2)


def test_masked_chain_gives_no_gradient_even_if_non_finite():
    pred, target = tiny()
    pred.requires_grad_(True)
    target = target.clone()
    target[1, 0, 0, 0] = float('nan')
    loss = ChainHeatmapLoss()(pred, target, torch.tensor([[True], [False]]))
    loss.backward()
    assert torch.isfinite(loss) and pred.grad[1].abs().sum() == 0
    assert pred.grad[0].abs().sum() > 0


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match='cosine'):
        ChainHeatmapLoss('cosine')


def test_correction_loss_is_eq8():
    l0, l1, l2 = torch.tensor(2.), torch.tensor(1.), torch.tensor(3.)
    out = CorrectionLoss()(l0, l1, l2)
    assert out['loss_corr'].item() == pytest.approx(0.85 * 2 + 0.65 * 1 + 0.45 * (1 - 3))
    assert out['l1_minus_l2'].item() == -2.
    hinge = CorrectionLoss(margin=0.5)(l0, l1, l2)
    assert hinge['loss_corr'].item() == pytest.approx(0.85 * 2 + 0.65 * 1)
    assert math.isclose(CorrectionLoss(margin=0.5)(l0, l1, torch.tensor(1.))['loss_corr'].item(),
                        0.85 * 2 + 0.65 + 0.45 * 0.5, rel_tol=1e-6)
