"""Wall time and peak memory of synthetic data generation (mtrec.data.synthetic.generate).

Why: the generator once built dense [users, items] matrices, so it could not
produce the 5M-interaction set for benchmarks/scale.py. This measures it
alone, at the sizes scale.py uses (users and items grow with n), each size in
a fresh subprocess so that its peak RSS (the kernel's VmHWM) is its own.

    .venv/bin/python benchmarks/generation.py --sizes 100000 1000000 5000000
    # another version of data/synthetic.py, e.g. the committed one, for a before/after:
    git show HEAD:data/synthetic.py > /tmp/old_synthetic.py
    .venv/bin/python benchmarks/generation.py --source /tmp/old_synthetic.py --sizes 100000

Prints one JSON object per size: wall seconds, RSS before generating (imports),
peak RSS, and a SHA-256 of the ratings table, so two versions can be checked
for identical output. `--record LABEL` also stores them in
benchmarks/results/scale.json under "generation" -> LABEL (one entry per size).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import RATINGS_PER_ITEM, RATINGS_PER_USER, RESULTS


def sizes_for(n: int) -> tuple[int, int]:
    """(users, items) for n interactions, exactly as benchmarks/scale.py sizes them."""
    return max(50, n // RATINGS_PER_USER), max(50, n // RATINGS_PER_ITEM)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _load(source: str | None) -> ModuleType:
    """The installed generator, or the one in the file `source`."""
    if source is None:
        from mtrec.data import synthetic

        return synthetic
    spec = importlib.util.spec_from_file_location("synthetic_under_test", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def measure(n: int, source: str | None) -> dict[str, Any]:
    """Generate n interactions in this process and measure it."""
    synthetic = _load(source)
    n_users, n_items = sizes_for(n)
    rss_before, load = _status_mb("VmRSS"), os.getloadavg()[0]
    start = time.perf_counter()
    dataset = synthetic.generate(n_users, n_items, n, seed=0)
    wall = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    csv = dataset.ratings.to_csv(index=False, lineterminator="\n").encode()
    return {
        "interactions": n,
        "users": n_users,
        "items": n_items,
        "source": source or "mtrec.data.synthetic",
        "wall_s": round(wall, 2),
        "rss_before_mb": round(rss_before),
        "peak_rss_mb": round(peak),
        "ratings_sha256": hashlib.sha256(csv).hexdigest(),
        "load_avg_1m": round(load, 1),
        "cpus": os.cpu_count(),
    }


def run_child(n: int, source: str | None, timeout: float) -> dict[str, Any]:
    """measure() in a fresh interpreter; an error entry if it fails or times out."""
    cmd = [sys.executable, __file__, "--child", str(n)]
    if source:
        cmd += ["--source", source]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"interactions": n, "error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"interactions": n, "error": f"exit {proc.returncode}: {proc.stderr[-500:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def record(path: Path, label: str, entry: dict[str, Any]) -> None:
    """Store `entry` in scale.json["generation"][label], replacing the same size."""
    data = json.loads(path.read_text()) if path.exists() else {}
    runs = data.setdefault("generation", {}).setdefault(label, [])
    runs[:] = sorted(
        [r for r in runs if r["interactions"] != entry["interactions"]] + [entry],
        key=lambda r: r["interactions"],
    )
    path.write_text(json.dumps(data, indent=2))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    p.add_argument("--source", help="a synthetic.py to measure instead of the installed one")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per size")
    p.add_argument("--record", metavar="LABEL", help="store results in scale.json under it")
    p.add_argument("--results", default=str(RESULTS / "scale.json"))
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.source)))
        return
    for n in args.sizes:
        entry = run_child(n, args.source, args.timeout)
        print(json.dumps(entry), flush=True)
        if args.record:
            record(Path(args.results), args.record, entry)


if __name__ == "__main__":
    main()
