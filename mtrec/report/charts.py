"""The report's plots: matplotlib figures as self-contained SVG data URIs.

SVG with text drawn as paths (matplotlib's default `svg.fonttype`), so the page
needs no font, network or CDN to render the same everywhere. Each function
takes plain data from collect.py and returns one `data:image/svg+xml` URI.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: the report is built in a terminal or a pipeline step

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from mtrec.contracts.metrics import POPULARITY_PREFIX  # noqa: E402

WIDTH, HEIGHT = 6.4, 3.0  # inches; 100 dpi in the page
RUN, CACHED, FAILED, OTHER = "#4c72b0", "#8c8c8c", "#c44e52", "#dd8452"


def _uri(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]],
          horizontal: bool = False, xlabel: str = "") -> str:
    """Grouped bars: one group per label, one bar per series."""
    fig, ax = plt.subplots(figsize=(WIDTH, max(HEIGHT, 0.35 * len(labels)) if horizontal
                                    else HEIGHT))
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        positions = [p + (i - (n - 1) / 2) * width for p in range(len(labels))]
        if horizontal:
            ax.barh(positions, values, height=width, label=name)
        else:
            ax.bar(positions, values, width=width, label=name)
    ticks = range(len(labels))
    if horizontal:
        ax.set_yticks(list(ticks), labels)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
    else:
        ax.set_xticks(list(ticks), labels)
        ax.set_ylabel(xlabel)
    if len(series) > 1:
        ax.legend()
    ax.set_title(title)
    return _uri(fig)


def rows_by_reason(counts: Mapping[str, int]) -> str:
    """Ratings kept, and rejected per reason."""
    reasons = {k: v for k, v in counts.items() if k not in ("total", "kept", "rejected")}
    labels = ["kept", *reasons]
    return _bars("ratings kept and rejected by reason", labels,
                 {"rows": [counts.get("kept", 0), *reasons.values()]}, horizontal=True,
                 xlabel="rows")


def rating_histogram(histograms: Mapping[str, Mapping[str, int]]) -> str:
    """Ratings per value, one bar per split."""
    values = sorted({v for h in histograms.values() for v in h}, key=float)
    return _bars("ratings per value", values,
                 {split: [h.get(v, 0) for v in values] for split, h in histograms.items()},
                 xlabel="ratings")


def timeline(components: Sequence[Mapping]) -> str:
    """Each component as a bar from its start to its end; grey when cached, red when failed."""
    fig, ax = plt.subplots(figsize=(WIDTH, max(HEIGHT, 0.3 * len(components))))
    for row, c in enumerate(components):
        colour = FAILED if c["state"] == "FAILED" else CACHED if c["cached"] else RUN
        ax.barh(row, max(c["seconds"], 0.5), left=c["start_s"], color=colour)
        ax.text(c["start_s"] + max(c["seconds"], 0.5), row, f" {c['seconds']:.1f}s",
                va="center", fontsize=7)
    ax.set_yticks(range(len(components)), [c["id"] for c in components], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first component started (grey: cached, red: failed)")
    ax.set_title("pipeline timeline")
    return _uri(fig)


def curves(title: str, series: Mapping[str, Sequence[float]], ylabel: str) -> str:
    """Lines per epoch (epoch 1 first)."""
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _uri(fig)


def loss_weights(weights: Mapping[str, float]) -> str:
    return _bars("loss weight per task", list(weights), {"weight": list(weights.values())},
                 xlabel="weight")


def model_vs_popularity(title: str, metrics: Mapping[str, float], names: Sequence[str]) -> str:
    """The model's served metrics next to popularity's on the same users."""
    return _bars(title, list(names), {
        "model": [metrics.get(n, 0.0) for n in names],
        "popularity": [metrics.get(POPULARITY_PREFIX + n, 0.0) for n in names],
    })


def mlm_loss(mlm: Mapping[str, float]) -> str:
    """Masked-LM loss before and after pretraining (the per-step curve is not recorded)."""
    return _bars("masked-LM loss (start and end of pretraining)", ["before", "after"],
                 {"loss": [mlm.get("loss_before", 0.0), mlm.get("loss_after", 0.0)]},
                 xlabel="loss")


def genre_interest(user: str, interest: Mapping[str, float], top: int = 10) -> str:
    top_items = dict(list(interest.items())[:top])
    return _bars(f"user {user}: genre interest (top {len(top_items)})", list(top_items),
                 {"P(engages and likes)": list(top_items.values())}, horizontal=True)
