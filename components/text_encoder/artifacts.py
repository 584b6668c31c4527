"""The `ItemTextEmbeddings` artifact type and the layout of its directory.

The file names live here so the writer (executor) and the readers (the lead's
Trainer, serving) agree without importing the executor's heavy dependencies.
"""

from __future__ import annotations

from tfx.types import artifact

VOCAB_FILE = "vocab.txt"  # WordPiece vocabulary, one token per line, id = line
ITEM_IDS_FILE = "item_ids.txt"  # one item id per line, row order of embeddings
EMBEDDINGS_FILE = "embeddings.npy"  # float32 [N, D], L2-normalised rows
ENCODER_DIR = "encoder"  # TF SavedModel: serving_default(text) -> embedding
KERAS_MODEL_FILE = "keras_model.keras"  # Keras 3 encoder on token ids
PRESET_DIR = "preset"  # keras-hub preset (backbone + tokenizer) of the encoder
METADATA_FILE = "metadata.json"  # mode, sizes, steps, losses, timings


class ItemTextEmbeddings(artifact.Artifact):
    """Text-derived item vectors plus the encoder that produced them.

    Custom properties set by the executor: embedding_dim, num_items, mode,
    pretrain_seconds.
    """

    # KFP v2 needs custom artifact type names of the form "namespace.Name".
    TYPE_NAME = "mtrec.ItemTextEmbeddings"
