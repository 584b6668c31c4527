"""benchmarks/serving.py's report: the markdown table and the targets check."""

from __future__ import annotations

from typing import Any

from server_path import markdown as server_path_markdown

TARGETS = {
    "c1_p50_ms": 2.0,
    "c1_p99_ms": 10.0,
    "grpc_overhead_above_floor_p50_ms": 0.3,
    "c32_qps": 1500.0,
    "1m_items_p50_ms": 50.0,
}


def _na(value: Any) -> Any:
    return "-" if value is None else value


def _placement(cpus: dict[str, str | None]) -> str:
    """Where the processes ran: pinned (serving.py --server-cpus / --client-cpus) or not."""
    if not cpus.get("server") and not cpus.get("client"):
        return "client and servers share the machine's cores (not pinned)."
    server = f"CPUs {cpus['server']}" if cpus.get("server") else "any CPU"
    client = f"CPUs {cpus['client']}" if cpus.get("client") else "any CPU"
    return (f"every server (and the floor's echo server) pinned to {server} "
            f"(`mtrec serve --cpus`), the client and in-process reference on {client}.")


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    host = result["host"]
    lines = [
        "# Serving benchmark",
        "",
        f"Model: {result['model']}. Server: embedded `mtrec serve` in its own process, "
        f"{cfg['server_threads']} gRPC worker threads (sync gRPC server), TF threads: "
        f"{cfg['tf_threads']}; batching modes: "
        + "; ".join(f"`{k}` = {v}" for k, v in cfg["server_batching"].items())
        + f". Client: {cfg['client']}. All on loopback; {_placement(cfg.get('cpus') or {})}"
        f" Machine: {cfg['machine']}.",
        "",
        f"Host load while measuring: load average {host['loadavg_start']} at the start, "
        f"{host['loadavg_end']} at the end (1/5/15 min); benchmark process niceness "
        f"{host['nice']}. `other cores` is the CPU that processes other than this "
        "benchmark and its server used during each level (from /proc/stat): on this "
        "shared machine that is CPU the measurement did not get. `srv`/`cli` are CPU "
        "microseconds per request of the server process and of the client."
        + (
            f" Each gRPC level ran {cfg['repeats_per_level']} times (the modes taking turns): "
            "QPS is the median run (range in brackets), latency percentiles pool all runs."
            if cfg.get("repeats_per_level", 1) > 1
            else ""
        )
        + (
            f" `gRPC floor`: {cfg['grpc_floor']}, so its p50 is what the Python gRPC client "
            "and server stacks alone cost per call. Overhead above the floor = c=1 p50 "
            "(batching off) - floor p50 - in-process server call path p50: what the "
            "server's own request handling (validation, decoding, encoding, dispatch) and "
            "the real, larger response add on top of bare transport and the model call "
            "(a difference of medians, so an estimate)."
            if cfg.get("grpc_floor")
            else ""
        ),
        "",
        "| signature | mode | batching | c | requests | errors | QPS | p50 ms | p95 ms | p99 ms "
        "| srv CPU us/req | cli CPU us/req | other cores | load 1m |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for sig, data in result["signatures"].items():
        for way, label in (
            ("public", "in-process, public call"),
            ("server_path", "in-process, server's call path"),
            ("handler", "in-process, server's whole handler"),
        ):
            ip = data["in_process"][way]
            lines.append(
                f"| {sig} | {label} | - | 1 | {ip['calls']} | 0 | - | {ip['p50_ms']} | "
                f"{ip['p95_ms']} | {ip['p99_ms']} | | | | |"
            )
        fl = data.get("grpc_floor")
        if fl:
            lines.append(
                f"| {sig} | gRPC floor: empty handler, same request | - | 1 | {fl['requests']} | "
                f"{sum(fl['errors'].values())} | {fl['qps']:.1f} | {fl['p50_ms']} | "
                f"{fl['p95_ms']} | {fl['p99_ms']} | {fl['server_cpu_us_per_req']} | "
                f"{fl['client_cpu_us_per_req']} | {_na(fl['other_procs_cores'])} | "
                f"{fl['loadavg_1m']} |"
            )
        for row in sorted(data["grpc"], key=lambda r: (r["batching"], r["concurrency"])):
            errs = sum(row["errors"].values())
            qps = f"{row['qps']:.1f}"
            if len(row.get("qps_runs", [])) > 1:
                qps += f" ({min(row['qps_runs']):.0f}-{max(row['qps_runs']):.0f})"
            lines.append(
                f"| {sig} | gRPC | {row['batching']} | {row['concurrency']} | {row['requests']} | "
                f"{errs} | {qps} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                f"{row['server_cpu_us_per_req']} | {row['client_cpu_us_per_req']} | "
                f"{_na(row['other_procs_cores'])} | {row['loadavg_1m']} |"
            )
        over = data["grpc_overhead_p50_ms"]
        above = (
            f"; {over['above_floor']} above the gRPC floor ({over['floor']}) and the call path"
            if "above_floor" in over
            else ""
        )
        lines.append(
            f"| {sig} | gRPC overhead, c=1 p50 minus in-process p50 (batching off) | | | | | | "
            f"{over['vs_public']} vs public call, {over['vs_server_path']} vs server's call path, "
            f"{over['vs_handler']} vs whole handler (= transport){above} | | | | | | |"
        )
    stats = result.get("batching_stats") or {}
    if stats:
        lines += ["", "Batching, all levels of the `on` server together:", ""]
        for sig, st in stats.items():
            calls = max(st["model_calls"], 1)
            lines.append(
                f"- {sig}: {st['requests']} requests in {st['model_calls']} model calls "
                f"({st['requests'] / calls:.2f} requests per call)"
            )
    lines += [
        "",
        "Catalogue scaling (`recommend`, k=10, c=1, gRPC, batching off; `real towers`: "
        "benchmarks/real_catalogue.py):",
        "",
        "| items | model | load s | RSS MB | p50 ms | p95 ms | p99 ms | srv CPU us/req "
        "| load 1m |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["catalogue_scaling"]:
        model = row.get("model", "synthetic") + (f", dim {row['dim']}" if row.get("dim") else "")
        lines.append(
            f"| {row['items']:,} | {model} | {row['load_seconds']} | {row['rss_mb']} | "
            f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
            f"{row['server_cpu_us_per_req']} | {row['loadavg_1m']} |"
        )
    if result.get("server_path"):
        lines += ["", "The server's request path stage by stage (in-process, manual timers, "
                  "benchmarks/server_path.py; same run; batching off: the wire path, "
                  "serving/wire.py):", "", *server_path_markdown(result["server_path"])]
    if result.get("server_path_numpy"):
        lines += ["", "The same, on the numpy path (batching on; the only path before "
                  "serving/wire.py), same run:", "",
                  *server_path_markdown(result["server_path_numpy"])]
    lines += ["", "Targets (reported, not asserted):", ""]
    for key, check in result["targets"].items():
        if check["measured"] is None:  # e.g. the synthetic reference has no 1M-item row
            lines.append(f"- {key}: target {check['target']}, not measured in this section")
            continue
        lines.append(
            f"- {key}: target {check['target']}, measured {check['measured']} "
            f"-> {'met' if check['met'] else 'NOT met'}"
            + (f" ({check['note']})" if check.get("note") else "")
        )
    lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def targets(result: dict[str, Any]) -> dict[str, Any]:
    rec = result["signatures"]["recommend"]
    rows = rec["grpc"]
    c1: dict[str, Any] | None = next(
        (r for r in rows if r["concurrency"] == 1 and r["batching"] == "off"), None)
    c1 = c1 or next((r for r in rows if r["concurrency"] == 1), {})
    c32: dict[str, Any] = max((r for r in rows if r["concurrency"] == 32),
                              key=lambda r: r["qps"], default={})
    overhead = rec["grpc_overhead_p50_ms"]
    measured: dict[str, Any] = {
        "c1_p50_ms": c1.get("p50_ms"),
        "c1_p99_ms": c1.get("p99_ms"),
        "grpc_overhead_above_floor_p50_ms": overhead.get("above_floor"),
        "c32_qps": c32.get("qps"),
        "1m_items_p50_ms": next(
            (r["p50_ms"] for r in result["catalogue_scaling"]
             if r["items"] >= 1_000_000 and r.get("model") == "real towers"), None
        ),
    }
    out = {}
    for key, target in TARGETS.items():
        value = measured[key]
        higher_is_better = key.endswith("qps")
        met = value is not None and (value >= target if higher_is_better else value <= target)
        note = ""
        if key == "grpc_overhead_above_floor_p50_ms":
            note = (
                "recommend: c=1 p50 (batching off) minus the gRPC floor "
                f"({overhead.get('floor')}) minus the in-process server call path; against the "
                f"call path alone the overhead is {overhead['vs_server_path']}, against the "
                f"public signature call {overhead['vs_public']}, and {overhead['vs_handler']} "
                "is beyond the in-process handler"
            )
        if key == "c32_qps" and c32:
            met = met and not c32["errors"]
            note = (
                f"best mode: batching {c32['batching']}, errors {c32['errors'] or 0}, other "
                f"processes used {_na(c32.get('other_procs_cores'))} cores meanwhile"
            )
        # None: not measured in this section, neither met nor missed.
        verdict = None if value is None else bool(met)
        out[key] = {"target": target, "measured": value, "met": verdict, "note": note}
    return out


ANALYSIS = "<!-- analysis: written by hand, kept by benchmarks/serving.py -->"


def kept_analysis(md_path: str) -> str:
    """The hand-written analysis at the end of the previous serving.md (from ANALYSIS on),
    so a re-run refreshes the tables without deleting the written breakdown."""
    try:
        with open(md_path) as fh:
            previous = fh.read()
    except FileNotFoundError:
        return ""
    start = previous.find(ANALYSIS)
    return "\n" + previous[start:] if start >= 0 else ""
