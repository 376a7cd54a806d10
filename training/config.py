"""Training recipe configuration: YAML validated by pydantic, with dotted ``--set`` overrides.

Defaults are the paper's RGA-SC recipe; unknown keys anywhere are an error, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """Raised for an unreadable, malformed or invalid training configuration."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Which dataset to train on and how to load it."""

    dataset: str = "cuhk03-labeled"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    num_workers: int = Field(default=4, ge=0)


class ModelSection(_Section):
    """Network architecture; ``pretrained`` is a torchvision ImageNet state-dict path or null."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    backbone: Literal["resnet18", "resnet34", "resnet50"] = "resnet50"
    attention: Literal["rgasc", "rgas", "rgac", "none"] = "rgasc"
    input_size: tuple[int, int] = (256, 128)
    pretrained: str | None = "weights/pre_train/resnet50-19c8e357.pth"

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 16:
            raise ValueError("input_size must be (height, width) with both sides >= 16")
        return value


class SamplerConfig(_Section):
    """PK sampling: ``batch_size`` = P identities x K (``num_instances``) images, summed over all ranks."""

    batch_size: int = Field(default=64, gt=0)
    num_instances: int = Field(default=4, gt=0)

    @model_validator(mode="after")
    def _divisible(self) -> SamplerConfig:
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of num_instances {self.num_instances}"
            )
        return self


class AugmentConfig(_Section):
    """Train-time augmentation (Random2DTranslation, flip, random erasing on the normalised image)."""

    translate_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    translate_scale: float = Field(default=1.125, ge=1.0)
    flip_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    erase_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_min_aspect: float = Field(default=0.3, gt=0.0)
    erase_attempts: int = Field(default=100, ge=1)


class LossConfig(_Section):
    """Label-smoothed cross entropy on the BN-neck logits plus batch-hard triplet on the pooled feature."""

    label_smoothing: float = Field(default=0.1, ge=0.0, lt=1.0)
    margin: float = Field(default=0.3, ge=0.0)
    ce_weight: float = Field(default=1.0, ge=0.0)
    triplet_weight: float = Field(default=1.0, ge=0.0)


class OptimConfig(_Section):
    """Adam with coupled L2 weight decay, linear warm-up then step decay, updated once per epoch."""

    lr: float = Field(default=8e-4, gt=0.0)
    weight_decay: float = Field(default=5e-4, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0.0)
    warmup_epochs: int = Field(default=20, ge=0)
    warmup_start_lr: float = Field(default=8e-6, ge=0.0)
    milestones: list[int] = Field(default_factory=lambda: list(range(80, 361, 40)))
    gamma: float = Field(default=0.5, gt=0.0)


class TrainSection(_Section):
    """Epochs, seeding, precision, checkpointing and logging cadence."""

    epochs: int = Field(default=600, ge=1)
    seed: int = 16
    amp: bool = True
    deterministic: bool = True
    checkpoint_every: int = Field(default=40, ge=1)
    keep_checkpoints: int = Field(default=0, ge=0)
    evaluate_at_end: bool = True


class EvalConfig(_Section):
    """Evaluation on the test split at the end of training."""

    batch_size: int = Field(default=128, gt=0)
    rerank: bool = False
    flip: bool = False
    metric: Literal["cosine", "euclidean"] = "cosine"
    num_rank_lists: int = Field(default=8, ge=0)


class TrainConfig(_Section):
    """The whole recipe; ``name`` labels the run in logs and provenance."""

    name: str = "rgasc"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelSection = Field(default_factory=ModelSection)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalConfig = Field(default_factory=EvalConfig)


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "<root>"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return key.strip().split("."), value


def _merge(current: Any, value: Any) -> Any:
    """Overlay a mapping value onto an existing mapping (recursively); anything else replaces it."""
    if isinstance(current, dict) and isinstance(value, dict):
        return {**current, **{key: _merge(current.get(key), item) for key, item in value.items()}}
    return value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted ``key=value`` override set, checking keys exist."""
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node: Any = result
        schema: Any = TrainConfig
        for depth, part in enumerate(path):
            is_leaf = depth == len(path) - 1
            free_form = schema is None
            if not free_form:
                fields = schema.model_fields
                if part not in fields:
                    known = ", ".join(sorted(fields))
                    where = ".".join(path[:depth]) or "top level"
                    raise ConfigError(f"override {text!r}: unknown key {part!r} in {where} (known: {known})")
                annotation = fields[part].annotation
                schema = (
                    annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
                )
            if is_leaf:
                node[part] = _merge(node.get(part), value)
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return result


def build_config(raw: dict[str, Any], source: str = "<dict>") -> TrainConfig:
    """Validate a raw mapping into a :class:`TrainConfig`, with a readable error on failure."""
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a YAML recipe (or start from defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must contain a mapping at the top level")
        raw = loaded or {}
    return build_config(apply_overrides(raw, overrides), source)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of a configuration (tuples become lists)."""
    return config.model_dump(mode="json")


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return path
