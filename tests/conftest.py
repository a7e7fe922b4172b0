import pytest

from fdkit.engine import runner


@pytest.fixture(autouse=True)
def _parallel_kernels_at_every_size(monkeypatch):
    """parallel=True runs the prange kernels even where the cut-off would run them serially
    (small N), so that the tests exercise them; tests of the cut-off set it back."""
    monkeypatch.setattr(runner, "PARALLEL_MIN_SECONDS", 0.0)
