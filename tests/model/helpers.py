"""Helpers for the model tests: give BatchNorm layers non-trivial statistics."""

import torch


def randomize_batchnorm(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every BatchNorm's affine parameters and running stats with random values."""
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            if module.bias.requires_grad:
                module.bias.data.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
    return net
