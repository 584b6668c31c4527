"""How the ServingModule's signatures are declared: their inputs and their tracing.

The TensorSpecs take their names from contracts/signatures.py (a PredictRequest's
input keys); models/serving_module.py decorates each signature with `signature`.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from mtrec.contracts import features as F
from mtrec.contracts import signatures as S

# Signatures trace without AutoGraph: they hold no Python control flow over tensors
# (one would fail the trace, not change silently), and converting what they reach cost
# ~5 s an export (sample model: 12.4-13.1 -> 7.5-7.9 s, identical answers).
signature = functools.partial(tf.function, autograph=False)

EXAMPLES = tf.TensorSpec([None], tf.string, name=S.EXAMPLES)
USER_ID = tf.TensorSpec([None], tf.string, name=S.USER_ID)
ITEM_ID = tf.TensorSpec([None], tf.string, name=S.ITEM_ID)
ITEM_IDS = tf.TensorSpec([None, None], tf.string, name=S.ITEM_IDS)  # padded with ""
K = tf.TensorSpec([], tf.int32, name=S.K)

# embed_new_item's inputs: the raw features serving_ops.new_item_inputs reads (genres
# padded with "", year 0 = unknown), and the text encoder's outputs (export.TEXT_ENCODER_DIR,
# pushed alongside) for the item's text and for its description alone ([B, 0] or zeros
# when there is none; the description's is ignored where `description` is empty).
NEW_ITEM = [
    tf.TensorSpec([None], tf.string, name=S.ITEM_ID),
    tf.TensorSpec([None], tf.string, name=F.TITLE),
    tf.TensorSpec([None, None], tf.string, name=S.GENRES),
    tf.TensorSpec([None], tf.string, name=F.DESCRIPTION),
    tf.TensorSpec([None], tf.int64, name=F.YEAR),
    tf.TensorSpec([None, None], tf.float32, name=S.TEXT_EMBEDDING),
    tf.TensorSpec([None, None], tf.float32, name=S.DESCRIPTION_EMBEDDING),
]
