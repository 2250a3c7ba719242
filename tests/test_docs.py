"""docs/library.md's examples run as written (in order, one namespace)."""

import os
import re

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")


def python_blocks(path):
  with open(path) as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_library_examples_run(capsys):
  blocks = python_blocks(os.path.join(ROOT, "docs", "library.md"))
  assert len(blocks) >= 7, "one example per family"
  ns = {}
  for i, code in enumerate(blocks):
    try:
      exec(compile(code, f"docs/library.md block {i}", "exec"), ns)  # noqa: S102
    except Exception as e:  # noqa: BLE001 - say which block failed.
      pytest.fail(f"docs/library.md block {i} failed: {type(e).__name__}: {e}\n{code}")
  out = capsys.readouterr().out
  assert "budget (500) exceeds the 180 unlabelled rows" in out
  assert "'vaal' needs the model" in out
  for name in ("bald_ids", "batch_ids", "coreset_ids", "typiclust_ids", "probcover_ids",
               "mip_ids", "badge_ids", "cm_ids"):
    ids = ns[name]
    assert isinstance(ids, np.ndarray) and not ns["labelled"][ids].any(), name
