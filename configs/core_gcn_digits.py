"""CoreGCN on scikit-learn digits with the default MLP.

  python -m al_jax.main --config configs/core_gcn_digits.py --workdir /tmp/al_core_gcn_digits

1,350-image pool, 20 initial labels + 15 rounds of 20 (as configs/default.py).
The graph holds the whole pool (1,350 nodes, dense).
"""

from configs.default import base_config, smoke


def get_config(arg: str | None = None):
  c = base_config()
  c.strategy.name = "core_gcn"
  c.strategy.kw = dict(hidden=128, dropout=0.3, lam=1.2, lr=1e-3, weight_decay=5e-4, num_steps=200,
                       block=256)
  return smoke(c) if arg == "smoke" else c
