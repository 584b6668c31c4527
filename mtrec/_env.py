"""Process set-up that must happen before TensorFlow resolves `tf.keras`."""

from __future__ import annotations

import os
import sys
import warnings


class KerasVersionError(RuntimeError):
    """tf.keras was already bound to Keras 3 before mtrec could select Keras 2."""


def ensure_legacy_keras() -> None:
    """Make `tf.keras` mean Keras 2 (tf-keras), as TFRS requires.

    Safe to call many times. If TensorFlow already bound `tf.keras` to Keras 3
    in this process, fail loudly instead of training a model that breaks later.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # google-cloud client libraries warn about Python 3.10 on import; the pinned
    # stack (TFX 1.16) requires 3.10, so the warning is noise for users.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
    tf = sys.modules.get("tensorflow")
    if tf is not None and _resolved_to_keras_3(vars(tf).get("keras")):
        raise KerasVersionError(
            "tf.keras already resolved to Keras 3 before mtrec was imported; "
            "import mtrec before touching tf.keras (or set TF_USE_LEGACY_KERAS=1)."
        )


def _resolved_to_keras_3(keras: object) -> bool:
    """Whether tensorflow's `keras` entry (read without resolving it) is Keras 3.

    TensorFlow's KerasLazyLoader picks a Keras on its first attribute access and
    records which (its private `_tfll_keras_version`: "tf_keras", "keras_2" or
    "keras_3"; tests/test_private_apis.py pins it). Loading a submodule then puts
    the Keras module itself in tensorflow's namespace, where only its name tells:
    Keras 3's is "keras._tf_keras.keras", Keras 2's from tf-keras "tf_keras.…".
    """
    if keras is None:
        return False
    state = vars(keras)  # a loader's attributes, without triggering it
    if "_tfll_keras_version" in state:
        return state["_tfll_keras_version"] == "keras_3"
    if "_tfll_initialized" in state:  # a loader not resolved yet
        return False
    root = str(state.get("__name__", "")).split(".")[0]
    return root == "keras" and str(getattr(sys.modules.get("keras"), "__version__", "")
                                   ).startswith("3.")
