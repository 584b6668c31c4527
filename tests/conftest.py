"""Shared test fixtures.

`import mtrec` comes first so Keras 2 is selected before any test imports TensorFlow.
"""

from pathlib import Path

import pytest

import mtrec  # noqa: F401

# The real MovieLens files live outside the repo (ML-100K may not be redistributed).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data relative to the repo root; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real MovieLens files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def transformed_synthetic(tmp_path_factory):
    """(tft_output, train rows, eval rows) of a small synthetic set, via tf.Transform."""
    from tests.transform_support import synthetic_transformed

    return synthetic_transformed(str(tmp_path_factory.mktemp("synthetic")))
