"""scripts/typecheck.py: mypy over the installed layout, reported by repository path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import product_layout  # noqa: E402
import typecheck  # noqa: E402


def test_the_layout_maps_each_copied_module_to_its_source_and_leaves_tests_out(tmp_path):
    copied = product_layout.installed_layout(tmp_path)
    assert copied["mtrec/models/model.py"] == "models/model.py"
    assert copied["mtrec/cli.py"] == "mtrec/cli.py"
    assert copied["mtrec/components/trainer/executor.py"] == "components/trainer/executor.py"
    assert (tmp_path / "mtrec/models/model.py").read_text() == (
        ROOT / "models/model.py").read_text()
    assert not [p for p in copied.values() if p.endswith("_test.py") or "conftest" in p]
    assert "components/trainer/executor_test.py" not in copied.values()


def test_report_locations_are_rewritten_to_repository_paths():
    copied = {"mtrec/models/model.py": "models/model.py"}
    report = ("mtrec/models/model.py:97: error: Need type annotation  [var-annotated]\n"
              "mtrec/models/model.py:98: note: see mtrec/models/model.py\n"
              "benchmarks/x.py:3: error: y\n"
              "Found 2 errors in 2 files (checked 2 source files)\n")
    assert typecheck.repository_paths(report, copied) == (
        "models/model.py:97: error: Need type annotation  [var-annotated]\n"
        "models/model.py:98: note: see mtrec/models/model.py\n"  # the message is left alone
        "benchmarks/x.py:3: error: y\n"
        "Found 2 errors in 2 files (checked 2 source files)\n")


def _tiny_repository(root: Path, body: str) -> None:
    (root / "setup.py").write_text('SUBPACKAGES = {"mtrec.models": "models"}\n')
    (root / "pyproject.toml").write_text(
        "[tool.mypy]\npython_version = \"3.10\"\ndisallow_untyped_defs = true\n")
    for folder in ("mtrec", "models"):
        (root / folder).mkdir()
        (root / folder / "__init__.py").write_text("")
    (root / "models" / "maths.py").write_text(body)
    (root / "models" / "maths_test.py").write_text("def test(): return half('x')\n")


@pytest.mark.parametrize("body, ok", [
    ("def half(x: float) -> float:\n    return x / 2\n\n\nHALF: float = half(3)\n", True),
    ("def half(x: float) -> float:\n    return x / 2\n\n\nHALF: str = half(3)\n", False),
    ("def half(x):\n    return x / 2\n", False),
])
def test_mypy_fails_the_check_on_a_type_error_and_names_the_source_file(
        tmp_path, monkeypatch, capsys, body, ok):
    _tiny_repository(tmp_path, body)
    monkeypatch.setattr(product_layout, "ROOT", tmp_path)
    monkeypatch.setattr(typecheck, "ROOT", tmp_path)
    code = typecheck.main([])
    out = capsys.readouterr().out
    assert (code == 0) is ok, out
    if ok:
        assert "Success: no issues found in 3 source files" in out
    else:
        assert out.startswith("models/maths.py:"), out
        assert "mtrec/models" not in out
