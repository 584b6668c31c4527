"""mtrec: multi-task recommender (TFRS model, TFX pipeline, TF Serving).

Importing any `mtrec` module first selects Keras 2 for `tf.keras`: TFRS is
written against Keras 2, while keras-nlp uses Keras 3 through `import keras`.
TensorFlow reads TF_USE_LEGACY_KERAS when `tf.keras` is first touched, so this
is the one place that sets it.
"""

from mtrec._env import ensure_legacy_keras

ensure_legacy_keras()

__version__ = "0.1.0"
