"""The report page's HTML pieces: escaping, numbers, tables, images and verdicts.

Every value goes through `escape` or a number formatter, so a title or an id with
`<` in it never becomes markup; a value nothing recorded reads "not recorded".
page.py builds the sections from these.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mtrec.contracts.artifacts import LIKE_CALIBRATION_IDENTITY

NOT_RECORDED = "not recorded"
CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem;color:#222}
h1{font-size:1.5rem}h2{border-bottom:1px solid #ccc;padding-top:1rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;
text-align:left;font-size:.9rem}img{max-width:100%;display:block;margin:.5rem 0}
.ok{color:#2a7a2a;font-weight:bold}.bad{color:#b22;font-weight:bold}.muted{color:#777}.warn{color:#a65e00}
nav a{margin-right:1rem}"""


def escape(value: Any) -> str:
    return html.escape(str(value))


def num(value: Any, digits: int = 4) -> str:
    """A float to `digits` places, an integer with thousands separators (32,020)."""
    if value is None:
        return f'<span class="muted">{NOT_RECORDED}</span>'
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(value)


def stderr(value: Any) -> str:
    """A relative gate's standard error; a dash for a bound without one (HR@K), or for
    fewer than two eval users."""
    if isinstance(value, float) and math.isfinite(value):
        return num(value)
    return '<span class="muted">–</span>'


def like_fit(fit: Any) -> str:
    """The reported P(like)'s fit, sigmoid(a * logit + b * rating + c): "rating 3.346,
    shift -11.722" (on the served rating), "logit 1.092, shift +1.089" (a model without a
    rating head; an earlier run's [scale, shift] too); "none" for the identity (no
    relevance head, one class, or a fit that would reverse the order:
    models/like_calibration.py)."""
    if not isinstance(fit, Sequence) or len(fit) not in (2, 3):
        return f'<span class="muted">{NOT_RECORDED}</span>'
    a, b, c = fit if len(fit) == 3 else (fit[0], 0.0, fit[1])
    if (a, b, c) == LIKE_CALIBRATION_IDENTITY:
        return escape("none (the head's own probability)")
    weight = f"rating {b:.3f}" if b else f"logit {a:.3f}"
    return f"{weight}, shift {c:+.3f}"


def count(value: Any) -> str:
    """A count: an integer with thousands separators (22,713,216), a whole float (TFMA's
    example_count, 7980.0) as an integer, else as `num`."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return num(value)


def of(part: Any, whole: Any, where: str) -> str:
    """`part` with the total it is a part of ("797 of 800 in the catalogue"), so a count of
    rated items is not read as the catalogue's size; just `part` where no total was recorded."""
    if part is None or whole is None:
        return count(part)
    return f"{count(part)} of {count(whole)} {escape(where)}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def missing(what: str) -> str:
    return f'<p class="muted">{escape(what)}: {NOT_RECORDED}.</p>'


def verdict(ok: bool | None, text: str) -> str:
    css = "ok" if ok else "bad"
    return f'<p class="{css}">{escape(text)}</p>'


def muted(markup: str) -> str:
    """Already-escaped `markup` in the page's grey: a cell that holds no measured value."""
    return f'<span class="muted">{markup}</span>'


def stopped_note(what: str, node: str, stopped: Mapping[str, str]) -> str:
    """Why `what` is missing when `node` failed or never ran (stopped[node] says which,
    page.stopped_components): not "not recorded", which reads as a gap in the records."""
    return f'<p class="muted">{escape(what)}: none, as {escape(node)} {escape(stopped[node])}.</p>'
