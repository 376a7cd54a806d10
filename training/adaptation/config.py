"""The adaptation recipe: YAML validated by pydantic, ``--set`` overrides as for training recipes.

Defaults are Cluster Contrast's on Market-1501 (``training.defaults``, ADAPT_*); the network and its input
size come from the source checkpoint, never from the recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from training import defaults
from training.config import AugmentConfig, OptimConfig, SamplerConfig, load_recipe


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AdaptDataConfig(_Section):
    """Loading the unlabelled images."""

    num_workers: int = Field(default=defaults.NUM_WORKERS, ge=0)
    feature_batch_size: int = Field(default=defaults.ADAPT_FEATURE_BATCH_SIZE, gt=0)


class ClusterConfig(_Section):
    """k-reciprocal Jaccard distance and DBSCAN, on camera-centred features if asked and cameras are known."""

    k1: int = Field(default=defaults.ADAPT_K1, ge=1)
    k2: int = Field(default=defaults.ADAPT_K2, ge=1)
    eps: float = Field(default=defaults.ADAPT_EPS, gt=0.0, lt=1.0)
    min_samples: int = Field(default=defaults.ADAPT_MIN_SAMPLES, ge=1)
    camera_centre: bool = defaults.ADAPT_CAMERA_CENTRE


class MemoryConfig(_Section):
    """The cluster memory and the camera-aware proxies."""

    temperature: float = Field(default=defaults.ADAPT_TEMPERATURE, gt=0.0)
    momentum: float = Field(default=defaults.ADAPT_MOMENTUM, ge=0.0, lt=1.0)
    update: Literal["hard", "mean"] = defaults.ADAPT_MEMORY_UPDATE
    camera: Literal["auto", "on", "off"] = defaults.ADAPT_CAMERA
    camera_weight: float = Field(default=defaults.ADAPT_CAMERA_WEIGHT, ge=0.0)
    camera_temperature: float = Field(default=defaults.ADAPT_CAMERA_TEMPERATURE, gt=0.0)
    hard_negatives: int = Field(default=defaults.ADAPT_HARD_NEGATIVES, ge=1)


class AdaptSamplerConfig(SamplerConfig):
    """PK batches over pseudo-identities (fewer clusters than P: all clusters, K each)."""

    batch_size: int = Field(default=defaults.ADAPT_BATCH_SIZE, gt=0)
    num_instances: int = Field(default=defaults.ADAPT_NUM_INSTANCES, gt=0)


class AdaptOptimConfig(OptimConfig):
    """Adam at a constant rate (no warm-up), stepped down at the milestones."""

    lr: float = Field(default=defaults.ADAPT_LR, gt=0.0)
    weight_decay: float = Field(default=defaults.ADAPT_WEIGHT_DECAY, ge=0.0)
    warmup_epochs: int = Field(default=0, ge=0)
    milestones: list[int] = Field(default_factory=lambda: list(defaults.ADAPT_MILESTONES))
    gamma: float = Field(default=defaults.ADAPT_GAMMA, gt=0.0)


class AdaptTrainConfig(_Section):
    """Epochs (one clustering each), iterations per epoch, seeding, precision, checkpoints."""

    epochs: int = Field(default=defaults.ADAPT_EPOCHS, ge=1)
    iters: int = Field(default=defaults.ADAPT_ITERS, ge=1)
    seed: int = defaults.SEED
    amp: bool = defaults.AMP
    deterministic: bool = defaults.DETERMINISTIC
    checkpoint_every: int = Field(default=defaults.ADAPT_CHECKPOINT_EVERY, ge=1)
    keep_checkpoints: int = Field(default=defaults.ADAPT_KEEP_CHECKPOINTS, ge=0)


class AdaptConfig(_Section):
    """The whole adaptation recipe; ``name`` labels the run in logs and provenance."""

    name: str = defaults.ADAPT_RUN_NAME
    data: AdaptDataConfig = Field(default_factory=AdaptDataConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    sampler: AdaptSamplerConfig = Field(default_factory=AdaptSamplerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    optim: AdaptOptimConfig = Field(default_factory=AdaptOptimConfig)
    train: AdaptTrainConfig = Field(default_factory=AdaptTrainConfig)


def load_adapt_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> AdaptConfig:
    """Read an adaptation recipe (defaults when ``path`` is None) and apply ``--set`` overrides."""
    return load_recipe(path, overrides, AdaptConfig)


def adapt_config_dict(config: AdaptConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of the recipe."""
    return config.model_dump(mode="json")
