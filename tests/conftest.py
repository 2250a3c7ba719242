"""Tests run on 8 fake CPU devices (set before JAX initialises)."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: long-running; run with `pytest -m slow`")


@pytest.fixture(scope="session")
def devices():
  assert jax.device_count() == 8, jax.devices()
  return jax.devices()
