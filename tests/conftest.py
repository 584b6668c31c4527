"""Shared test fixtures.

`import mtrec` comes first so Keras 2 is selected before any test imports TensorFlow.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import mtrec  # noqa: F401

# Property-based tests: bounded by default so `make test` stays fast;
# HYPOTHESIS_PROFILE=long runs many more examples.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile("default", max_examples=30, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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
