"""GenericExecutor that hands run_fn the catalogue, the text embeddings and the split protocol.

run_fn receives them as fn_args.custom_config["item_catalog_uri"] (the
catalogue split's folder), ["item_text_embeddings_uri"] and ["split_protocol"]
(contracts.pipeline CONFIG_*); absent inputs leave the keys out. The split
protocol is the one our ExampleGen recorded on the catalogue's Examples (the
same examples root as the interactions; the Trainer's own examples are
Transform's output, which does not carry it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.types import artifact_utils

from mtrec.contracts.pipeline import (
    CATALOG_SPLIT,
    CONFIG_ITEM_CATALOG_URI,
    CONFIG_ITEM_TEXT_EMBEDDINGS_URI,
    CONFIG_SPLIT_PROTOCOL,
    ITEM_CATALOG,
    ITEM_TEXT_EMBEDDINGS,
    SPLIT_PROTOCOL,
)

if TYPE_CHECKING:
    from tfx.components.trainer.fn_args_utils import FnArgs

log = logging.getLogger(__name__)


def catalogue_config(input_dict: dict[str, list[types.Artifact]]) -> dict[str, str]:
    """The custom_config entries run_fn reads from the optional inputs (a key is left
    out when its input is)."""
    custom = {}
    if input_dict.get(ITEM_CATALOG):
        custom[CONFIG_ITEM_CATALOG_URI] = artifact_utils.get_split_uri(
            input_dict[ITEM_CATALOG], CATALOG_SPLIT
        )
        catalog = artifact_utils.get_single_instance(input_dict[ITEM_CATALOG])
        if catalog.has_custom_property(SPLIT_PROTOCOL):
            custom[CONFIG_SPLIT_PROTOCOL] = catalog.get_string_custom_property(SPLIT_PROTOCOL)
        else:  # an ExampleGen output cached from before mtrec recorded it
            log.warning("the catalogue examples carry no split protocol, so the protocol's "
                        "model settings are not applied; re-run with --no-cache to have "
                        "ExampleGen record it")
    if input_dict.get(ITEM_TEXT_EMBEDDINGS):
        custom[CONFIG_ITEM_TEXT_EMBEDDINGS_URI] = artifact_utils.get_single_uri(
            input_dict[ITEM_TEXT_EMBEDDINGS]
        )
    return custom


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> FnArgs:
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        fn_args.custom_config = {**(fn_args.custom_config or {}), **catalogue_config(input_dict)}
        return fn_args
