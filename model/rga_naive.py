"""The paper's materialised relation maps, kept only as the oracle for tests and benchmarks.

``MaterializedRGAModule`` builds the full P x P relation matrix and its 2P-channel map exactly as
the released code does; ``materialized_copy`` turns a network into that form with the same weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from model.rga import RGAModule


class MaterializedRGAModule(RGAModule):
    """RGA module that builds the relation map explicitly (slow, memory-hungry reference)."""

    def relation_embedding(self, theta_phi: torch.Tensor, gg: nn.Sequential) -> torch.Tensor:
        b, two_d, p = theta_phi.shape
        theta, phi = theta_phi[:, : two_d // 2], theta_phi[:, two_d // 2 :]
        relation = torch.bmm(theta.transpose(1, 2), phi)
        stacked = torch.cat((relation.transpose(1, 2), relation), dim=1).view(b, 2 * p, p, 1)
        return gg(stacked).squeeze(-1)


def materialized_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` whose RGA modules build their relation maps explicitly."""
    clone = copy.deepcopy(net)
    for module in clone.modules():
        if type(module) is RGAModule:
            module.__class__ = MaterializedRGAModule
    return clone
