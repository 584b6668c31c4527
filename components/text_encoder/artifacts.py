"""The `ItemTextEmbeddings` artifact type and the layout of its directory.

The file names are defined in contracts/artifacts.py, so the writer (executor)
and the readers (models/item_text.py, the summary) agree without importing the
executor's heavy dependencies, or this package at all.
"""

from __future__ import annotations

from tfx.types import artifact

# The directory layout (one definition, in contracts/artifacts.py), under the
# names the text encoder's modules use as `layout.X`.
from mtrec.contracts.artifacts import (  # noqa: F401
    DESCRIPTION_EMBEDDINGS_FILE,
    EMBEDDINGS_FILE,
    ENCODER_DIR,
    ITEM_IDS_FILE,
    METADATA_FILE,
    PRESET_DIR,
    VOCAB_FILE,
)


class ItemTextEmbeddings(artifact.Artifact):
    """Text-derived item vectors plus the encoder that produced them.

    Custom properties set by the executor: embedding_dim, num_items, mode,
    encoder_name, pretrain_seconds.
    """

    # KFP v2 needs custom artifact type names of the form "namespace.Name".
    TYPE_NAME = "mtrec.ItemTextEmbeddings"
