"""The served models by name: one `ModelManager` per configured model.

TF Serving's ServerCore routes a request by `model_spec.name`; this is that
look-up for the embedded server. Each model polls, loads and swaps its own
versions independently (serving/model_manager.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

from mtrec.serving.model_config import ModelSource, base_path_problem
from mtrec.serving.model_manager import ModelManager

log = logging.getLogger("mtrec.serving")


class ModelRegistry:
    """Model name -> its manager, in configuration order."""

    def __init__(self, managers: Sequence[ModelManager]) -> None:
        if not managers:
            raise ValueError("no models to serve")
        self._managers = {m.model_name: m for m in managers}
        if len(self._managers) != len(managers):
            raise ValueError("model names must be unique")

    def get(self, name: str) -> ModelManager | None:
        return self._managers.get(name)

    def unknown(self, name: str) -> str:
        """What a request for `name`, which is not served, is told: the names that are (a
        query with the default --model-name to a --model-config-file server said nothing)."""
        return f"model {name!r} is not served; served: {', '.join(self._managers)}"

    @property
    def first(self) -> ModelManager:
        """The first configured model (the only one with --model-base-path)."""
        return next(iter(self._managers.values()))

    def __iter__(self) -> Iterator[ModelManager]:
        return iter(self._managers.values())

    def __len__(self) -> int:
        return len(self._managers)

    def start(self) -> None:
        for manager in self:
            # A missing base path is the poller's to report (once, as it does a vanished one).
            if os.path.isdir(manager.model_dir):
                problem = base_path_problem(ModelSource(manager.model_name, manager.model_dir))
                if problem:
                    log.warning("%s", problem)
            manager.start()

    def stop(self, join: bool = True) -> None:
        for manager in self:
            manager.stop(join)
