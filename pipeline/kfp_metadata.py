"""The artifacts of earlier local KFP runs, and the resolver queries TFX compiles.

On Vertex, the latest-blessed-model resolver becomes two `resolver` tasks
whose `outputArtifactQueries` filter the pipeline's artifacts in Vertex ML
Metadata (step_builder._build_latest_blessed_model_resolver in TFX 1.16):

    schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1
    schema_title="tfx.Model" AND state=LIVE AND
        name="{{$.inputs.artifacts['input'].metadata['current_model_id']}}"

and each returns the newest match, or nothing. `kfp_local` runs them against
an `ArtifactStore`: a JSON-lines file of every artifact its runs under one
pipeline root produced, in the order they were written. Only these term forms
(`AND`-joined) are understood; any other raises UnsupportedSpec.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

STORE_FILE = "kfp_local_artifacts.jsonl"
_PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")
_TERM = re.compile(
    r"(?P<field>schema_title|name|state|metadata\.(?P<key>\w+)\.(?P<kind>\w+))"
    r'\s*=\s*(?P<value>"[^"]*"|\S+)'
)


class UnsupportedSpec(ValueError):
    """The spec needs a KFP feature this local runner does not emulate."""


def schema_title(artifact: Mapping[str, Any]) -> str:
    """The type name of a RuntimeArtifact (JSON form): its schemaTitle or instanceSchema title."""
    kind = artifact["type"]
    return kind.get("schemaTitle") or yaml.safe_load(kind["instanceSchema"])["title"]


class ArtifactStore:
    """Every artifact recorded so far, oldest first (one file per pipeline root)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def artifacts(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def record(self, artifacts: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for artifact in artifacts:
                f.write(json.dumps(artifact) + "\n")

    def newest(self, query: str) -> list[dict[str, Any]]:
        """[the newest artifact matching `query`] or []."""
        terms = [_parse_term(term) for term in query.split(" AND ")]
        matches = [a for a in self.artifacts() if all(_holds(t, a) for t in terms)]
        return matches[-1:]


def resolve_query(query: str, inputs: Mapping[str, Any]) -> str | None:
    """The query with its input-metadata placeholders filled in; None when an input
    it reads has no artifact (the resolver then finds nothing)."""
    missing = False

    def fill(match: re.Match) -> str:
        nonlocal missing
        artifacts = inputs.get(match[1], {}).get("artifacts", [])
        if not artifacts or match[2] not in artifacts[0].get("metadata", {}):
            missing = True
            return ""
        return str(artifacts[0]["metadata"][match[2]])

    filled = _PLACEHOLDER.sub(fill, query)
    if "{{$" in filled:
        raise UnsupportedSpec(f"placeholder not supported in resolver query: {query!r}")
    return None if missing else filled


def _parse_term(term: str) -> dict[str, Any]:
    match = _TERM.fullmatch(term.strip())
    if match is None or (match["kind"] and match["kind"] not in ("number_value", "string_value")):
        raise UnsupportedSpec(f"resolver filter term not supported: {term!r}")
    value = match["value"]
    return {
        "field": "metadata" if match["key"] else match["field"],
        "key": match["key"],
        "value": value[1:-1] if value.startswith('"') else value,
        "number": match["kind"] == "number_value",
    }


def _holds(term: Mapping[str, Any], artifact: Mapping[str, Any]) -> bool:
    field, want = term["field"], term["value"]
    if field == "state":
        return want == "LIVE"  # every recorded artifact is live
    if field == "schema_title":
        return schema_title(artifact) == want
    if field == "name":
        return artifact.get("name") == want
    got = artifact.get("metadata", {}).get(term["key"])
    if term["number"]:
        return isinstance(got, int | float) and got == float(want)
    return got == want
