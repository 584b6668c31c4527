"""The TextEncoder component wires its channels and exec properties."""

from __future__ import annotations

import dataclasses

import pytest
from tfx.types import channel_utils, standard_artifacts

from mtrec.components.text_encoder.artifacts import ItemTextEmbeddings
from mtrec.components.text_encoder.component import TextEncoder, TextEncoderSpec
from mtrec.components.text_encoder.config import TextEncoderConfig


def _catalog_channel():
    examples = standard_artifacts.Examples()
    examples.split_names = '["catalog"]'
    return channel_utils.as_channel([examples])


def test_component_builds_with_defaults():
    component = TextEncoder(item_catalog=_catalog_channel())
    output = component.outputs["item_text_embeddings"]
    assert output.type is ItemTextEmbeddings
    assert output.type_name == "mtrec.ItemTextEmbeddings"
    assert component.inputs["item_catalog"].type_name == "Examples"
    props = component.exec_properties
    defaults = TextEncoderConfig()
    assert props["mode"] == "pretrained"
    assert props["vocab_size"] == defaults.vocab_size
    assert props["sequence_length"] == 0  # auto: from the corpus
    assert props["mask_rate"] == 0.25
    # The executor reads back exactly the component's configuration.
    assert TextEncoderConfig.from_exec_properties(props) == defaults


def test_component_preset_mode_and_validation(tmp_path):
    component = TextEncoder(
        item_catalog=_catalog_channel(),
        mode="preset",
        preset_dir=str(tmp_path),
        fine_tune_steps=10,
        learning_rate=1e-4,
    )
    props = component.exec_properties
    assert props["preset_dir"] == str(tmp_path)
    assert props["learning_rate"] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="preset_dir"):
        TextEncoder(item_catalog=_catalog_channel(), mode="preset")
    with pytest.raises(ValueError, match="mode"):
        TextEncoder(item_catalog=_catalog_channel(), mode="bogus")


def test_exec_properties_are_the_config_fields_and_json_numbers_are_coerced():
    """One list of settings (TextEncoderConfig): the spec and constructor derive from it."""
    fields = {f.name for f in dataclasses.fields(TextEncoderConfig)}
    assert set(TextEncoderSpec.PARAMETERS) == fields
    assert TextEncoderSpec.PARAMETERS["dropout"].type is float
    assert TextEncoderSpec.PARAMETERS["preset_dir"].type is str
    assert not TextEncoderSpec.PARAMETERS["mode"].optional
    component = TextEncoder(item_catalog=_catalog_channel(), pretrain_steps=300.0, dropout=0)
    assert component.exec_properties["pretrain_steps"] == 300
    assert isinstance(component.exec_properties["pretrain_steps"], int)
    assert isinstance(component.exec_properties["dropout"], float)
    with pytest.raises(TypeError, match="unknown TextEncoder settings.*pretrain_step"):
        TextEncoder(item_catalog=_catalog_channel(), pretrain_step=3)


def test_settings_in_use_lists_only_what_the_mode_reads():
    """The run report's settings table: a frozen MiniLM has no model sizes or MLM knobs."""
    assert TextEncoderConfig().settings_in_use() == {
        "mode": "pretrained", "sequence_length": 0, "description_length": 16}
    mlm = TextEncoderConfig(mode="pretrained_mlm").settings_in_use()
    assert mlm["mlm_steps"] == 300 and mlm["learning_rate"] == 5e-5
    assert "hidden_dim" not in mlm and "preset_dir" not in mlm
    scratch = TextEncoderConfig(mode="scratch", pretrain_steps=20).settings_in_use()
    assert scratch["mlm_steps"] == 20 and scratch["learning_rate"] == 1e-3
    assert scratch["hidden_dim"] == 64 and scratch["vocab_size"] == 4000
    preset = TextEncoderConfig(mode="preset", preset_dir="/p").settings_in_use()
    assert preset == {"mode": "preset", "preset_dir": "/p", "sequence_length": 0,
                      "description_length": 16}


def test_a_whole_number_setting_refuses_a_fraction():
    """int(1.5) is 1: a batch size of 1.5 ran as 1 without a word."""
    with pytest.raises(ValueError, match=r"'batch_size' must be a whole number, got 1\.5"):
        TextEncoderConfig.from_exec_properties({"batch_size": 1.5})
    assert TextEncoderConfig.from_exec_properties({"batch_size": 64.0}).batch_size == 64
