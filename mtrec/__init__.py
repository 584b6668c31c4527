"""mtrec: multi-task recommender (TFRS model, TFX pipeline, TF Serving).

Importing any `mtrec` module first selects Keras 2 for `tf.keras`: TFRS is
written against Keras 2, while keras-nlp uses Keras 3 through `import keras`.
TensorFlow reads TF_USE_LEGACY_KERAS when `tf.keras` is first touched, so this
is the one place that sets it.
"""

import importlib
from typing import Any

from mtrec._env import ensure_legacy_keras

ensure_legacy_keras()

__version__ = "0.1.0"

# Custom TFX artifact types, by their type names. A KFP v2 pod rebuilds each
# input and output artifact by importing its type name as a class path
# (kubeflow_v2_entrypoint_utils._retrieve_class_path for titles outside TFX's
# own), and the V2 compiler only accepts names of the form `namespace.Type`.
# So `mtrec.<Type>` must import, lazily: `import mtrec` stays free of TFX.
# tests/test_kfp_local.py runs the compiled spec's tasks that use them.
_ARTIFACT_TYPES = {
    "ItemTextEmbeddings": "mtrec.components.text_encoder.artifacts",
    "RetrievalBlessing": "mtrec.components.retrieval_evaluator.artifacts",
}


def __getattr__(name: str) -> Any:
    if name not in _ARTIFACT_TYPES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_ARTIFACT_TYPES[name]), name)
