"""Loading the process's one embedding model: the export, or a loudly flagged untrained network."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from model import Embedder, ExportError, build_model, load_embedder
from service.settings import Settings

UNTRAINED_INPUT = (256, 128)
UNTRAINED_WARNING = (
    "no exported model found; embeddings come from an UNTRAINED network and matches are meaningless. "
    "Train one (reid-train train --config ...) and export it with "
    "`reid-train export --checkpoint <ckpt> --out <REID_MODEL_DIR>` (default ./exports/current)."
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """The embedder and whether it came from a trained export."""

    embedder: Embedder
    trained: bool
    warning: str | None = None


def load_model(settings: Settings) -> LoadedModel:
    """Load the export in ``settings.model_dir``, or fall back to a seeded untrained network (loudly).

    With ``REID_RUNTIME=onnx-int8`` there is no fallback: an export without a (valid) int8 model is an error.
    """
    try:
        return LoadedModel(load_embedder(settings.model_dir, settings.device, settings.runtime), True)
    except ExportError as exc:
        if settings.runtime == "onnx-int8":  # asked for by name: an untrained network is no substitute
            raise
        log.warning("!!! %s (%s)", UNTRAINED_WARNING, exc)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model(settings.untrained_backbone, "rgasc", UNTRAINED_INPUT)
    embedder = Embedder.from_network(net, settings.device, version=f"untrained-{settings.untrained_backbone}")
    return LoadedModel(embedder, False, UNTRAINED_WARNING)
