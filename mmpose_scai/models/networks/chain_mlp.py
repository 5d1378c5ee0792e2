"""ChainMLP: per-chain MLPs for the coordinate-space (lite) refiner."""
import torch
import torch.nn as nn
from torch import Tensor

from mmpose.registry import MODELS


@MODELS.register_module()
class ChainMLP(nn.Module):
    """An MLP with separate weights per chain, run for all chains as one batched matmul.

    Args:
        in_features (int): Input width per chain.
        out_features (int): Output width per chain.
        num_chains (int): G.
        hidden (int): Hidden width.
        depth (int): Number of hidden layers (>= 1).
        zero_init (bool): Zero the output layer (an untrained correction is the identity).
    """

    def __init__(self, in_features: int, out_features: int, num_chains: int,
                 hidden: int = 64, depth: int = 2, zero_init: bool = False) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f'ChainMLP depth must be >= 1, got {depth}')
        dims = [in_features] + [hidden] * depth + [out_features]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            w = torch.empty(num_chains, d_in, d_out)
            for g in range(num_chains):
                nn.init.kaiming_uniform_(w[g].T, a=5**0.5)  # nn.Linear's default
            last = i == len(dims) - 2
            if last and zero_init:
                w.zero_()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(num_chains, 1, d_out)))

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[B, G, in] -> Tensor[B, G, out]."""
        h = x.transpose(0, 1)  # [G, B, in]
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.bmm(h, w) + b  # bmm: counted by MMEngine's FlopAnalyzer
            if i < n - 1:
                h = torch.relu(h)
        return h.transpose(0, 1)
