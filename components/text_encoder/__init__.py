"""TextEncoder: a custom TFX component that turns item text into vectors.

Public API (imported lazily so that `import ...text_encoder.corpus` in a
serving graph does not pull in TFX components or keras-nlp):

- `TextEncoder`, `TextEncoderSpec` (component.py), `Executor` (executor.py)
- `ItemTextEmbeddings` (artifacts.py), `TextEncoderConfig` (config.py)
- `item_text`, `item_text_tf` (corpus.py): the one item-text format
- `load_item_text_embeddings`, `load_text_encoder`, `load_keras_text_encoder`,
  `load_metadata` (export.py): readers of the output artifact
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TextEncoder": "component",
    "TextEncoderSpec": "component",
    "Executor": "executor",
    "ItemTextEmbeddings": "artifacts",
    "TextEncoderConfig": "config",
    "item_text": "corpus",
    "item_text_tf": "corpus",
    "load_item_text_embeddings": "export",
    "load_text_encoder": "export",
    "load_keras_text_encoder": "export",
    "load_metadata": "export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
