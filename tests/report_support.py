"""What the report tests share: the axes of every plot the report draws."""

from __future__ import annotations

from typing import Any

import pytest

from mtrec.report import charts


def capture_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The axes of every plot drawn from now on (charts._uri still builds each SVG)."""
    drawn: list[Any] = []
    uri = charts._uri

    def keep(fig: Any) -> str:
        drawn.append(fig.axes[0])
        return uri(fig)

    monkeypatch.setattr(charts, "_uri", keep)
    return drawn
