from .chain_conv_net import ChainConvNet
from .chain_mlp import ChainMLP

__all__ = ['ChainConvNet', 'ChainMLP']
