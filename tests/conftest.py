"""Shared test settings: the hypothesis profiles, Graphviz for the diagram tests, and flushing
subnormal floats for the tests of random-weight zoo models.

``ci`` (the default) keeps the property tests bounded and reproducible: a fixed number of
examples, a fixed seed, no example database. ``HYPOTHESIS_PROFILE=slow pytest tests/test_properties.py``
runs many more, with fresh random examples each run.
"""

import os
import shutil
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, settings

# Building a network takes milliseconds, not microseconds: hypothesis' speed checks would
# flag the generators as slow although every example is well within the time budget.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=_SLOW_IS_FINE
)
settings.register_profile("slow", max_examples=2000, deadline=None, database=None, suppress_health_check=_SLOW_IS_FINE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def flush_denormals():
    """Random-weight networks make many subnormal floats, on which CPUs are 10-100x slower
    (a ResNet-50 step: 6 s instead of 0.1 s); both sides of every comparison run flushed.
    The zoo's test files use it for all their tests (``pytestmark``)."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


# Examples that ran and passed, by kind; the property tests add to it and the summary prints it.
_EXAMPLE_COUNTS = pytest.StashKey[Counter]()


def pytest_configure(config):
    config.stash[_EXAMPLE_COUNTS] = Counter()


@pytest.fixture(scope="session")
def example_counts(pytestconfig) -> Counter:
    return pytestconfig.stash[_EXAMPLE_COUNTS]


def pytest_terminal_summary(terminalreporter, config):
    counts = config.stash.get(_EXAMPLE_COUNTS, None)
    if counts:
        profile = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        terminalreporter.write_sep("-", f"random examples passed (hypothesis profile {profile!r})")
        for key, value in sorted(counts.items()):
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def dot_program() -> str:
    """Graphviz' ``dot``: CI installs it (.ci/run) and must have it; elsewhere its tests are skipped."""
    path = shutil.which("dot")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz' dot is needed: apt-get install graphviz (.ci/run installs it)")
        pytest.skip("Graphviz' dot is not installed (apt-get install graphviz); CI runs this test")
    return path
