"""The report's plots: matplotlib figures as self-contained SVG data URIs.

SVG with text drawn as paths (matplotlib's default `svg.fonttype`), so the page
needs no font, network or CDN to render the same everywhere. Each function
takes plain data from collect.py and returns one `data:image/svg+xml` URI.

Labels are the data's own strings (genre names, user ids): they are drawn as
plain text, never parsed as mathtext, so a `$` in a genre name neither fails
the report nor turns into italics.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is built in a terminal or a pipeline step

import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib import font_manager
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from mtrec import run_state
from mtrec.contracts.artifacts import MLM_LOSS_AFTER, MLM_LOSS_BEFORE
from mtrec.contracts.metrics import POPULARITY_PREFIX
from mtrec.data.cleaning import KEPT, rejected_by_reason

WIDTH, HEIGHT = 6.4, 3.0  # inches; 100 dpi in the page
RUN, CACHED, FAILED = "#4c72b0", "#8c8c8c", "#c44e52"
MAX_EPOCH_TICKS = 20  # up to this many epochs, a tick per epoch
# A log axis's tick values: the first of these mantissa sets to give 3 ticks in view
# (0.1 0.2 0.5 1 2 5 over the task losses' 0.09-6.5, so one tick sits by the retrieval
# loss); matplotlib's own put one tick per decade (1, 1e-01) and none near 6.
LOG_MANTISSAS = ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 8), tuple(range(1, 10)))
# The same SVG for the same data: a fixed salt for matplotlib's clip-path ids (random
# otherwise) and no <dc:date>, so two `mtrec report` builds differ in the "built" line only.
SVG_RC = {"svg.hashsalt": "mtrec-report"}
SVG_METADATA = {"Date": None}
# Fonts for scripts DejaVu Sans lacks (東京物語), used where installed; matplotlib
# falls back along the list glyph by glyph.
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei",
                  "Droid Sans Fallback", "IPAGothic", "Noto Sans", "Arial Unicode MS")


@functools.cache
def _fonts() -> list[str]:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(f for f in FALLBACK_FONTS if f in installed)]


def _plain_text(chart: Callable[..., str]) -> Callable[..., str]:
    """Draw `chart`'s labels as plain text (no mathtext) in the report's fonts."""
    @functools.wraps(chart)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        with plt.rc_context({"text.parse_math": False, "font.family": _fonts()}), \
                warnings.catch_warnings():
            # A script no installed font covers draws as boxes; one warning per glyph
            # and plot would flood the terminal of `mtrec run`.
            warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
            return chart(*args, **kwargs)
    return wrapper


def _uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    with plt.rc_context(SVG_RC):  # bbox "tight": no label cut at the figure's edge
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata=SVG_METADATA)
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]],
          horizontal: bool = False, value_label: str = "", category_label: str = "",
          value_format: str | None = None) -> str:
    """Grouped bars: one group per label, one bar per series. `value_label` names the
    value axis (the series' name when there is one series and no label); `value_format`
    (a format spec: "," for counts, ".3f") writes each bar's value at its end, so a bar
    of 1 next to one of 40,000 still shows, and a metric reads as a number."""
    fig, ax = plt.subplots(figsize=(WIDTH, max(HEIGHT, 0.35 * len(labels)) if horizontal
                                    else HEIGHT))
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        positions = [p + (i - (n - 1) / 2) * width for p in range(len(labels))]
        bars = (ax.barh(positions, values, height=width, label=name) if horizontal
                else ax.bar(positions, values, width=width, label=name))
        if value_format is not None:
            ax.bar_label(bars, labels=[format(v, value_format) for v in values], padding=2,
                         fontsize=8)
    if value_format is not None:
        if horizontal:  # room for the labels
            ax.margins(x=0.12)
        else:
            ax.margins(y=0.12)
    value_label = value_label or (next(iter(series)) if len(series) == 1 else "")
    ticks = list(range(len(labels)))
    if horizontal:
        ax.set_yticks(ticks, labels)
        ax.invert_yaxis()
        ax.set_xlabel(value_label)
        ax.set_ylabel(category_label)
    else:
        ax.set_xticks(ticks, labels)
        ax.set_ylabel(value_label)
        ax.set_xlabel(category_label)
    if len(series) > 1:
        ax.legend()
    ax.set_title(title)
    return _uri(fig)


@_plain_text
def rows_by_reason(counts: Mapping[str, int]) -> str:
    """Ratings kept, and rejected per reason."""
    reasons = rejected_by_reason(counts)
    labels = [KEPT, *reasons]
    return _bars("ratings kept and rejected by reason", labels,
                 {"rows": [counts.get(KEPT, 0), *reasons.values()]}, horizontal=True,
                 value_label="ratings", value_format=",")


@_plain_text
def rating_histogram(histograms: Mapping[str, Mapping[str, int]]) -> str:
    """Ratings per value, one bar per split."""
    values = sorted({v for h in histograms.values() for v in h}, key=float)
    return _bars("ratings per value", values,
                 {split: [h.get(v, 0) for v in values] for split, h in histograms.items()},
                 value_label="ratings", category_label="rating")


@_plain_text
def timeline(components: Sequence[Mapping]) -> str:
    """Each component as a bar from its start to its end; grey when cached, red when failed."""
    fig, ax = plt.subplots(figsize=(WIDTH, max(HEIGHT, 0.3 * len(components))))
    end = 0.0
    for row, c in enumerate(components):
        colour = FAILED if c["state"] == run_state.FAILED else CACHED if c["cached"] else RUN
        width = max(c["seconds"], 0.5)  # a cached 0.0 s component still shows
        ax.barh(row, width, left=c["start_s"], color=colour)
        ax.text(c["start_s"] + width, row, f" {c['seconds']:.1f}s", va="center", fontsize=7)
        end = max(end, c["start_s"] + width)
    ax.set_xlim(0, end * 1.12 or 1)  # room for the last bars' seconds inside the axes
    ax.set_yticks(range(len(components)), [c["id"] for c in components], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first component started")
    states = {"ran": RUN, "cached": CACHED, "failed": FAILED}
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in states.values()],
              labels=list(states), fontsize=7, loc="upper right")
    ax.set_title("pipeline timeline")
    return _uri(fig)


@_plain_text
def curves(title: str, series: Mapping[str, Sequence[float]], ylabel: str,
           log: bool = False) -> str:
    """Lines per epoch (epoch 1 first). A name starting "validation " is drawn dashed, with
    square markers, in the colour of its "train " twin; the legend sits outside the axes.
    `log`: a log y axis (when every value is positive), for series of different scales
    (the retrieval loss is ~6 where the other tasks' are 0.1-0.5)."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    colours: dict[str, Any] = {}
    for name, values in series.items():
        phase, _, task = name.partition(" ")
        key = task if phase in ("train", "validation") and task else name
        validation = phase == "validation"
        (line,) = ax.plot(range(1, len(values) + 1), values, label=name,
                          color=colours.get(key), marker="s" if validation else "o",
                          linestyle="--" if validation else "-")
        colours.setdefault(key, line.get_color())
    epochs = max((len(v) for v in series.values()), default=1)
    if epochs <= MAX_EPOCH_TICKS:  # whole epochs only: no "epoch 0.96" under one point
        ax.set_xticks(range(1, epochs + 1))
        ax.set_xlim(0.5, epochs + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    if log and all(v > 0 for values in series.values() for v in values):
        ax.set_yscale("log")
        # Plain numbers ("0.2", "5"): the default log labels are mathtext ("$10^{0}$").
        ax.yaxis.set_major_locator(FixedLocator(log_ticks(*ax.get_ylim())))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title)
    return _uri(fig)


def log_ticks(low: float, high: float) -> list[float]:
    """Tick values for a log axis viewing [low, high] (low > 0): round numbers (1-2-5,
    finer for a narrow range, LOG_MANTISSAS) in view, at least 3 where the range allows."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    ticks: list[float] = []
    for mantissas in LOG_MANTISSAS:
        ticks = [float(f"{m * 10.0 ** e:.6g}") for e in decades for m in mantissas
                 if low <= m * 10.0 ** e <= high]
        if len(ticks) >= 3:
            break
    return ticks or [float(f"{low:.2g}"), float(f"{high:.2g}")]


@_plain_text
def loss_weights(weights: Mapping[str, float]) -> str:
    return _bars("loss weight per task", list(weights), {"weight": list(weights.values())},
                 value_label="weight in the summed loss")


@_plain_text
def model_vs_popularity(title: str, metrics: Mapping[str, float], names: Sequence[str]) -> str:
    """The model's served metrics next to popularity's on the same users, each bar with
    its value written on it."""
    return _bars(title, list(names), {
        "model": [metrics.get(n, 0.0) for n in names],
        "popularity": [metrics.get(POPULARITY_PREFIX + n, 0.0) for n in names],
    }, value_label="value (higher is better)", value_format=".3f")


@_plain_text
def mlm_loss(mlm: Mapping[str, float]) -> str:
    """Masked-LM loss before and after pretraining (the per-step curve is not recorded)."""
    return _bars("masked-LM loss (start and end of pretraining)", ["before", "after"],
                 {"loss": [mlm.get(MLM_LOSS_BEFORE, 0.0), mlm.get(MLM_LOSS_AFTER, 0.0)]},
                 value_label="loss")


@_plain_text
def genre_interest(user: str, interest: Mapping[str, float], top: int = 10) -> str:
    top_items = dict(list(interest.items())[:top])
    return _bars(f"user {user}: genre interest (top {len(top_items)})", list(top_items),
                 {"P(engages and likes)": list(top_items.values())}, horizontal=True)
