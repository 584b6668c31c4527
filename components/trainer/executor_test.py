"""The CatalogTrainer's executor hands run_fn its optional inputs and the split protocol."""

from __future__ import annotations

import logging

from tfx.types import artifact_utils, standard_artifacts

from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.components.trainer.executor import catalogue_config
from mtrec.contracts.pipeline import (
    CATALOG_SPLIT,
    CONFIG_ITEM_CATALOG_URI,
    CONFIG_ITEM_TEXT_EMBEDDINGS_URI,
    CONFIG_SPLIT_PROTOCOL,
    ITEM_CATALOG,
    ITEM_TEXT_EMBEDDINGS,
    SPLIT_PROTOCOL,
)
from mtrec.data.splits import RANDOM_PROTOCOL


def _catalog(protocol: str | None) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = "/artifacts/CatalogExampleGen/examples/7"
    examples.split_names = artifact_utils.encode_split_names([CATALOG_SPLIT])
    if protocol is not None:
        examples.set_string_custom_property(SPLIT_PROTOCOL, protocol)
    return examples


def test_the_catalogue_split_the_text_vectors_and_the_recorded_protocol():
    text = ItemTextEmbeddings()
    text.uri = "/artifacts/TextEncoder/item_text_embeddings/8"
    config = catalogue_config({ITEM_CATALOG: [_catalog(RANDOM_PROTOCOL)],
                               ITEM_TEXT_EMBEDDINGS: [text]})
    assert config == {
        CONFIG_ITEM_CATALOG_URI: "/artifacts/CatalogExampleGen/examples/7/Split-catalog",
        CONFIG_ITEM_TEXT_EMBEDDINGS_URI: text.uri,
        CONFIG_SPLIT_PROTOCOL: RANDOM_PROTOCOL,
    }


def test_absent_inputs_leave_their_keys_out():
    assert catalogue_config({}) == {}
    assert catalogue_config({ITEM_CATALOG: [], ITEM_TEXT_EMBEDDINGS: []}) == {}


def test_examples_without_a_recorded_protocol_say_so(caplog):
    """An ExampleGen output cached from before the protocol was recorded: no settings
    can be applied, and the log says how to get them."""
    with caplog.at_level(logging.WARNING):
        config = catalogue_config({ITEM_CATALOG: [_catalog(None)]})
    assert CONFIG_SPLIT_PROTOCOL not in config
    assert "--no-cache" in caplog.text
