"""Exec-property defaults and validation, shared by the component and executor.

One dataclass holds every knob so the component's constructor defaults, the
executor's fallbacks (tests call `Do` directly) and metadata.json never drift.
The defaults are sized for an ML-100K catalogue (~1,700 items) on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# pretrained: all-MiniLM-L6-v2 (minilm.py), frozen. pretrained_mlm: the same,
# then `fine_tune_steps` of masked LM on the item corpus. scratch: a small BERT
# trained from scratch with masked LM on the corpus (the ablation). preset: any
# local keras-hub BERT preset, optionally fine-tuned like pretrained_mlm.
MODE_PRETRAINED = "pretrained"
MODE_PRETRAINED_MLM = "pretrained_mlm"
MODE_SCRATCH = "scratch"
MODE_PRESET = "preset"
MODES = (MODE_PRETRAINED, MODE_PRETRAINED_MLM, MODE_SCRATCH, MODE_PRESET)
PRETRAINED_MODES = (MODE_PRETRAINED, MODE_PRETRAINED_MLM)

# Learning rates when `learning_rate` is left unset: a from-scratch tiny model
# wants a large step, a real pretrained preset is wrecked by one.
DEFAULT_PRETRAIN_LR = 1e-3
DEFAULT_FINE_TUNE_LR = 5e-5
# Domain MLM budget for pretrained_mlm: MiniLM's MLM head is not in the
# checkpoint, so these steps also train a fresh head (tied to the token
# embedding). Measured on ML-100K (batch 32): masked-token loss 10.81 -> 3.67,
# accuracy 0.43, in 1,106 s on a shared 2-core box (~0.5 core free: 3.7 s/step),
# before batches dropped the mask slots they do not use (pretrain._to_features).
DEFAULT_DOMAIN_MLM_STEPS = 300
# sequence_length = AUTO: the shortest multiple of 8 that holds every catalogue
# text ([CLS] and [SEP] included), capped at the model's maximum.
AUTO = 0
# The description alone (the cold-item map's second block, models/cold_item_map.py)
# is packed to at most this many tokens, [CLS] and [SEP] included: a long tag list,
# mean-pooled whole, says less than its first tags. ml-latest-small validation cut,
# two cold draws, first stage at equal NDCG@10, map l2 30
# (benchmarks/cold_item_map_inputs.py), cold HR@100 packed to 8 tokens 0.138 / 0.151,
# 12 0.141 / 0.155, 16 0.141 / 0.158, 24 0.139 / 0.155, 32 0.136 / 0.153, 64
# 0.136 / 0.153, the catalogue's 256 0.136 / 0.152 (the text alone: 0.129 / 0.144).
DEFAULT_DESCRIPTION_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
    """All exec properties of the TextEncoder component, with defaults."""

    mode: str = MODE_PRETRAINED
    preset_dir: str | None = None
    fine_tune_steps: int = 0  # pretrained_mlm: 0 means DEFAULT_DOMAIN_MLM_STEPS
    vocab_size: int = 4000
    sequence_length: int = AUTO
    description_length: int = DEFAULT_DESCRIPTION_LENGTH  # capped at sequence_length
    num_layers: int = 2
    hidden_dim: int = 64
    num_heads: int = 2
    intermediate_dim: int = 128
    dropout: float = 0.1
    pretrain_steps: int = 1500
    batch_size: int = 32
    mask_rate: float = 0.25
    learning_rate: float | None = None
    seed: int = 42
    log_every_steps: int = 100

    @classmethod
    def unknown(cls, settings: Mapping[str, Any]) -> list[str]:
        """The keys of `settings` (overrides: a flag's JSON, PipelineSettings.text_encoder,
        the component's keyword arguments) that name no field, sorted."""
        return sorted(set(settings) - {f.name for f in dataclasses.fields(cls)})

    @classmethod
    def from_exec_properties(cls, props: dict[str, Any]) -> TextEncoderConfig:
        """Build from TFX exec_properties; unknown keys are ignored, None = default."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = props.get(field.name)
            if value is None:
                continue
            default = field.default
            kind: type
            if isinstance(default, bool):
                kind = bool
            elif isinstance(default, int):
                kind = int
            elif isinstance(default, float) or field.name == "learning_rate":
                kind = float
            else:
                kind = str
            # int(1.5) is 1: a batch size of 1.5 ran as 1 without a word.
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{field.name!r} must be a whole number, got {value!r}")
            try:
                values[field.name] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"{field.name} must be {kind.__name__}, got {value!r}") from None
        config = cls(**values)
        config.validate()
        return config

    @property
    def effective_learning_rate(self) -> float:
        """The learning rate actually used: explicit, else a mode default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_PRETRAIN_LR if self.mode == MODE_SCRATCH else DEFAULT_FINE_TUNE_LR

    @property
    def train_steps(self) -> int:
        """MLM steps for this mode: none (frozen), pretraining or fine-tuning."""
        if self.mode == MODE_SCRATCH:
            return self.pretrain_steps
        if self.mode == MODE_PRETRAINED:
            return 0
        if self.mode == MODE_PRETRAINED_MLM:
            return self.fine_tune_steps or DEFAULT_DOMAIN_MLM_STEPS
        return self.fine_tune_steps

    def validate(self) -> None:
        """Fail before any work starts, with a message naming the bad property."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == MODE_PRESET and not self.preset_dir:
            raise ValueError("mode='preset' needs preset_dir (a local keras-hub preset)")
        if self.sequence_length != AUTO and self.sequence_length < 3:
            raise ValueError("sequence_length must be 0 (auto) or leave room for [CLS] x [SEP]")
        if self.description_length < 3:
            raise ValueError("description_length must leave room for [CLS] x [SEP], "
                             f"got {self.description_length}")
        positive = (
            "vocab_size",
            "num_layers",
            "hidden_dim",
            "num_heads",
            "intermediate_dim",
            "batch_size",
            "log_every_steps",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("pretrain_steps", "fine_tune_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mode == MODE_SCRATCH and self.hidden_dim % self.num_heads:
            raise ValueError("hidden_dim must be divisible by num_heads")
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")

    def settings_in_use(self) -> dict[str, Any]:
        """The settings this mode reads, with the values it runs with (the mode's
        learning rate and step budget where they are left to it): what the run
        report shows, so a frozen MiniLM run does not list the scratch model's sizes."""
        names = ["mode"] + (["preset_dir"] if self.mode == MODE_PRESET else [])
        names += ["sequence_length", "description_length"]
        if self.mode == MODE_SCRATCH:
            names += ["vocab_size", "num_layers", "hidden_dim", "num_heads",
                      "intermediate_dim", "dropout"]
        if self.train_steps:
            names += ["batch_size", "mask_rate", "learning_rate", "seed", "log_every_steps"]
        values = {name: getattr(self, name) for name in names}
        if "learning_rate" in values:
            values["learning_rate"] = self.effective_learning_rate
        if self.train_steps:
            values["mlm_steps"] = self.train_steps
        return values

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for metadata.json."""
        return dataclasses.asdict(self)
