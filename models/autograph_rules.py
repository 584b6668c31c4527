"""AutoGraph leaves tf_keras alone, as it leaves keras: a fix for the pinned TF 2.16.

AutoGraph rewrites the source of every function a traced step reaches, except
modules on its DoNotConvert list. TF 2.16's list names `keras`, which was
Keras 2 up to TF 2.15. Keras 2 now ships as `tf_keras` (TFRS needs it:
TF_USE_LEGACY_KERAS=1), and the list misses it, so every Keras layer, metric
and optimizer function was re-parsed and rewritten at each first trace. Timed
in one Trainer run on the embedded sample (2 cores): AutoGraph spent 32 s
converting, 23.7 s of it in tf_keras (mtrec's own functions 6 s, TFRS 1.3 s);
with the rule the first epoch took 13 s instead of 48 s, the export 15 s
instead of 23 s, the whole run_fn 60 s instead of 104 s, with identical losses
and validation metrics. Later TensorFlow releases carry the same rule.

Keras 2 is written to trace without AutoGraph (it never ran converted before
the rename). mtrec's code and TFRS stay converted: TFRS's Retrieval task needs
it (`len(tf.shape(x))`).

The list is private (`tensorflow.python.autograph.core.config`);
tests/test_private_apis.py pins it.
"""

from __future__ import annotations

from tensorflow.python.autograph.core import config as autograph_config

SKIPPED_PACKAGE = "tf_keras"


def skip_tf_keras() -> None:
    """Add DoNotConvert("tf_keras") to AutoGraph's rules, once per process."""
    rules = autograph_config.CONVERSION_RULES
    if not any(isinstance(rule, autograph_config.DoNotConvert)
               and rule.matches(SKIPPED_PACKAGE) for rule in rules):
        autograph_config.CONVERSION_RULES = (*rules, autograph_config.DoNotConvert(SKIPPED_PACKAGE))
