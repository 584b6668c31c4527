"""TextEncoder TFX component: item catalogue -> text encoder + item text vectors."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from mtrec.components.text_encoder import executor
from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.contracts.pipeline import ITEM_CATALOG, ITEM_TEXT_EMBEDDINGS

_DEFAULTS = TextEncoderConfig()


class TextEncoderSpec(types.ComponentSpec):
    """Exec properties mirror `TextEncoderConfig` (defaults and meaning there)."""

    PARAMETERS = {
        "mode": ExecutionParameter(type=str),
        "preset_dir": ExecutionParameter(type=str, optional=True),
        "fine_tune_steps": ExecutionParameter(type=int, optional=True),
        "vocab_size": ExecutionParameter(type=int, optional=True),
        "sequence_length": ExecutionParameter(type=int, optional=True),
        "num_layers": ExecutionParameter(type=int, optional=True),
        "hidden_dim": ExecutionParameter(type=int, optional=True),
        "num_heads": ExecutionParameter(type=int, optional=True),
        "intermediate_dim": ExecutionParameter(type=int, optional=True),
        "dropout": ExecutionParameter(type=float, optional=True),
        "pretrain_steps": ExecutionParameter(type=int, optional=True),
        "batch_size": ExecutionParameter(type=int, optional=True),
        "mask_rate": ExecutionParameter(type=float, optional=True),
        "learning_rate": ExecutionParameter(type=float, optional=True),
        "seed": ExecutionParameter(type=int, optional=True),
        "log_every_steps": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        ITEM_CATALOG: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        ITEM_TEXT_EMBEDDINGS: ChannelParameter(type=ItemTextEmbeddings),
    }


class TextEncoder(base_component.BaseComponent):
    """Encodes every catalogue item's text with a BERT encoder.

    mode="pretrained" (default) uses all-MiniLM-L6-v2 (minilm.py), frozen;
    mode="pretrained_mlm" first continues its masked-LM training on the item
    corpus for `fine_tune_steps`; mode="scratch" trains a small BERT with
    masked LM on the catalogue alone; mode="preset" loads a local keras-hub
    BERT preset and optionally fine-tunes it with masked LM.
    Output: see `artifacts.py` for the directory layout.
    """

    SPEC_CLASS = TextEncoderSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        item_catalog: types.BaseChannel,
        mode: str = _DEFAULTS.mode,
        preset_dir: str | None = None,
        fine_tune_steps: int = _DEFAULTS.fine_tune_steps,
        vocab_size: int = _DEFAULTS.vocab_size,
        sequence_length: int = _DEFAULTS.sequence_length,
        num_layers: int = _DEFAULTS.num_layers,
        hidden_dim: int = _DEFAULTS.hidden_dim,
        num_heads: int = _DEFAULTS.num_heads,
        intermediate_dim: int = _DEFAULTS.intermediate_dim,
        dropout: float = _DEFAULTS.dropout,
        pretrain_steps: int = _DEFAULTS.pretrain_steps,
        batch_size: int = _DEFAULTS.batch_size,
        mask_rate: float = _DEFAULTS.mask_rate,
        learning_rate: float | None = None,
        seed: int = _DEFAULTS.seed,
        log_every_steps: int = _DEFAULTS.log_every_steps,
    ):
        """`learning_rate=None` picks 1e-3 for scratch, 5e-5 for fine-tuning a pretrained model."""
        # Validate at pipeline-definition time, not minutes into a run.
        config = TextEncoderConfig(
            mode=mode,
            preset_dir=preset_dir,
            fine_tune_steps=int(fine_tune_steps),
            vocab_size=int(vocab_size),
            sequence_length=int(sequence_length),
            num_layers=int(num_layers),
            hidden_dim=int(hidden_dim),
            num_heads=int(num_heads),
            intermediate_dim=int(intermediate_dim),
            dropout=float(dropout),
            pretrain_steps=int(pretrain_steps),
            batch_size=int(batch_size),
            mask_rate=float(mask_rate),
            learning_rate=None if learning_rate is None else float(learning_rate),
            seed=int(seed),
            log_every_steps=int(log_every_steps),
        )
        config.validate()
        output = channel_utils.as_channel([ItemTextEmbeddings()])
        spec = TextEncoderSpec(
            item_catalog=item_catalog,
            item_text_embeddings=output,
            **config.to_dict(),
        )
        super().__init__(spec=spec)
