"""Progress output and the initial-set record: no bars in a redirected log,
one line per round instead; selected.jsonl starts with the initial labelled set."""

import jax
import numpy as np

from al_jax import data, loop, metrics, train
from configs import default


def smoke(**over):
  c = default.get_config("smoke")
  c.progress = True
  for k, v in over.items():
    c[k] = v
  return c


def test_redirected_log_gets_lines_and_selected_jsonl_starts_with_the_initial_set(
    tmp_path, capsys):
  c = smoke()
  w = str(tmp_path / "w")
  loop.run(c, w)
  err = capsys.readouterr().err  # captured: not a terminal
  rounds = [line for line in err.splitlines() if " round " in line]
  assert len(rounds) == c.al.num_rounds + 1, err
  assert rounds[0].startswith("entropy round 0/2: 16 labelled, accuracy ")
  assert "\r" not in err and "it/s" not in err and "AL entropy" not in err

  recs = metrics.read_jsonl(f"{w}/selected.jsonl")
  assert [r["round"] for r in recs] == [-1, 0, 1]
  first = recs[0]
  assert first["initial"] is True and first["scores"] == []
  assert len(first["ids"]) == len(set(first["ids"])) == c.al.initial_size
  picked = sum((r["ids"] for r in recs[1:]), [])
  assert not set(first["ids"]) & set(picked)
  # The recorded initial set is the one the loop drew.
  ds = data.load(c.data, int(c.seed))
  pool = data.make_pool(ds.x_train, ds.y_train, 64)
  want = loop.initial_labelled(jax.random.fold_in(jax.random.key(int(c.seed)),
                                                  loop._INITIAL_SET_SALT),
                               pool.y, pool.valid, c.al.initial_size, False)
  assert sorted(first["ids"]) == np.flatnonzero(want).tolist()
  loop.run(c, w)  # A finished run run again keeps its one initial record.
  assert metrics.read_jsonl(f"{w}/selected.jsonl") == recs


def test_bars_only_on_a_terminal_with_a_correct_epoch_counter(tmp_path, capsys, monkeypatch):
  c = smoke()
  c.progress = False
  loop.run(c, str(tmp_path / "quiet"))
  assert " round " not in capsys.readouterr().err  # progress=False: silent
  seen = []

  class Bar:
    """Stands in for the inner tqdm bar: counts what it is told."""

    def __init__(self, total, **kw):
      del kw
      self.total, self.n = total, 0
      seen.append(self)

    def set_postfix(self, **kw):
      del kw

    def update(self, k):
      self.n += k

    def close(self):
      pass

  monkeypatch.setattr(train, "tqdm", Bar)
  monkeypatch.setattr(loop, "_is_terminal", lambda: True)
  loop.run(smoke(), str(tmp_path / "tty"))
  err = capsys.readouterr().err
  assert "AL entropy" in err and " round 0/" not in err
  assert len(seen) == 3 and all(b.n == b.total >= 2 for b in seen), [(b.n, b.total) for b in seen]
