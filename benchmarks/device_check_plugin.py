"""pytest plugin for device_check's correctness section (used with --noconftest).

The suite's tests/conftest.py forces 8 fake CPU devices; on an accelerator
the chosen tests run on the real backend instead, and the tests that
compare 1 with 8 devices (the `devices` fixture) skip on fewer.
"""

import jax
import pytest


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: long-running; run with `pytest -m slow`")


@pytest.fixture(scope="session")
def devices():
  if jax.device_count() < 8:
    pytest.skip(f"needs 8 devices, this backend has {jax.device_count()}")
  return jax.devices()
