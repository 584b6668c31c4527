"""GenericExecutor that hands run_fn the catalogue and text-embedding URIs.

run_fn receives them as fn_args.custom_config["item_catalog_uri"] (the
catalogue split's folder) and ["item_text_embeddings_uri"]; absent inputs
leave the keys out.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.types import artifact_utils

from mtrec.contracts.pipeline import (
    CATALOG_SPLIT,
    CONFIG_ITEM_CATALOG_URI,
    CONFIG_ITEM_TEXT_EMBEDDINGS_URI,
    ITEM_CATALOG,
    ITEM_TEXT_EMBEDDINGS,
)


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        custom = dict(fn_args.custom_config or {})
        if input_dict.get(ITEM_CATALOG):
            custom[CONFIG_ITEM_CATALOG_URI] = artifact_utils.get_split_uri(
                input_dict[ITEM_CATALOG], CATALOG_SPLIT
            )
        if input_dict.get(ITEM_TEXT_EMBEDDINGS):
            custom[CONFIG_ITEM_TEXT_EMBEDDINGS_URI] = artifact_utils.get_single_uri(
                input_dict[ITEM_TEXT_EMBEDDINGS]
            )
        fn_args.custom_config = custom
        return fn_args
