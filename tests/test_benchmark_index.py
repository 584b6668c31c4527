"""benchmarks/README.md and benchmarks/results/README.md name every script and result.

An index that misses a file is worse than none: these fail when a script or a
result file is added without a line saying what it is.
"""

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _patterns(readme: Path) -> list[re.Pattern]:
    """The backticked names in `readme` as regexes, without a .md/.json suffix:
    `a[_b]` makes _b optional, `{1,2}` and `[_x/_y]` are alternatives, `*` is anything."""
    out = []
    for name in re.findall(r"`([^`\s]+)`", readme.read_text()):
        pattern = re.escape(re.sub(r"\.(md|json)$", "", name))
        pattern = re.sub(r"\\\{(.+?)\\\}", lambda m: "(?:" + m[1].replace(",", "|") + ")", pattern)
        pattern = re.sub(r"\\\[(.+?)\\\]",
                         lambda m: "(?:" + m[1].replace("/", "|") + ")?", pattern)
        out.append(re.compile(pattern.replace(r"\*", ".*")))
    return out


def _unnamed(names: set[str], readme: Path) -> list[str]:
    patterns = _patterns(readme)
    return sorted(n for n in names if not any(p.fullmatch(n) for p in patterns))


def test_every_result_file_is_in_the_results_index():
    stems = {p.name.removesuffix(".json").removesuffix(".md")
             for p in (BENCHMARKS / "results").iterdir()
             if p.suffix in (".json", ".md") and p.name != "README.md"}
    assert len(stems) > 20
    assert _unnamed(stems, BENCHMARKS / "results" / "README.md") == []


def test_every_script_is_in_the_benchmarks_index():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")}
    assert len(scripts) > 20
    assert _unnamed(scripts, BENCHMARKS / "README.md") == []


def test_the_index_patterns_match_only_what_they_name():
    names = {"cold_item_map_inputs", "cold_item_map_inputs_seed2", "serving_x"}
    readme = BENCHMARKS / "README.md"
    assert _unnamed(names, readme) == sorted(names)  # the scripts' index names no results
    pattern = _patterns(BENCHMARKS / "results" / "README.md")
    assert any(p.fullmatch("cold_item_map_served_draw2_text_only") for p in pattern)
    assert not any(p.fullmatch("cold_item_map_served_draw3") for p in pattern)
