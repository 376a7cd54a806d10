"""Relation-Aware Global Attention (RGA) module, spatial and channel, computed in factored form.

The relation map of a branch stacks, for every position p, its affinities to all others in both
directions: ``[R[p, :], R[:, p]]`` with ``R = theta^T phi``. The paper feeds these 2P channels to a
1x1 convolution ``W = [A | B]``. Because R has rank at most ``d`` (the embedding width), that
convolution equals ``theta^T (phi A^T) + phi^T (theta B^T)``: the same parameters and outputs,
without ever building the P x P matrix (see ``model/rga_naive.py`` for the materialised oracle).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 convolution without bias, BatchNorm, ReLU (the paper's embedding block)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def attention_head(in_channels: int, down_ratio: int) -> nn.Sequential:
    """Shallow 1x1 conv net mapping [unary, relation] features to one attention logit."""
    hidden = max(1, in_channels // down_ratio)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, 1, kernel_size=1, bias=False),
        nn.BatchNorm2d(1),
    )


def factored_relation_conv(theta: torch.Tensor, phi: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Apply a 1x1 conv over the stacked relation map ``[R[p,:], R[:,p]]`` without building R.

    theta, phi: (B, d, P); weight: (O, 2P) for the 2P relation channels. Returns (B, O, P).
    """
    positions = theta.shape[2]
    row_weight = weight[:, :positions]
    col_weight = weight[:, positions:]
    projected = torch.cat((torch.matmul(phi, row_weight.t()), torch.matmul(theta, col_weight.t())), dim=1)
    stacked = torch.cat((theta, phi), dim=1).transpose(1, 2)
    return torch.bmm(stacked, projected).transpose(1, 2)


class RGAModule(nn.Module):
    """RGA attention for one stage: spatial (RGA-S) first, then channel (RGA-C) on the re-weighted map.

    Sub-module names follow the paper's released code so its checkpoints load by name.
    """

    def __init__(
        self,
        in_channel: int,
        in_spatial: int,
        use_spatial: bool = True,
        use_channel: bool = True,
        cha_ratio: int = 8,
        spa_ratio: int = 8,
        down_ratio: int = 8,
    ) -> None:
        super().__init__()
        if not (use_spatial or use_channel):
            raise ValueError("an RGA module needs the spatial branch, the channel branch or both")
        self.in_channel = in_channel
        self.in_spatial = in_spatial
        self.use_spatial = use_spatial
        self.use_channel = use_channel
        self.inter_channel = max(1, in_channel // cha_ratio)
        self.inter_spatial = max(1, in_spatial // spa_ratio)

        if use_spatial:
            self.gx_spatial = conv_bn_relu(in_channel, self.inter_channel)
        if use_channel:
            self.gx_channel = conv_bn_relu(in_spatial, self.inter_spatial)
        if use_spatial:
            self.gg_spatial = conv_bn_relu(2 * in_spatial, self.inter_spatial)
        if use_channel:
            self.gg_channel = conv_bn_relu(2 * in_channel, self.inter_channel)
        if use_spatial:
            self.W_spatial = attention_head(1 + self.inter_spatial, down_ratio)
        if use_channel:
            self.W_channel = attention_head(1 + self.inter_channel, down_ratio)
        if use_spatial:
            self.theta_spatial = conv_bn_relu(in_channel, self.inter_channel)
            self.phi_spatial = conv_bn_relu(in_channel, self.inter_channel)
        if use_channel:
            self.theta_channel = conv_bn_relu(in_spatial, self.inter_spatial)
            self.phi_channel = conv_bn_relu(in_spatial, self.inter_spatial)

    @staticmethod
    def embed_shared_input(inputs: torch.Tensor, blocks: list[nn.Sequential]) -> list[torch.Tensor]:
        """Apply several conv-BN-ReLU blocks to one (B, in, P) input as a single matmul."""
        weight = torch.cat([block[0].weight.flatten(1) for block in blocks])
        projected = torch.matmul(weight, inputs)
        sizes = [block[0].out_channels for block in blocks]
        return [
            block[2](block[1](part.unsqueeze(-1))).squeeze(-1)
            for block, part in zip(blocks, projected.split(sizes, dim=1), strict=True)
        ]

    def relation_embedding(self, theta: torch.Tensor, phi: torch.Tensor, gg: nn.Sequential) -> torch.Tensor:
        """Embed the bidirectional relation map of (B, d, P) embeddings: (B, d_out, P)."""
        out = factored_relation_conv(theta, phi, gg[0].weight.flatten(1))
        return gg[2](gg[1](out.unsqueeze(-1))).squeeze(-1)

    @staticmethod
    def attention_logits(head: nn.Sequential, unary: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        """Run the attention head on ``[unary, relation]`` without concatenating them: (B, 1, P)."""
        first = head[0].weight.flatten(1)
        hidden = torch.matmul(first[:, 1:], relation) + first[:, :1].unsqueeze(0) * unary
        hidden = head[2](head[1](hidden.unsqueeze(-1))).squeeze(-1)
        return head[4](torch.matmul(head[3].weight.flatten(1), hidden).unsqueeze(-1)).squeeze(-1)

    def spatial_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial attention map in (0, 1): (B, 1, H, W)."""
        b, _, h, w = x.shape
        theta, phi, unary = self.embed_shared_input(
            x.flatten(2), [self.theta_spatial, self.phi_spatial, self.gx_spatial]
        )
        relation = self.relation_embedding(theta, phi, self.gg_spatial)
        logits = self.attention_logits(self.W_spatial, unary.mean(dim=1, keepdim=True), relation)
        return torch.sigmoid(logits).view(b, 1, h, w)

    def channel_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Channel attention in (0, 1): (B, C, 1, 1); channels play the role of positions."""
        b, c, _, _ = x.shape
        theta, phi, unary = self.embed_shared_input(
            x.flatten(2).transpose(1, 2), [self.theta_channel, self.phi_channel, self.gx_channel]
        )
        relation = self.relation_embedding(theta, phi, self.gg_channel)
        logits = self.attention_logits(self.W_channel, unary.mean(dim=1, keepdim=True), relation)
        return torch.sigmoid(logits).view(b, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_spatial:
            x = self.spatial_attention(x) * x
        if self.use_channel:
            x = self.channel_attention(x) * x
        return x
