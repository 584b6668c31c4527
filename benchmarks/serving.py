"""Serving latency/throughput over loopback gRPC, and catalogue scaling.

    python benchmarks/serving.py                      # ML-100K u1 model, trained now
    python benchmarks/serving.py --model-dir <pushed version dir>

The model measured is a real one: by default ML-100K u1 trained and exported
with the production path (benchmarks/real_model.py, cached under --work-dir),
or the pushed version given. The synthetic 32-d stand-in (no re-rank heads) is
measured in the same run as a transport-only reference (--no-reference skips it).

What it measures, in one run:

1. `recommend` (k=10) and `score` (100 items) through the embedded server
   (`mtrec serve`, started as a subprocess so client and server do not share a
   GIL) at concurrency 1, 8 and 32: p50/p95/p99 latency, QPS, errors;
2. the same signatures called in-process (the model alone), two ways: the
   public `ConcreteFunction` call, and the call path the server itself uses
   (`Signature.run` on ready tensors, cheaper); the gRPC + server overhead is
   gRPC p50 at c=1 minus each;
3. the gRPC transport floor (skip with --skip-floor): the same c=1 client loop
   and the same requests against an echo server in its own process
   (benchmarks/grpc_floor.py: built like `mtrec serve`, but Predict returns an
   empty response without reading the request), i.e. what the Python gRPC
   stacks alone cost per call; the overhead above it is c=1 p50 minus floor
   p50 minus the in-process server call path p50;
4. `recommend` over catalogues of 100K and 1M items through the real towers and
   re-rank heads (benchmarks/real_catalogue.py; --synthetic-catalog: the
   synthetic model instead), for unknown users (computed: a known user's answer
   is cached, models/answer_cache.py): c=1 latency and the server process's RSS;
5. the server's request path stage by stage, in-process (benchmarks/server_path.py):
   parse, decode, tensors, model (CPU on the RPC thread vs TF's threads, and
   after an idle gap), numpy, encode, serialize.

Client and server share the machine's cores, so every level also records the
CPU time per request of the server process and of this (client) process, the
CPU that other processes on the host used meanwhile (from /proc/stat), and the
load average: on a shared box those say how much of a result is the code.

Request counts and time per level are bounded; everything stays on 127.0.0.1.
Results go to benchmarks/results/serving.{json,md}; targets are reported, not
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import mtrec  # noqa: F401  (Keras 2 before TensorFlow)

# isort: split
import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from mtrec.serving.affinity import parse_cpus, pin_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grpc_floor import EchoServer
from real_catalogue import real_catalogue_models
from real_model import real_model
from server_path import profile as server_path_profile
from serving_load import (
    COMPUTED,
    ServerProcess,
    combine,
    in_process_latency,
    make_requests,
    run_load,
)
from serving_report import kept_analysis, markdown, targets
from synthetic_model import build_synthetic_model

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# serving.md from this line on is written by hand and kept across re-runs.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a pushed model version; default: ML-100K u1 "
                        "trained now with the production export (benchmarks/real_model.py)")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(),
                                                           "mtrec-serving-bench"),
                        help="where the default model's data and training are cached")
    parser.add_argument("--epochs", type=int, default=2, help="default model's epochs")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the synthetic transport-only reference")
    parser.add_argument("--synthetic-items", type=int, default=1682)
    parser.add_argument("--dim", type=int, default=32, help="synthetic embedding size")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=1000, help="per concurrency level")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per concurrency level")
    parser.add_argument("--in-process-calls", type=int, default=500)
    parser.add_argument("--catalog-sizes", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="catalogue scaling: the real towers and heads over this many "
                        "items (benchmarks/real_catalogue.py)")
    parser.add_argument("--synthetic-catalog", action="store_true",
                        help="scale the synthetic model's catalogue instead of the real one")
    parser.add_argument("--server-path-calls", type=int, default=400,
                        help="calls per signature of the server's stage-by-stage profile")
    parser.add_argument("--scale-requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8, help="server gRPC worker threads")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per gRPC level (modes interleaved): latencies pooled, QPS the median",
    )
    parser.add_argument(
        "--batching",
        nargs="+",
        choices=["off", "on"],
        default=["off", "on"],
        help="server batching modes to measure",
    )
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument(
        "--tf-inter-op-threads",
        type=int,
        default=1,
        help="for the server and the in-process reference alike (server default: 1)",
    )
    parser.add_argument(
        "--server-args",
        default="",
        help="extra `mtrec serve` flags, e.g. '--tf-inter-op-threads 1'",
    )
    parser.add_argument(
        "--server-cpus",
        help="CPU ids every server (and the gRPC floor's echo server) is pinned to "
        "(`mtrec serve --cpus`), e.g. 0; default: not pinned",
    )
    parser.add_argument(
        "--client-cpus",
        help="CPU ids this benchmark process (the client and the in-process reference) "
        "is pinned to, e.g. 1; default: not pinned",
    )
    parser.add_argument("--name", default="serving", help="results file stem under --out")
    parser.add_argument(
        "--skip-floor",
        action="store_true",
        help="do not measure the gRPC transport floor (echo server, same c=1 requests)",
    )
    parser.add_argument("--users", default=",".join(str(i) for i in range(1, 33)))
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    if args.client_cpus:  # before TF or gRPC start a thread
        pin_process(parse_cpus(args.client_cpus))
    users = args.users.split(",")
    workdir = tempfile.mkdtemp(prefix="mtrec-bench-")
    host = {"loadavg_start": [round(v, 2) for v in os.getloadavg()], "nice": os.nice(0)}
    if args.tf_inter_op_threads:
        # Before anything starts TF's runtime (preparing the default model does).
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_inter_op_threads)
    model_dir = args.model_dir or real_model(args.work_dir, args.epochs)
    label = args.model_dir or (f"ML-100K u1, {args.epochs} epochs (weights cached under "
                               "--work-dir), production export now")
    reference = f"synthetic, {args.synthetic_items} items, dim {args.dim} (transport reference)"
    try:
        result = _run(args, users, workdir, model_dir, label)
        if not args.no_reference:
            only_model = argparse.Namespace(**{**vars(args), "catalog_sizes": []})
            result["synthetic_reference"] = _run(
                only_model, users, workdir,
                _synthetic(workdir, args.synthetic_items, args.dim), reference)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    host["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    command = " ".join(
        ["python", "benchmarks/serving.py", *(shlex.quote(a) for a in (argv or sys.argv[1:]))]
    )
    for part in (result, result.get("synthetic_reference", {})):
        part.update(host=host, command=command)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.name}.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    table = markdown(result)
    if "synthetic_reference" in result:
        table += "\n## The synthetic reference, same run\n\n" + markdown(
            result["synthetic_reference"]).split("\n", 2)[2]
    md_path = os.path.join(args.out, f"{args.name}.md")
    table += kept_analysis(md_path)
    with open(md_path, "w") as fh:
        fh.write(table)
    print(table)
    return 0


def _floor_run(
    floor: EchoServer,
    sig: str,
    rep: int,
    requests: dict[str, list[predict_pb2.PredictRequest]],
    total: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One c=1 run against the echo server: same client loop, same requests."""
    print(f"gRPC floor {sig} c=1 run {rep + 1} ...", flush=True)
    return run_load(
        floor.target, requests[sig], 1, total, args.max_seconds, server_pid=floor.proc.pid
    )


