"""Wall time of `mtrec run` on the embedded sample, Beam in-process against multi-processing.

Issue 20 §4: the pipeline part of `make run` took about 8 minutes on the 40K
sample. Each mode runs the real CLI (`mtrec run --source sample`, what `make
run` does, plus `--beam-mode`) from scratch in a fresh home, one after the
other in this one invocation, so both see the same machine. Per run it records
the wall time, the console's line count (issue 20 §1: at most 60, no
traceback), each component's wall time from MLMD (execution created -> last
updated), and the trained quality from summary.json, so a faster mode can be
checked to train the same model.

Components that run no Beam (TextEncoder, Trainer, ...) do the same work in
both modes; their difference is the machine's noise. The Beam components'
difference is the fixed cost of starting worker processes.

    .venv/bin/python benchmarks/pipeline_wall.py [--reference-home outputs/sample]

`--reference-home`: an earlier run's home whose quality is listed too (the
run-to-run spread of one mode).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from mtrec.console import log_path
from mtrec.pipeline import configs
from mtrec.pipeline.mlmd_store import open_store
from mtrec.summary import SUMMARY_FILE

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Components that start a Beam pipeline (the local runner's mode applies to them).
BEAM_COMPONENTS = ("ImportExampleGen", "CatalogExampleGen", "StatisticsGen", "Transform",
                   "Evaluator")
QUALITY_KEYS = ("rating RMSE", "ranking AUC (like vs not)")
RETRIEVAL_KEYS = ("hit_rate@10", "hit_rate@100", "ndcg@10")


def component_seconds(metadata_path: str) -> dict[str, float]:
    """Node id -> wall seconds of its latest execution (MLMD timestamps, ms)."""
    store = open_store(metadata_path)
    out = {}
    for execution in sorted(store.get_executions(), key=lambda e: e.create_time_since_epoch):
        nodes = [c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                 if c.type == "node"]
        if nodes:
            seconds = execution.last_update_time_since_epoch - execution.create_time_since_epoch
            out[nodes[0]] = round(seconds / 1000, 1)
    return out


def quality(home: str) -> dict[str, float]:
    with open(os.path.join(home, SUMMARY_FILE)) as f:
        summary = json.load(f)
    out = {k: round(v, 4) for k, v in summary.get("tfma", {}).items() if k in QUALITY_KEYS}
    metrics = summary.get("retrieval", {}).get("metrics", {})
    out.update({k: round(metrics[k], 4) for k in RETRIEVAL_KEYS if k in metrics})
    out["pushed"] = bool(summary.get("pushed_to"))
    return out


def run_mode(mode: str, home: str) -> dict:
    command = [sys.executable, "-m", "mtrec.cli", "run", "--source", "sample", "--home", home,
               "--beam-mode", mode]
    os.makedirs(home, exist_ok=True)
    console_path = os.path.join(home, "console.txt")
    start = time.monotonic()
    with open(console_path, "w") as f:  # live, to watch a long run
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    with open(console_path) as f:
        console = f.read()
    seconds = component_seconds(os.path.join(home, "metadata.sqlite"))
    return {
        "mode": mode,
        "beam_args": " ".join(
            configs.IN_PROCESS_BEAM_ARGS if mode == "in_process" else configs.LOCAL_BEAM_ARGS),
        "exit_code": done.returncode,
        "wall_seconds": round(wall, 1),
        "pipeline_seconds": round(sum(seconds.values()), 1),
        "beam_component_seconds": round(sum(seconds.get(c, 0.0) for c in BEAM_COMPONENTS), 1),
        "console_lines": console.count("\n"),
        "console_tracebacks": console.count("Traceback"),
        "log_lines": _count_lines(log_path(home)),
        "components": seconds,
        "quality": quality(home) if done.returncode == 0 else {},
    }


def _count_lines(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, errors="replace") as f:
        return sum(1 for _ in f)


def markdown(result: dict) -> str:
    runs = result["runs"]
    reference = result.get("reference")
    ref_head = " | earlier multi_processing run |" if reference else " |"
    lines = [
        "# Pipeline wall time on the embedded 40K sample (`mtrec run --source sample`)",
        "",
        f"{result['machine']}; {result['date']}. One run per mode, from scratch, one after the",
        "other in one invocation (`benchmarks/pipeline_wall.py`). Component seconds from MLMD.",
        "TextEncoder and Trainer run no Beam: their difference between columns is the",
        "machine's load, not the mode.",
        "",
        "| | " + " | ".join(r["mode"] for r in runs) + ref_head,
        "|---|" + "---|" * (len(runs) + bool(reference)),
    ]
    for key in ("wall_seconds", "pipeline_seconds", "beam_component_seconds", "console_lines",
                "console_tracebacks", "exit_code"):
        row = [str(r[key]) for r in runs]
        if reference:
            row.append(str(reference.get(key, "")))
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    for node in runs[0]["components"]:
        beam = " (Beam)" if node in BEAM_COMPONENTS else ""
        row = [str(r["components"].get(node, "")) for r in runs]
        if reference:
            row.append(str(reference["components"].get(node, "")))
        lines.append(f"| {node}{beam} s | " + " | ".join(row) + " |")
    keys = sorted({k for r in runs for k in r["quality"]}
                  | set((reference or {}).get("quality", {})))
    lines += ["", "Trained quality (eval split):", "",
              "| | " + " | ".join(r["mode"] for r in runs) + ref_head,
              "|---|" + "---|" * (len(runs) + bool(reference))]
    for key in keys:
        row = [str(r["quality"].get(key, "")) for r in runs]
        if reference:
            row.append(str(reference["quality"].get(key, "")))
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    if result.get("notes"):
        lines += ["", *[f"- {note}" for note in result["notes"]]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", nargs="+", default=["multi_processing", "in_process"],
                   choices=[m for m in configs.BEAM_MODES if m != "auto"])
    p.add_argument("--reference-home", help="an earlier run's home, for the quality spread")
    p.add_argument("--out", default=os.path.join(RESULTS, "pipeline_wall"))
    p.add_argument("--machine", default=f"{os.cpu_count()} CPU cores, shared")
    p.add_argument("--work-dir", help="where the runs' homes go (default: a temporary folder)")
    p.add_argument("--render", metavar="JSON", help="only rewrite the markdown of a result")
    args = p.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            result = json.load(f)
        with open(args.render[: -len(".json")] + ".md", "w") as f:
            f.write(markdown(result))
        return 0
    runs = []
    with tempfile.TemporaryDirectory(prefix="pipeline_wall-") as scratch:
        tmp = args.work_dir or scratch
        for mode in args.modes:
            print(f"running mode {mode} ...", flush=True)
            runs.append(run_mode(mode, os.path.join(tmp, mode)))
            print(json.dumps(runs[-1]), flush=True)
    result = {"machine": args.machine, "date": time.strftime("%Y-%m-%d"), "runs": runs}
    if args.reference_home:
        components = component_seconds(os.path.join(args.reference_home, "metadata.sqlite"))
        result["reference"] = {
            "home": args.reference_home, "quality": quality(args.reference_home),
            "components": components,
            "pipeline_seconds": round(sum(components.values()), 1),
            "beam_component_seconds": round(
                sum(components.get(c, 0.0) for c in BEAM_COMPONENTS), 1),
        }
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
