"""Markdown for benchmarks/beam_compare.py's result: one row per component output."""

from __future__ import annotations

from typing import Any

from mtrec.contracts import pipeline as P


def _flat(r: dict[str, Any]) -> str:
    """A compare_flat result in words."""
    if r["equal"]:
        return f"**equal** ({r['fields']} fields)"
    extra = []
    if r["non_numeric_differing"] or r["only_in_a"] or r["only_in_b"]:
        extra.append(f"non-numeric/missing fields differ: "
                     f"{(r['non_numeric_differing'] + r['only_in_a'] + r['only_in_b'])[:3]}")
    worst = r["worst"][0] if r["worst"] else None
    if worst:
        extra.append(f"worst `{worst['field']}` {worst['a']:.6g} vs {worst['b']:.6g}")
    verdict = "**within tolerance**" if r["within_tolerance"] else "differs"
    return (f"{verdict}: {r['numbers_differing']} of {r['fields']} numbers differ, "
            f"max abs diff {r['max_abs_diff']:.3g} (rel {r['max_rel_diff']:.2g}); "
            + "; ".join(extra))


def _examples(r: dict[str, Any]) -> str:
    files = f"; files {r['files_a']} vs {r['files_b']}" if "files_a" in r else ""
    if r["equal_as_multisets"]:
        return f"**equal** as multisets ({r['records_a']:,} records{files})"
    return (f"not equal as multisets ({r['records_a']:,} vs {r['records_b']:,} records, "
            f"{r['multiset_difference']:,} unmatched); after a canonical sort: "
            f"{r['rows_differing_non_float']:,} rows differ in non-float features, "
            f"max float diff {r['max_abs_diff']:.3g}{files}")


def _outputs(r: dict[str, Any]) -> str:
    if r["equal"]:
        return f"**equal** ({r['names']} output arrays)"
    different = [k for k, v in r["per_output"].items() if v not in ("equal", 0.0)]
    return (f"max abs diff {r['max_abs_diff']:.3g} over {r['names']} output arrays; "
            f"differing: {different[:6]}")


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(component, what was compared, result) rows."""
    out = []
    for node in (P.EXAMPLE_GEN, P.CATALOG_GEN):
        for split, r in result[node].items():
            out.append((node, f"{split}: records (order-independent)", _examples(r)))
    for split, r in result[P.STATISTICS_GEN].items():
        out.append((P.STATISTICS_GEN, f"{split}: every statistics field "
                    f"(rel tol {r['rel_tol']:g})", _flat(r)))
    for split, r in result[P.EXAMPLE_VALIDATOR].items():
        out.append((P.EXAMPLE_VALIDATOR, f"{split}: anomalies", _flat(r)))
    t = result[P.TRANSFORM]
    out.append((P.TRANSFORM, f"graph outputs on the same {t['raw_batch']} raw records",
                _outputs(t["graph_outputs"])))
    assets = t["assets_equal"]
    differing = [k for k, same in assets.items() if not same]
    out.append((P.TRANSFORM, f"{len(assets)} vocabulary/asset files",
                "**equal** byte for byte" if not differing else f"differ: {differing}"))
    for split, r in t["transformed_examples"].items():
        out.append((P.TRANSFORM, f"transformed {split} examples (multiset)", _examples(r)))
    ev = result[P.EVALUATOR]
    out.append((P.EVALUATOR, f"TFMA metrics (tolerance {ev['rel_tol']:g}); blessed "
                f"{ev['blessed'][0]} vs {ev['blessed'][1]}", _flat(ev)))
    for node, what in ((P.TRAINER, "training_metrics.json numbers"),
                       (P.RETRIEVAL_EVALUATOR, "retrieval metrics")):
        out.append((node, what, _flat(result[node])))
    pusher = result[P.PUSHER]
    out.append((P.PUSHER, "pushed", f"{pusher['pushed'][0]} vs {pusher['pushed'][1]}"))
    files = pusher.get("files_equal")
    if files is not None:
        differing = [k for k, same in files.items() if not same]
        out.append((P.PUSHER, f"pushed SavedModel: {len(files)} variables/assets files",
                    "**equal** byte for byte" if not differing else f"differ: {differing}"))
    return out


def render(result: dict[str, Any]) -> str:
    a, b = result["labels"]
    lines = [
        f"# Beam runners compared: {a} vs {b}", "",
        f"Homes: `{result['homes'][0]}` ({a}) and `{result['homes'][1]}` ({b}); written by "
        "`benchmarks/beam_compare.py`.", "",
        "| component | compared | result |", "|---|---|---|",
    ]
    lines += [f"| {c} | {w} | {r} |" for c, w, r in rows(result)]
    states = {n: s for n, s in result["states"].items() if s[0] != s[1]}
    lines += ["", "Component states: " + ("the same in both runs" if not states
                                          else f"differ: {states}"), ""]
    if result.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    return "\n".join(lines)
