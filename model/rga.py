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

from model import defaults


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


def fold_batchnorm(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm into the (O, I) weight before it: (weight, bias)."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return weight * scale[:, None], bn.bias - bn.running_mean * scale


def batchnorm_3d(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """Apply a BatchNorm2d to a (B, C, P) tensor."""
    return bn(x.unsqueeze(-1)).squeeze(-1)


def factored_relation_conv(
    theta_phi: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Apply a 1x1 conv over the stacked relation map ``[R[p,:], R[:,p]]`` without building R.

    theta_phi: (B, 2d, P), theta stacked over phi; weight: (O, 2P); bias: (O,). Returns (B, O, P).
    """
    d = theta_phi.shape[1] // 2
    positions = theta_phi.shape[2]
    theta, phi = theta_phi[:, :d], theta_phi[:, d:]
    projected = torch.cat(
        (torch.matmul(phi, weight[:, :positions].t()), torch.matmul(theta, weight[:, positions:].t())), dim=1
    )
    stacked = theta_phi.transpose(1, 2)
    if bias is None:
        return torch.bmm(stacked, projected).transpose(1, 2)
    return torch.baddbmm(bias.view(1, 1, -1), stacked, projected).transpose(1, 2)


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
        cha_ratio: int = defaults.CHANNEL_RATIO,
        spa_ratio: int = defaults.SPATIAL_RATIO,
        down_ratio: int = defaults.DOWN_RATIO,
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

    def embed_shared_input(
        self, inputs: torch.Tensor, blocks: list[nn.Sequential], position_major: bool = False
    ) -> torch.Tensor:
        """Apply conv-BN-ReLU blocks sharing one input as one matmul: (B, sum of outs, P).

        ``inputs`` is (B, I, P), or (B, P, I) when ``position_major`` (then one large GEMM suffices).
        """
        weights = [block[0].weight.flatten(1) for block in blocks]
        if self.training:
            projected = self._project(inputs, torch.cat(weights), position_major)
            parts = projected.split([w.shape[0] for w in weights], dim=1)
            return torch.relu(
                torch.cat([batchnorm_3d(b[1], p) for b, p in zip(blocks, parts, strict=True)], 1)
            )
        folded = [fold_batchnorm(w, block[1]) for w, block in zip(weights, blocks, strict=True)]
        weight = torch.cat([w for w, _ in folded])
        bias = torch.cat([b for _, b in folded])
        if position_major:
            return torch.matmul(inputs, weight.t()).add_(bias).relu_().transpose(1, 2)
        return torch.matmul(weight, inputs).add_(bias.view(1, -1, 1)).relu_()

    @staticmethod
    def _project(inputs: torch.Tensor, weight: torch.Tensor, position_major: bool) -> torch.Tensor:
        if position_major:
            return torch.matmul(inputs, weight.t()).transpose(1, 2)
        return torch.matmul(weight, inputs)

    def relation_embedding(self, theta_phi: torch.Tensor, gg: nn.Sequential) -> torch.Tensor:
        """Embed the bidirectional relation map of stacked (B, 2d, P) embeddings: (B, d_out, P)."""
        weight = gg[0].weight.flatten(1)
        if self.training:
            return torch.relu(batchnorm_3d(gg[1], factored_relation_conv(theta_phi, weight)))
        return factored_relation_conv(theta_phi, *fold_batchnorm(weight, gg[1])).relu_()

    def attention_logits(
        self, head: nn.Sequential, unary: torch.Tensor, relation: torch.Tensor
    ) -> torch.Tensor:
        """Run the attention head on ``[unary, relation]`` without concatenating them: (B, 1, P)."""
        first, second = head[0].weight.flatten(1), head[3].weight.flatten(1)
        if self.training:
            hidden = torch.matmul(first[:, 1:], relation) + first[:, :1].unsqueeze(0) * unary
            hidden = torch.relu(batchnorm_3d(head[1], hidden))
            return batchnorm_3d(head[4], torch.matmul(second, hidden))
        first, first_bias = fold_batchnorm(first, head[1])
        second, second_bias = fold_batchnorm(second, head[4])
        unary_term = first_bias.view(1, -1, 1) + first[:, :1].unsqueeze(0) * unary
        hidden = torch.matmul(first[:, 1:], relation).add_(unary_term).relu_()
        return torch.matmul(second, hidden) + second_bias.view(1, -1, 1)

    def spatial_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial attention map in (0, 1): (B, 1, H, W)."""
        b, _, h, w = x.shape
        embedded = self.embed_shared_input(
            x.flatten(2), [self.theta_spatial, self.phi_spatial, self.gx_spatial]
        )
        d = self.inter_channel
        relation = self.relation_embedding(embedded[:, : 2 * d], self.gg_spatial)
        logits = self.attention_logits(
            self.W_spatial, embedded[:, 2 * d :].mean(dim=1, keepdim=True), relation
        )
        return torch.sigmoid(logits).view(b, 1, h, w)

    def channel_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Channel attention in (0, 1): (B, C, 1, 1); channels play the role of positions."""
        b, c, _, _ = x.shape
        embedded = self.embed_shared_input(
            x.flatten(2), [self.theta_channel, self.phi_channel, self.gx_channel], position_major=True
        )
        d = self.inter_spatial
        relation = self.relation_embedding(embedded[:, : 2 * d], self.gg_channel)
        logits = self.attention_logits(
            self.W_channel, embedded[:, 2 * d :].mean(dim=1, keepdim=True), relation
        )
        return torch.sigmoid(logits).view(b, c, 1, 1)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial, then channel attention applied to the feature map."""
        if self.use_spatial:
            x = self.spatial_attention(x) * x
        if self.use_channel:
            x = self.channel_attention(x) * x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention in float32 even under mixed precision.

        The relation maps sum thousands of products: in float16 they leave the range, in bfloat16 they
        lose too much precision (measured on an H200: embeddings at cosine -0.13 and 0.94 to float32's;
        the first training loss 16% off; ``bench/gpu_check.py``). Only the module runs in float32; the
        ResNet trunk around it keeps the mixed precision.
        """
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self.attend(x.float()).to(x.dtype)
        return self.attend(x)
