"""benchmarks/served_quality.py's command line: --help answers without TensorFlow (it took
3.3 s and printed CUDA's "Unable to register" lines) and names every default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_help_loads_no_tensorflow_and_shows_the_defaults():
    code = ("import runpy, sys\n"
            "sys.argv = ['served_quality.py', '--help']\n"
            "try:\n"
            "    runpy.run_path('benchmarks/served_quality.py', run_name='__main__')\n"
            "except SystemExit as done:\n"
            "    assert done.code == 0, done.code\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.rstrip().endswith("tensorflow loaded: False"), out.stdout
    assert "Unable to register" not in out.stderr
    text = " ".join(out.stdout.split())  # argparse wraps the help
    assert f"results directory (default {REPO / 'benchmarks' / 'results'}," in text
    assert "--max-reject-fraction MAX_REJECT_FRACTION as `mtrec run" in text
    assert "rejected (default 0.5)" in text
