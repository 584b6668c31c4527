"""TextEncoder: a custom TFX component that turns item text into vectors.

Import what you use from its module, so that reading the artifact does not pull
in TFX components or keras-nlp:

- `TextEncoder`, `TextEncoderSpec` (component.py), `Executor` (executor.py)
- `ItemTextEmbeddings` (artifacts.py), `TextEncoderConfig` (config.py)
- `item_text` (corpus.py): the one item-text format
- `load_text_encoder`, `load_keras_text_encoder`, `load_metadata` (export.py) and
  `load_item_text_embeddings` (models/item_text.py): readers of the output artifact
"""