def _synthetic(workdir: str, items: int, dim: int) -> str:
    path = os.path.join(workdir, f"synthetic-{items}")
    if not os.path.exists(path):
        build_synthetic_model(path, num_items=items, num_users=1000, dim=dim)
    return path


def _run(
    args: argparse.Namespace, users: list[str], workdir: str, model_dir: str, model_label: str
) -> dict[str, Any]:
    if args.tf_inter_op_threads:
        # Same TF threading as the server, so the in-process reference is comparable.
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_inter_op_threads)
    server_args = ["--tf-inter-op-threads", str(args.tf_inter_op_threads)]
    server_args += shlex.split(args.server_args)
    if args.server_cpus:
        server_args += ["--cpus", args.server_cpus]
    result: dict[str, Any] = {
        "model": model_label,
        "config": {
            "server_threads": args.threads,
            "server_batching": {
                mode: (
                    "off"
                    if mode == "off"
                    else "on: opportunistic (a request waits only while a call for the same "
                    "signature and non-batch inputs runs; no timeout), at most "
                    f"{args.max_batch_size} rows per call, so at most {args.threads} "
                    "requests (one per RPC thread) can merge"
                )
                for mode in args.batching
            },
            "tf_threads": f"inter-op {args.tf_inter_op_threads or 'TF default'}, intra-op TF "
            "default (server and in-process reference)",
            "extra_server_args": args.server_args,
            "cpus": {"server": args.server_cpus, "client": args.client_cpus},
            "client": "one Python process, one channel; blocking calls at c=1, "
            "callback-driven futures (no thread per slot) above; the batching modes' "
            "servers run side by side and take turns at each level",
            "grpc_floor": None
            if args.skip_floor
            else "echo server in its own process (benchmarks/grpc_floor.py), built like "
            f"`mtrec serve` (sync gRPC server, {args.threads} worker threads, same options "
            "and method registration); Predict returns an empty PredictResponse without "
            "reading the request; same c=1 client loop and requests as the gRPC c=1 rows, "
            "taking turns with them",
            "requests_per_level": args.requests,
            "repeats_per_level": args.repeats,
            "max_seconds_per_level": args.max_seconds,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared), Python {platform.python_version()}, TF {tf.__version__}, "
            f"grpcio {grpc.__version__}",
        },
        "signatures": {},
    }
    print(f"in-process latency of {model_label} ...", flush=True)
    requests = make_requests(model_dir, users)
    in_proc = in_process_latency(model_dir, args.in_process_calls, users, requests)
    for sig in requests:
        result["signatures"][sig] = {"in_process": in_proc[sig], "grpc": []}
    print("server path, stage by stage ...", flush=True)
    result["server_path"] = {sig: server_path_profile(model_dir, reqs, args.server_path_calls)
                             for sig, reqs in requests.items()}
    # The numpy path (batching on, and before serving/wire.py), same run.
    result["server_path_numpy"] = {"recommend": server_path_profile(
        model_dir, requests["recommend"], args.server_path_calls, serialized=False)}
    # One server per batching mode, all up at once, and the modes take turns at
    # every level: on a shared machine both then see the same background load.
    # The transport floor (an echo server) takes its turn with them at c=1.
    servers: dict[str, ServerProcess] = {}
    floor: EchoServer | None = None
    c1_total = max(args.requests // 2, 100)
    try:
        for mode in args.batching:
            extra = ["--enable-batching", "--max-batch-size", str(args.max_batch_size)]
            extra = (extra if mode == "on" else []) + server_args
            servers[mode] = ServerProcess(model_dir, args.threads, workdir, extra)
        if not args.skip_floor:
            floor = EchoServer(args.threads, os.path.join(workdir, "floor-server.log"),
                               cpus=args.server_cpus)
        for sig in requests:
            floor_runs: list[dict[str, Any]] = []
            # The computed-recommend reference: c=1, batching off only.
            reference = sig == COMPUTED
            levels = [1] if reference else args.concurrency
            modes = {m: srv for m, srv in servers.items() if not reference or m == "off"}
            for level, c in enumerate(levels):
                runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
                for rep in range(args.repeats):
                    # The mode that goes first in a turn measured ~0.25 ms slower at c=1
                    # (two identical servers: 2.78 vs 2.53 ms): rotate who goes first.
                    turn = list(modes.items())
                    first = (level + rep) % len(turn)
                    for mode, server in turn[first:] + turn[:first]:
                        print(f"gRPC {sig} c={c} batching={mode} run {rep + 1} ...", flush=True)
                        total = args.requests if c > 1 else c1_total
                        runs[mode].append(
                            run_load(
                                server.target,
                                requests[sig],
                                c,
                                total,
                                args.max_seconds,
                                server_pid=server.proc.pid,
                            )
                        )
                    if floor is not None and c == 1:
                        floor_runs.append(_floor_run(floor, sig, rep, requests, c1_total, args))
                for mode, mode_runs in runs.items():
                    row = combine(mode_runs)
                    result["signatures"][sig]["grpc"].append({"batching": mode, **row})
            if floor is not None and not floor_runs:  # no c=1 level: measure it on its own
                for rep in range(args.repeats):
                    floor_runs.append(_floor_run(floor, sig, rep, requests, c1_total, args))
            if floor_runs:
                result["signatures"][sig]["grpc_floor"] = combine(floor_runs)
        for mode, server in servers.items():
            result[f"server_rss_mb_batching_{mode}"] = server.rss_mb()
    finally:
        for server in servers.values():
            server.stop()
        if floor is not None:
            floor.stop()
    if "on" in servers:
        result["batching_stats"] = servers["on"].batching_stats()
    for data in result["signatures"].values():
        c1 = [r for r in data["grpc"] if r["concurrency"] == 1]
        base = next((r for r in c1 if r["batching"] == "off"), c1[0] if c1 else None)
        data["grpc_overhead_p50_ms"] = {
            f"vs_{way}": round(base["p50_ms"] - data["in_process"][way]["p50_ms"], 3)
            if base
            else None
            for way in ("public", "server_path", "handler")
        }
        over = data["grpc_overhead_p50_ms"]
        if "grpc_floor" in data:
            # c=1 p50 = floor + server call path + the rest: what the server's own
            # code (decoding, encoding, dispatch) and the real response add.
            over["floor"] = data["grpc_floor"]["p50_ms"]
            over["above_floor"] = (
                round(over["vs_server_path"] - over["floor"], 3)
                if over["vs_server_path"] is not None
                else None
            )

    scaling = []
    if args.catalog_sizes and args.synthetic_catalog:
        paths = {n: _synthetic(workdir, n, args.dim) for n in args.catalog_sizes}
    elif args.catalog_sizes:
        print(f"real towers over {args.catalog_sizes} items ...", flush=True)
        paths = real_catalogue_models(args.work_dir, args.catalog_sizes)
    for items in args.catalog_sizes:
        print(f"catalogue {items:,} items ...", flush=True)
        path = paths[items]
        srv = ServerProcess(path, args.threads, workdir, server_args)
        try:
            # Unknown users: computed (a known user's answer is cached at any size).
            reqs = make_requests(path, users[:8])[COMPUTED]
            row = run_load(srv.target, reqs, 1, args.scale_requests, args.max_seconds,
                           timeout=30, server_pid=srv.proc.pid)
            row.pop("latencies_s")
            scaling.append({
                "items": items,
                "model": "synthetic" if args.synthetic_catalog else "real towers",
                "dim": args.dim if args.synthetic_catalog else None,
                "load_seconds": srv.load_seconds,
                "rss_mb": srv.rss_mb(),
                **row,
            })
        finally:
            srv.stop()
        if args.synthetic_catalog and items != args.synthetic_items:
            shutil.rmtree(path, ignore_errors=True)
    result["catalogue_scaling"] = scaling
    result["targets"] = targets(result)
    return result



if __name__ == "__main__":
    raise SystemExit(main())
