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
    if tf is None:
        return
    loader = getattr(tf, "keras", None)
    # The lazy loader only resolves on first attribute access; once resolved,
    # its module name tells which Keras it picked.
    resolved = getattr(loader, "_tfll_keras_version", None)
    if resolved not in (None, "keras_2"):
        raise KerasVersionError(
            "tf.keras already resolved to Keras 3 before mtrec was imported; "
            "import mtrec before touching tf.keras (or set TF_USE_LEGACY_KERAS=1)."
        )
