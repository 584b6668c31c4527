"""WordPiece vocabulary, tokenizer and [CLS] x [SEP] packing.

The same tokenizer + packer objects are used for training, for encoding the
catalogue and inside the exported SavedModel, so there is one tokenisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras_nlp
import numpy as np
import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
RESERVED_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # [PAD] first: id 0 is padding


def build_vocabulary(texts: Sequence[str], vocab_size: int) -> list[str]:
    """Learn a lowercased, accent-stripped WordPiece vocabulary from the corpus.

    `vocab_size` is an upper bound: tf-text's learner only keeps pieces seen at
    least 10 times, so a small catalogue gets a small vocabulary (~300 tokens
    for ML-100K titles + genres) and rare words fall back to sub-word pieces.
    """
    data = tf.data.Dataset.from_tensor_slices(list(texts)).batch(256)
    return list(
        keras_nlp.tokenizers.compute_word_piece_vocabulary(
            data,
            vocabulary_size=vocab_size,
            lowercase=True,
            strip_accents=True,
            reserved_tokens=RESERVED_TOKENS,
        )
    )


def make_tokenizer(vocabulary: Sequence[str]) -> keras_nlp.models.BertTokenizer:
    """A BERT tokenizer with the same normalisation the vocabulary was built with."""
    return keras_nlp.models.BertTokenizer(
        vocabulary=list(vocabulary), lowercase=True, strip_accents=True
    )


def make_packer(
    tokenizer: keras_nlp.models.BertTokenizer, sequence_length: int
) -> keras_nlp.layers.StartEndPacker:
    """[CLS] tokens [SEP] [PAD]..., truncated to `sequence_length`, with a mask."""
    return keras_nlp.layers.StartEndPacker(
        sequence_length=sequence_length,
        start_value=tokenizer.cls_token_id,
        end_value=tokenizer.sep_token_id,
        pad_value=tokenizer.pad_token_id,
        return_padding_mask=True,
    )


def lower(text: tf.Tensor) -> tf.Tensor:
    """Unicode lowercase, as Hugging Face's BertTokenizer (`str.lower`) does.

    keras-hub's `lowercase=True` case-*folds* instead ("straße" -> "strasse"),
    which splits words differently from the vocabulary MiniLM was trained
    with; so every text is lowered here first and MiniLM's tokenizer is built
    with `lowercase=False` (minilm.py). Idempotent for the scratch tokenizer.
    """
    return tf.strings.lower(text, encoding="utf-8")


def tokenize(tokenizer: keras_nlp.models.BertTokenizer, texts: Sequence[str]) -> list[list[int]]:
    """WordPiece ids per text, untruncated and without [CLS]/[SEP]."""
    # Called eagerly, keras-nlp returns ragged results as nested Python lists.
    return [list(row) for row in tokenizer(lower(tf.constant(list(texts))))]


def pack_sequences(
    tokenizer: keras_nlp.models.BertTokenizer,
    tokens: Sequence[Sequence[int]],
    sequence_length: int,
) -> list[np.ndarray]:
    """Unpadded [CLS] tokens [SEP] int32 arrays, truncated like the serving packer."""
    keep = sequence_length - 2
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [np.array([cls_id, *row[:keep], sep_id], dtype=np.int32) for row in tokens]
