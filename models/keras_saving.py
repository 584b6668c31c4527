"""Save the serving graph without Keras 2's per-layer call traces.

`tf.saved_model.save` asks every tf_keras layer it reaches for its SavedModel
children, and each layer answers with traced copies of its own `call` (and
loss and regularisation functions) so that `tf_keras.models.load_model` could
revive it as a Keras layer. The serving SavedModel is only ever loaded by its
signatures (TF Serving, TFMA, `tf.saved_model.load(...).signatures`); the
Trainer's weights for re-indexing are a separate checkpoint. Those traces are
wasted work. Measured on the embedded sample's model, on 2 cores, with the
same trained model exported side by side:
- the export took 14.3 / 13.5 s with them and 5.7 / 7.4 s without;
- `saved_model.pb` went from 3.9 MB to 2.4 MB;
- a fresh `tf.saved_model.load` took 5.3 / 4.3 s against 2.6 / 2.6 s;
- every signature gave identical answers.

Keras's switch for this is `model.save(..., save_traces=False)`, which sets
the thread-local scope used here. No public API reaches that scope from
`tf.saved_model.save`, so this module reads the private
`tf_keras.src.saving.legacy.saved_model.utils`; tests/test_private_apis.py
pins it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils


@contextlib.contextmanager
def without_layer_traces() -> Iterator[None]:
    """Within: tf.saved_model.save writes tf_keras layers' variables, not their calls."""
    with keras_saved_model_utils.keras_option_scope(save_traces=False):
        yield
