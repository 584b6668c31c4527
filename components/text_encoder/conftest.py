"""Import mtrec before any test module: it selects Keras 2 for tf.keras (TFRS)
while keras-nlp keeps Keras 3, and must run before TensorFlow binds tf.keras."""

import mtrec  # noqa: F401
