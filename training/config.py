"""Training recipe configuration: YAML validated by pydantic, with dotted ``--set`` overrides.

Defaults (the paper's RGA-SC recipe) come from ``training.defaults`` and ``model.defaults``; unknown keys
anywhere are an error, never a silent no-op; the model section is checked by building ``model.ModelConfig``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from model.config import ModelConfig
from model.defaults import ATTENTION, BACKBONE, INPUT_SIZE
from training import defaults


class ConfigError(ValueError):
    """Raised for an unreadable, malformed or invalid training configuration."""


RecipeT = TypeVar("RecipeT", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Which dataset to train on and how to load it."""

    dataset: str = defaults.DATASET
    kwargs: dict[str, Any] = Field(default_factory=dict)
    num_workers: int = Field(default=defaults.NUM_WORKERS, ge=0)


class ModelSection(_Section):
    """Network architecture; ``pretrained`` is a torchvision ImageNet state-dict path or null."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    backbone: str = BACKBONE
    attention: str = ATTENTION
    input_size: tuple[int, int] = INPUT_SIZE
    pretrained: str | None = defaults.PRETRAINED

    @field_validator("backbone", "attention", "input_size")
    @classmethod
    def _accepted_by_the_network(cls, value: Any, info: ValidationInfo) -> Any:
        """Build ``model.ModelConfig`` from this field and those checked before it: the network's rules."""
        earlier = {name: info.data[name] for name in ("backbone", "attention") if name in info.data}
        ModelConfig(**{**earlier, info.field_name: value})
        return value


class SamplerConfig(_Section):
    """PK sampling: ``batch_size`` = P identities x K (``num_instances``) images, summed over all ranks."""

    batch_size: int = Field(default=defaults.BATCH_SIZE, gt=0)
    num_instances: int = Field(default=defaults.NUM_INSTANCES, gt=0)

    @model_validator(mode="after")
    def _divisible(self) -> SamplerConfig:
        if self.batch_size % self.num_instances:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of num_instances {self.num_instances}"
            )
        return self


class AugmentConfig(_Section):
    """Train-time augmentation (Random2DTranslation, flip, random erasing on the normalised image)."""

    translate_prob: float = Field(default=defaults.TRANSLATE_PROB, ge=0.0, le=1.0)
    translate_scale: float = Field(default=defaults.TRANSLATE_SCALE, ge=1.0)
    flip_prob: float = Field(default=defaults.FLIP_PROB, ge=0.0, le=1.0)
    erase_prob: float = Field(default=defaults.ERASE_PROB, ge=0.0, le=1.0)
    erase_area: tuple[float, float] = defaults.ERASE_AREA
    erase_min_aspect: float = Field(default=defaults.ERASE_MIN_ASPECT, gt=0.0)
    erase_attempts: int = Field(default=defaults.ERASE_ATTEMPTS, ge=1)


class LossConfig(_Section):
    """Label-smoothed cross entropy on the BN-neck logits plus batch-hard triplet on the pooled feature."""

    label_smoothing: float = Field(default=defaults.LABEL_SMOOTHING, ge=0.0, lt=1.0)
    margin: float = Field(default=defaults.TRIPLET_MARGIN, ge=0.0)
    ce_weight: float = Field(default=defaults.CE_WEIGHT, ge=0.0)
    triplet_weight: float = Field(default=defaults.TRIPLET_WEIGHT, ge=0.0)


class OptimConfig(_Section):
    """Adam with coupled L2 weight decay, linear warm-up then step decay, updated once per epoch."""

    lr: float = Field(default=defaults.LR, gt=0.0)
    weight_decay: float = Field(default=defaults.WEIGHT_DECAY, ge=0.0)
    betas: tuple[float, float] = defaults.BETAS
    eps: float = Field(default=defaults.EPS, gt=0.0)
    warmup_epochs: int = Field(default=defaults.WARMUP_EPOCHS, ge=0)
    warmup_start_lr: float = Field(default=defaults.WARMUP_START_LR, ge=0.0)
    milestones: list[int] = Field(default_factory=lambda: list(defaults.MILESTONES))
    gamma: float = Field(default=defaults.GAMMA, gt=0.0)


class TrainSection(_Section):
    """Epochs, seeding, precision, checkpointing and logging cadence."""

    epochs: int = Field(default=defaults.EPOCHS, ge=1)
    seed: int = defaults.SEED
    amp: bool = defaults.AMP
    deterministic: bool = defaults.DETERMINISTIC
    checkpoint_every: int = Field(default=defaults.CHECKPOINT_EVERY, ge=1)
    keep_checkpoints: int = Field(default=defaults.KEEP_CHECKPOINTS, ge=0)
    evaluate_at_end: bool = defaults.EVALUATE_AT_END


class EvalConfig(_Section):
    """Evaluation on the test split at the end of training."""

    batch_size: int = Field(default=defaults.EVAL_BATCH_SIZE, gt=0)
    rerank: bool = defaults.RERANK
    flip: bool = defaults.FLIP
    metric: Literal["cosine", "euclidean"] = defaults.METRIC
    num_rank_lists: int = Field(default=defaults.NUM_RANK_LISTS, ge=0)


class TrainConfig(_Section):
    """The whole recipe; ``name`` labels the run in logs and provenance."""

    name: str = defaults.RUN_NAME
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


def apply_overrides(
    raw: dict[str, Any], overrides: Iterable[str], recipe: type[BaseModel] | None = None
) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted ``key=value`` override set, checking keys exist in
    ``recipe`` (default :class:`TrainConfig`)."""
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node: Any = result
        schema: Any = recipe or TrainConfig
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
    return build_recipe(raw, TrainConfig, source)


def build_recipe(raw: dict[str, Any], recipe: type[RecipeT], source: str = "<dict>") -> RecipeT:
    """Validate a raw mapping into ``recipe`` (a pydantic model), with a readable error on failure."""
    try:
        return recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a YAML recipe (or start from defaults when ``path`` is None) and apply overrides."""
    return load_recipe(path, overrides, TrainConfig)


def load_recipe(path: str | Path | None, overrides: Iterable[str], recipe: type[RecipeT]) -> RecipeT:
    """Read a YAML file of ``recipe``'s shape (defaults when ``path`` is None) and apply overrides."""
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
    return build_recipe(apply_overrides(raw, overrides, recipe), recipe, source)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of a configuration (tuples become lists)."""
    return config.model_dump(mode="json")


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved configuration as YAML and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return path
