"""Self-attention over the positions of a feature map (SAGAN, Zhang et al. 2019), a block any conv network can
insert: the DCGAN networks take ``attention: <side>``, and a conditional network can place the same block."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SelfAttention2d(nn.Module):
    """``x + gamma * o``: every position attends to every other one (Zhang et al. 2019, section 3).

    Query and key are 1x1 convolutions to ``C / 8`` channels (the paper's choice of C-bar); the value goes to
    ``C / 2`` channels and a last 1x1 convolution back to ``C`` (the authors' and BigGAN's implementation, which
    halves the memory of the value path).  ``gamma`` starts at 0, so a fresh block is the identity and the
    network first learns local features, then leans on attention as gamma grows.
    """

    def __init__(
        self,
        channels: int,        # C of the feature map the block sees (and returns)
        key_ratio: int = 8,   # query/key channels = C / key_ratio (the paper's 8)
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"SelfAttention2d needs at least 2 channels, got {channels}")
        inner, value = max(1, channels // key_ratio), max(1, channels // 2)
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, value, 1, bias=False)
        self.out = nn.Conv2d(value, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))  # the learned gate; 0: the block starts as the identity

    def attention(self, x: Tensor) -> Tensor:
        """beta of the paper, (N, HW, HW): row i is where query position i looks (each row sums to 1)."""
        q = self.query(x).flatten(2)  # (N, C', HW)
        k = self.key(x).flatten(2)
        return torch.softmax(q.transpose(1, 2) @ k, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        beta = self.attention(x)
        v = self.value(x).flatten(2)  # (N, C/2, HW)
        o = self.out((v @ beta.transpose(1, 2)).view(n, -1, h, w))  # o_i = sum_j beta_ij v_j
        return x + self.gamma * o


__all__ = ["SelfAttention2d"]
