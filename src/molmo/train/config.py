"""Training configuration: small frozen dataclasses for the optimizer, the data and the run, plus dotted
command-line overrides (`--optim.connector.lr=1e-4`, `--data.sequence_length=512`, `--steps=100`,
`--data.sources.0.options={"n_val": 64}`, `--data_root=/data`).

    cfg = presets.get("tiny-sft")
    cfg = apply_overrides(cfg, ["--steps=50", "--optim.llm.lr=3e-4"])
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from molmo.checkpoint.lora_config import LoraConfig
from molmo.choices import AnnotationWeighting, Choice, parse_choices
from molmo.data.formatter import Stage


class ConfigError(ValueError):
    """A bad preset name, override or config value."""


@dataclass(frozen=True)
class GroupOptim:
    lr: float
    warmup: int


@dataclass(frozen=True)
class OptimConfig:
    """Per-group AdamW settings (recipe-spec §3.1): connector / vit / llm peaks and warm-ups, cosine decay to
    `final_lr_fraction` of the peak at the last step, clipping per group."""
    connector: GroupOptim = GroupOptim(2e-4, 200)
    vit: GroupOptim = GroupOptim(6e-6, 2000)
    llm: GroupOptim = GroupOptim(2e-5, 2000)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-6
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    final_lr_fraction: float = 0.1
    freeze_embedding: bool = True  # the LLM's original input embedding (the released recipe)
    freeze_vit: bool = False
    freeze_llm: bool = False


class Precision(Choice):
    BF16 = "bf16"  # autocast bf16 with fp32 master weights and reductions
    FP32 = "fp32"
    AUTO = "auto"  # bf16 where the device computes it fast (molmo.precision), resolved when the run starts


class Attention(Choice):
    SDPA = "sdpa"  # dense mask
    FLEX = "flex"  # FlexAttention block mask (GPU; no attention dropout)
    AUTO = "auto"  # flex on GPUs unless attention dropout is on, else sdpa


def _parse(obj: Any, **fields: type[Choice]) -> None:
    try:
        parse_choices(obj, **fields)
    except ValueError as e:
        raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class DataSource:
    """One dataset of a mixture. kind (where the examples come from): `generator:<points|clocks|docs|captions>`
    (made on the fly from `seed`), `owndata` (a JSONL file at `path`), or a reader name from `molmo.data.pixmo` /
    `molmo.data.academic` (`pixmo:cap`, `academic:chartqa`, …) reading a local copy at `path`.
    annotation_kinds (which of an example's annotations are kept) filters by `Annotation.kind`;
    annotations_per_example > 0 keeps that many of an image's annotations, drawn afresh for each use of the image."""
    RENAMED: typing.ClassVar[dict[str, str]] = {"kinds": "annotation_kinds"}  # older run configs' names

    name: str
    kind: str
    path: str = ""
    size: int = 0  # generator: number of distinct images; readers: 0 = all rows
    rate: float | None = None  # None: proportional to sqrt(size) within the mixture
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    stage: Stage | None = None  # formats this source in this stage whatever data.stage says
    annotation_kinds: tuple[str, ...] = ()  # keep only these ("qa", "point", "count", …); () keeps all
    annotations_per_example: int = 0  # 0 keeps all (packed as turns of one sequence); k: k drawn per use

    def __post_init__(self) -> None:
        _parse(self, stage=Stage)
        if self.annotations_per_example < 0:
            raise ConfigError(f"source {self.name!r}: annotations_per_example must be >= 0 (0 keeps all), "
                              f"got {self.annotations_per_example}")


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[DataSource, ...] = ()
    validation: tuple[DataSource, ...] = ()  # one mixture, logged as `val_loss`
    # each scored alone as `val_loss/<name>` (the released pre-training also reports caption-only PixMo-Cap)
    extra_validation: tuple[DataSource, ...] = ()
    mixture: str = ""  # a named mixture (molmo.data.mixture.PRESETS) whose rates weight the sources by name
    tokenizer_sources: tuple[DataSource, ...] = ()  # more text for a from-scratch tokenizer (e.g. the SFT mix)
    root: str = ""  # `--data_root`: relative source paths resolve against it (the `molmo data download` layout)
    stage: Stage = Stage.SFT
    sequence_length: int = 2304
    max_crops: int = 12
    multi_annotation_weighting: AnnotationWeighting = AnnotationWeighting.ROOT_SUBSEGMENTS
    num_workers: int = 0
    # generator sources' images kept on disk and read back (molmo.data.generators.cache): "" = drawn every
    # time, "auto" = $MOLMO_GENERATED_CACHE or ~/.cache/molmo/generated, else a folder
    generated_cache: str = ""
    seed: int = 6198  # sampling, permutations and per-example formatter draws

    def __post_init__(self) -> None:
        _parse(self, stage=Stage, multi_annotation_weighting=AnnotationWeighting)


@dataclass(frozen=True)
class InferenceEvalConfig:
    """Generation evaluations during training (`molmo.eval` benchmarks read from `data_dir`, default
    `<data root>/benchmarks`); `every` = 0 turns them off."""
    every: int = 0
    benchmarks: tuple[str, ...] = ()
    data_dir: str = ""
    max_examples: int = 2048
    batch_size: int = 4  # rows per generate call (on each rank)


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tiny-qwen2"  # a model preset name (molmo.model.config.PRESETS) when `init` is empty
    init: str = ""  # a checkpoint directory (our format or released HF Molmo) to start from
    tokenizer: str = ""  # directory with tokenizer.json; default: the init checkpoint's
    init_vit: str = ""  # ViT weights (safetensors, e.g. from `molmo train tiny-vision`) for a from-scratch model
    preprocessor: dict[str, Any] = field(default_factory=dict)  # PreprocessorConfig overrides
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    steps: int = 1000
    epochs: int = 0  # > 0: steps = epochs * (n + global_batch - 1) // global_batch, n = training examples
    global_batch: int = 128  # examples per optimizer step, over all ranks
    micro_batch: int = 4  # examples per forward/backward on one rank
    seed: int = 6198
    residual_dropout: float = 0.0
    response_residual_dropout: float = 0.1
    attention_dropout: float = 0.0  # on the LLM's attention probabilities (the released MolmoE-1B: 0.1)
    z_loss: float = 1e-4
    precision: Precision = Precision.BF16
    activation_checkpointing: bool = False
    attention: Attention = Attention.AUTO
    compile: bool = False
    out_dir: str = "runs/run"
    save_every: int = 1000
    eval_every: int = 0  # validation loss every N steps (0 = never)
    eval_batches: int = 8
    eval_examples: int = 0  # > 0: validation loss over this many examples (overrides eval_batches)
    inference_eval: InferenceEvalConfig = InferenceEvalConfig()
    log_every: int = 1
    tensorboard: bool = False
    wandb: str = ""  # a W&B project name; empty = off
    export: bool = True  # write a safetensors checkpoint (our format) at the end
    lora: LoraConfig = LoraConfig()  # rank > 0: train LoRA adapters only; export = adapter/ + merged model/

    def __post_init__(self) -> None:
        _parse(self, precision=Precision, attention=Attention)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from `to_dict()` output."""
    hints = typing.get_type_hints(cls)
    renamed = getattr(cls, "RENAMED", {})
    d = {renamed.get(k, k): v for k, v in d.items()}
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        kw[f.name] = _convert(hints[f.name], d[f.name], f.name)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {sorted(unknown)}")
    return cls(**kw)


def _convert(tp: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value) if isinstance(value, dict) else value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, name) for v in value)
        return tuple(_convert(a, v, name) for a, v in zip(args, value))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        return _convert([a for a in typing.get_args(tp) if a is not type(None)][0], value, name)
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name}: expected a boolean, got {value!r}")
        return bool(value)
    if tp in (int, float, str):
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {tp.__name__}, got {value!r}") from None
    return value


ALIASES = {"data_root": "data.root"}


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """`--a.b.c=value` overrides; values are parsed as JSON when possible (lists, dicts, numbers).
    `--data_root=DIR` is short for `--data.root=DIR`."""
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"bad override {item!r}: expected --key.sub=value")
        key, raw = item[2:].split("=", 1)
        key = ALIASES.get(key.replace("-", "_"), key)
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        cfg = _set(cfg, key.replace("-", "_").split("."), value, key)
    return cfg


def _set(obj: Any, path: list[str], value: Any, full: str) -> Any:
    if isinstance(obj, tuple) and path[0].isdigit() and len(path) > 1:  # `--data.sources.0.path=…`
        k = int(path[0])
        if k >= len(obj):
            raise ConfigError(f"override {full!r}: index {k} is out of range (there are {len(obj)})")
        return obj[:k] + (_set(obj[k], path[1:], value, full),) + obj[k + 1:]
    if not dataclasses.is_dataclass(obj):
        raise ConfigError(f"override {full!r}: {type(obj).__name__} has no sub-fields")
    names = {f.name: f for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"override {full!r}: {type(obj).__name__} has no field {head!r}; "
                          f"fields: {sorted(names)}")
    if len(path) == 1:
        hint = typing.get_type_hints(type(obj))[head]
        return dataclasses.replace(obj, **{head: _convert(hint, value, full)})
    return dataclasses.replace(obj, **{head: _set(getattr(obj, head), path[1:], value, full)})
