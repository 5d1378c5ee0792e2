import pytest
import torch

from mmpose_scai.models.networks import ChainConvNet


def test_shapes_with_context_at_half_resolution():
    net = ChainConvNet(in_channels=3, num_chains=6, context_channels=8, feat_channels=32)
    feats = torch.rand(2, 32, 64, 48)
    ctx = net.encode_context(feats, (64, 48))
    assert ctx.shape == (2, 8, 32, 24)
    out = net(torch.rand(2, 6, 3, 64, 48), ctx)
    assert out.shape == (2, 6, 64, 48)


def test_full_resolution_and_multi_channel_output():
    net = ChainConvNet(in_channels=2, num_chains=4, out_channels=2, scale=1, dilations=(1, 2))
    assert net(torch.rand(3, 4, 2, 16, 12)).shape == (3, 4, 2, 16, 12)


def test_untrained_correction_network_is_the_identity():
    net = ChainConvNet(in_channels=2, num_chains=6, residual=True)
    x = torch.rand(2, 6, 2, 32, 24)
    assert torch.equal(net(x), x[:, :, 0])


def test_chain_embedding_separates_chains_with_shared_weights():
    net = ChainConvNet(in_channels=3, num_chains=2, scale=1, dilations=(1, ))
    torch.nn.init.normal_(net.embed.weight)
    x = torch.rand(1, 1, 3, 8, 8).expand(1, 2, 3, 8, 8)
    out = net(x)
    assert not torch.allclose(out[0, 0], out[0, 1])


def test_instances_do_not_leak_into_each_other():
    net = ChainConvNet(in_channels=3, num_chains=2, context_channels=4, feat_channels=8)
    x, f = torch.rand(2, 2, 3, 16, 12), torch.rand(2, 8, 16, 12)
    out = net(x, net.encode_context(f, (16, 12)))
    x2, f2 = x.clone(), f.clone()
    x2[1], f2[1] = float('nan'), float('nan')
    out2 = net(x2, net.encode_context(f2, (16, 12)))
    assert torch.equal(out[0], out2[0]) and torch.isnan(out2[1]).all()


def test_context_without_feature_channels_is_an_error():
    with pytest.raises(ValueError, match='feat_channels'):
        ChainConvNet(in_channels=3, num_chains=2, context_channels=8)
    net = ChainConvNet(in_channels=3, num_chains=2, context_channels=4, feat_channels=8)
    with pytest.raises(ValueError, match='no features'):
        net.encode_context(None, (16, 12))
