"""TextEncoder TFX component: item catalogue -> text encoder + item text vectors."""

from __future__ import annotations

import dataclasses
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from mtrec.components.text_encoder import executor
from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.components.text_encoder.config import TextEncoderConfig
from mtrec.contracts.pipeline import ITEM_CATALOG, ITEM_TEXT_EMBEDDINGS

# Exec property types of TextEncoderConfig's field annotations (strings under
# `from __future__ import annotations`; "str | None" is an optional str).
_TYPES = {"int": int, "float": float, "str": str}


def _field_type(field: dataclasses.Field) -> type:
    return _TYPES[str(field.type).split("|")[0].strip()]


def _parameters() -> dict[str, ExecutionParameter]:
    """One exec property per TextEncoderConfig field; `mode` is always set."""
    return {
        f.name: ExecutionParameter(type=_field_type(f), optional=f.name != "mode")
        for f in dataclasses.fields(TextEncoderConfig)
    }


class TextEncoderSpec(types.ComponentSpec):
    """Exec properties mirror `TextEncoderConfig` (defaults and meaning there)."""

    PARAMETERS = _parameters()
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

    def __init__(self, item_catalog: types.BaseChannel, **settings: Any) -> None:
        """`settings` are TextEncoderConfig fields (defaults there); numbers from JSON
        are coerced to the field's type. `learning_rate=None` picks 1e-3 for scratch,
        5e-5 for fine-tuning a pretrained model."""
        fields = {f.name: f for f in dataclasses.fields(TextEncoderConfig)}
        unknown = TextEncoderConfig.unknown(settings)
        if unknown:
            raise TypeError(f"unknown TextEncoder settings {unknown}; known: {sorted(fields)}")
        coerced: dict[str, Any] = {
            name: None if value is None else _field_type(fields[name])(value)
            for name, value in settings.items()
        }
        # Validate at pipeline-definition time, not minutes into a run.
        config = TextEncoderConfig(**coerced)
        config.validate()
        output = channel_utils.as_channel([ItemTextEmbeddings()])
        spec = TextEncoderSpec(
            item_catalog=item_catalog,
            item_text_embeddings=output,
            **config.to_dict(),
        )
        super().__init__(spec=spec)
