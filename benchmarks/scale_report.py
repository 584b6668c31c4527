"""Tables for benchmarks/scale.py: one per size, growth exponents, runners side by side.

Split out of scale.py (which measures) so that each stays readable; scale.py
imports these to write benchmarks/results/scale.{json,md}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

DATA_STAGES = ("generate", "write_examples")
NOTES_HEADING = "## Notes"  # a hand-written section from here on survives re-rendering
MIN_WALL_S = 1.0  # shorter stages are start-up cost; no exponent is fitted for them


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x."""
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else None


def _completed(result: dict[str, Any], stage: str) -> bool:
    return result["stages"].get(stage, {}).get("state") == "COMPLETE"


def growth_exponents(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per stage timed at >= 2 sizes, the exponent k of wall ~ n^k (log-log slopes).

    "fit" uses every size; "last_pair" only the two largest, which is nearer the
    asymptote when fixed start-up costs dominate the small sizes. Stages that
    stay under MIN_WALL_S are skipped: their time is start-up and noise.
    """
    ok = sorted((r for r in results if r.get("stages")), key=lambda r: r["interactions"])
    names = {name for r in ok for name in r["stages"]}
    exponents = {}
    for name in sorted(names):
        done = [r for r in ok if _completed(r, name) and r["stages"][name]["wall_s"] > 0]
        points = [
            (math.log(r["interactions"]), math.log(r["stages"][name]["wall_s"])) for r in done
        ]
        walls = [r["stages"][name]["wall_s"] for r in done]
        if len(points) < 2 or max(walls) < MIN_WALL_S:
            continue
        exponents[name] = {"fit": _slope(points), "last_pair": _slope(points[-2:])}
    return exponents


def render(results: list[dict[str, Any]], slopes: dict[str, dict]) -> str:
    """Markdown: one table per size, then exponents and the dominating component."""
    lines = ["# Pipeline scaling (local, LocalDagRunner + DirectRunner)", ""]
    for r in results:
        head = f"## {r['interactions']:,} interactions"
        if "users" in r:
            head += (
                f" ({r['users']:,} users, {r['items']:,} items, epochs={r['epochs']}, "
                f"workers={r['workers']})"
            )
        lines += [head, ""]
        if r.get("error"):
            lines += [f"**error:** {r['error']}", ""]
        if not r.get("stages"):
            continue
        lines += [
            "| stage | state | wall s | share | peak RSS MB | examples/s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        total = sum(s["wall_s"] for s in r["stages"].values())
        for name, s in r["stages"].items():
            eps = f"{s['examples_per_s']:,.0f}" if s.get("examples_per_s") else ""
            lines.append(
                f"| {name} | {s['state']} | {s['wall_s']:.1f} | "
                f"{s['wall_s'] / total:.0%} | {s['peak_rss_mb']:,.0f} | {eps} |"
            )
        pipeline = {k: v for k, v in r["stages"].items() if k not in DATA_STAGES}
        if pipeline:
            top = max(pipeline, key=lambda k: pipeline[k]["wall_s"])
            load = r.get("load_avg_1m", {})
            lines += [
                "",
                f"Pipeline wall {r['pipeline_wall_s']:.0f} s, total "
                f"{r['total_wall_s']:.0f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, "
                f"1-min load average {load.get('start', 0):.1f} -> {load.get('end', 0):.1f} "
                f"on {r.get('cpus')} CPUs; "
                f"dominating component: **{top}** "
                f"({pipeline[top]['wall_s'] / r['pipeline_wall_s']:.0%} of pipeline wall).",
            ]
        if r.get("trainer_phases_s"):
            phases = ", ".join(f"{k} {v:,.1f} s" for k, v in r["trainer_phases_s"].items())
            lines += ["", f"Trainer phases (its training_metrics.json): {phases}."]
        lines.append("")
    if slopes:
        sized = sorted((r for r in results if r.get("stages")), key=lambda r: r["interactions"])
        sizes = " / ".join(f"{r['interactions']:,}" for r in sized)
        lines += [
            "## Growth with size",
            "",
            f"Completed stages over {MIN_WALL_S:g} s at some size. Exponent k of wall ~ n^k "
            "(log-log): `fit` over all sizes, `last` over the two largest only (nearer the "
            "asymptote when fixed start-up costs dominate small sizes).",
            "",
            f"| stage | k fit | k last | wall s ({sizes}) | peak RSS MB ({sizes}) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, k in sorted(slopes.items(), key=lambda kv: -(kv[1]["last_pair"] or 0)):
            fit, last = (f"{v:.2f}" if v is not None else "" for v in (k["fit"], k["last_pair"]))
            walls, rss = (
                " / ".join(
                    f"{r['stages'][name][key]:,.0f}" if _completed(r, name) else "-" for r in sized
                )
                for key in ("wall_s", "peak_rss_mb")
            )
            lines.append(f"| {name} | {fit} | {last} | {walls} | {rss} |")
        lines.append("")
    return "\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    """Write the rendered tables, keeping a hand-written NOTES_HEADING section if present."""
    old = path.read_text() if path.exists() else ""
    notes = old[old.index(NOTES_HEADING) :] if NOTES_HEADING in old else ""
    path.write_text(text + ("\n" + notes if notes else ""))


def write_json(
    path: Path, results: list[dict[str, Any]], slopes: dict[str, dict],
    runners: list[dict[str, Any]] | None = None,
) -> None:
    """Write scale.json, keeping its other keys ("generation" from benchmarks/generation.py)."""
    old = json.loads(path.read_text()) if path.exists() else {}
    new = {**old, "results": results, "growth_exponents": slopes}
    if runners is not None:
        new["runners"] = runners
    path.write_text(json.dumps(new, indent=2))


RUNNERS_HEADING = "## Beam runners side by side: DirectRunner vs portable (external worker pool)"


def _mb(stage: dict[str, Any] | None, key: str, fmt: str) -> str:
    if not stage or stage.get("state") != "COMPLETE":
        return "-" if not stage else stage.get("state", "-")
    return format(stage[key], fmt)


def render_runners(runs: list[dict[str, Any]]) -> str:
    """Per size, each stage's wall time and peak RSS under each runner, and their ratio."""
    if not runs:
        return ""
    lines = [
        "", RUNNERS_HEADING, "",
        "`benchmarks/scale.py --runner direct portable`: each size once per runner, back to "
        "back in one invocation, so both see the same machine load. DirectRunner: "
        "multi-processing with `workers` processes. Portable: Beam's embedded job service "
        "and one external worker pool (`pipeline/beam_portable.py`) that starts one SDK "
        "worker per Beam job (the embedded job service runs no more); peak RSS includes "
        "the pool and its worker. "
        "**On this 2-core machine this measures the portable runner's overhead, not a "
        "speed-up**: both runners share the same two cores.", "",
    ]
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for r in runs:
        by_size.setdefault(r["interactions"], {})[r.get("runner", "direct")] = r
    for n, pair in sorted(by_size.items()):
        d, p = pair.get("direct", {}), pair.get("portable", {})
        any_run = d or p
        lines += [f"### {n:,} interactions ({any_run.get('users', 0):,} users, "
                  f"{any_run.get('items', 0):,} items, epochs={any_run.get('epochs')}, "
                  f"workers={any_run.get('workers')}, text encoder "
                  f"{'on' if any_run.get('text_encoder', True) else 'off'})", ""]
        for name, r in (("direct", d), ("portable", p)):
            if r.get("error"):
                lines += [f"**{name} error:** {r['error']}", ""]
        lines += ["| stage | direct wall s | portable wall s | portable / direct "
                  "| direct peak RSS MB | portable peak RSS MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        ds, ps = d.get("stages", {}), p.get("stages", {})
        for stage in list(ds) + [s for s in ps if s not in ds]:
            a, b = ds.get(stage), ps.get(stage)
            ratio = ""
            done = a and b and a["state"] == b["state"] == "COMPLETE"
            if done and a["wall_s"] >= MIN_WALL_S and b["wall_s"] > 0:
                ratio = f"{b['wall_s'] / a['wall_s']:.2f}"
            lines.append(f"| {stage} | {_mb(a, 'wall_s', '.1f')} | {_mb(b, 'wall_s', '.1f')} "
                         f"| {ratio} | {_mb(a, 'peak_rss_mb', ',.0f')} "
                         f"| {_mb(b, 'peak_rss_mb', ',.0f')} |")
        for name, r in (("direct", d), ("portable", p)):
            if r.get("stages"):
                load = r.get("load_avg_1m", {})
                lines.append(
                    f"\n{name}: pipeline wall {r['pipeline_wall_s']:.0f} s, peak RSS "
                    f"{r['peak_rss_mb']:,.0f} MB, 1-min load average "
                    f"{load.get('start', 0):.1f} -> {load.get('end', 0):.1f} on "
                    f"{r.get('cpus')} CPUs.")
        lines.append("")
    return "\n".join(lines) + "\n"
