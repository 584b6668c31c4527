"""The Keras 3 text encoder: a BERT backbone + masked mean pooling + L2 norm.

Mean pooling over non-padding positions ([CLS] and [SEP] included) is used
rather than the [CLS] vector because MLM pretraining never trains [CLS] as a
summary (there is no next-sentence task); the L2 norm makes dot products
cosine similarities, which is what retrieval over these vectors wants.
"""

from __future__ import annotations

import keras
import keras_nlp
import tensorflow as tf

from mtrec.components.text_encoder.config import TextEncoderConfig

TOKEN_IDS = "token_ids"
SEGMENT_IDS = "segment_ids"
PADDING_MASK = "padding_mask"
EMBEDDING = "embedding"


def serialiser_versions() -> str:
    """The libraries whose versions decide how an exported encoder is written."""
    return (f"tensorflow {tf.__version__}, keras {keras.__version__}, "
            f"keras-nlp {keras_nlp.__version__}")


def build_backbone(
    config: TextEncoderConfig, vocabulary_size: int, sequence_length: int
) -> keras_nlp.models.BertBackbone:
    """A fresh, randomly initialised small BERT sized by the config."""
    return keras_nlp.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
        max_sequence_length=sequence_length,
        num_segments=1,
    )


def load_preset(
    preset_dir: str,
) -> tuple[keras_nlp.models.BertBackbone, keras_nlp.models.BertTokenizer]:
    """Backbone and tokenizer of a local keras-hub BERT preset directory."""
    backbone = keras_nlp.models.BertBackbone.from_preset(preset_dir)
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(preset_dir)
    return backbone, tokenizer


def backbone_inputs() -> dict[str, keras.KerasTensor]:
    """Symbolic inputs matching BertBackbone, any batch and sequence length."""
    return {
        TOKEN_IDS: keras.Input(shape=(None,), dtype="int32", name=TOKEN_IDS),
        SEGMENT_IDS: keras.Input(shape=(None,), dtype="int32", name=SEGMENT_IDS),
        PADDING_MASK: keras.Input(shape=(None,), dtype="int32", name=PADDING_MASK),
    }


def build_encoder_model(backbone: keras_nlp.models.BertBackbone) -> keras.Model:
    """token ids -> one L2-normalised vector per text (shares the backbone's weights)."""
    inputs = backbone_inputs()
    sequence = backbone(inputs)["sequence_output"]
    pooled = keras.layers.GlobalAveragePooling1D(name="masked_mean")(
        sequence, mask=inputs[PADDING_MASK]
    )
    embedding = keras.layers.UnitNormalization(axis=-1, name=EMBEDDING)(pooled)
    return keras.Model(inputs, embedding, name="item_text_encoder")
