"""The Dockerfile the compiled spec names, checked without Docker: its build context,
its Beam version, and where it puts what the spec's defaults point at.

No Docker daemon here, so `.dockerignore` is read with Docker's rules (the last
matching pattern wins, `!` re-includes, an excluded folder excludes what is in
it, `**` spans folders). The first version of this test found the image
unbuildable: `.dockerignore` left out `scripts/`, and the Dockerfile copies
`scripts/pip_check.sh`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from mtrec.pipeline import configs

ROOT = Path(__file__).resolve().parents[1]


def _translate(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _ignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            include = line.startswith("!")
            rules.append((include, _translate(line.lstrip("!").strip("/"))))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether `path` (relative to the repository) is in the Docker build context."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    kept = True
    for include, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            kept = include
    return kept


def _instructions() -> list[list[str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line and not line.startswith("#")]


def _context_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from a stage)."""
    copies = []
    for words in _instructions():
        if words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        *sources, destination = [w for w in words[1:] if not w.startswith("--")]
        copies.append((sources, destination))
    return copies


def test_the_ignore_rules_read_as_docker_reads_them():
    rules = [(False, _translate("scripts")), (True, _translate("scripts/keep.sh")),
             (False, _translate("**/*_test.py"))]  # fmt: skip
    assert not in_context("scripts/other.sh", rules)
    assert in_context("scripts/keep.sh", rules)
    assert not in_context("components/x/executor_test.py", rules)
    assert not in_context("a_test.py", rules)
    assert in_context("components/x/executor.py", rules)


def test_every_file_the_dockerfile_copies_is_in_the_build_context():
    rules = _ignore_rules()
    sources = [s for sources, _ in _context_copies() for s in sources if s != "."]
    assert "scripts/pip_check.sh" in sources
    for source in sources:
        assert (ROOT / source).is_file(), source
        assert in_context(source, rules), f"{source} is excluded by .dockerignore"
    # What `pip wheel .` needs (COPY . .) stays in too.
    for needed in ("setup.py", "pipeline/kfp_entrypoint.py", "models/trainer.py",
                   "components/example_gen/__init__.py", "data/sample"):  # fmt: skip
        assert in_context(needed, rules), needed
    assert not in_context("tests/test_kubeflow_image.py", rules)


def test_the_image_has_the_beam_of_the_lock_and_the_schema_where_the_spec_reads_it():
    args = dict(w[1].split("=", 1) for w in _instructions() if w[0] == "ARG" and "=" in w[1])
    lock = (ROOT / "requirements" / "lock-py310.txt").read_text()
    (beam,) = re.findall(r"^apache-beam==(\S+)$", lock, flags=re.M)
    assert args["BEAM_VERSION"] == beam
    schema_copy = ["pipeline/schema/schema.pbtxt"]
    schema = {dest for sources, dest in _context_copies() if sources == schema_copy}
    assert schema == {configs.IMAGE_SCHEMA_PATH}
    # The spec's task command is `python -m` a module the wheel installs; KFP replaces
    # the image's ENTRYPOINT (Beam's worker boot) with it.
    assert configs.KFP_TASK_COMMAND[:2] == ("python", "-m")
    module = configs.KFP_TASK_COMMAND[2].removeprefix("mtrec.pipeline.")
    assert (ROOT / "pipeline" / f"{module}.py").is_file()
