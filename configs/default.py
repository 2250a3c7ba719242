"""Default experiment: entropy sampling with an MLP on scikit-learn digits.

  python -m al_jax.main --config configs/default.py --workdir /tmp/al_default

1,347-image pool / 450 test images, 20 initial labels + 15 rounds of 20.
Runs offline in well under a minute on 2 CPU cores. `:smoke` shrinks any
config for tests.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """The full schema with defaults; other configs start from this."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.progress = True
  c.data = ml_collections.ConfigDict(dict(
      name="digits", data_dir=ml_collections.FieldReference(None, field_type=str),
      path=ml_collections.FieldReference(None, field_type=str),
      test_size=0.25, normalize=True, augment="none",
      max_train=ml_collections.FieldReference(None, field_type=int),
      max_test=ml_collections.FieldReference(None, field_type=int)))
  c.model_name = "mlp"
  c.model = ml_collections.ConfigDict(dict(hidden=(128,), dropout=0.0))
  c.al = ml_collections.ConfigDict(dict(
      initial_size=20, query_size=20, num_rounds=15, warm_start=False,
      initial_balanced=False, subset_size=0))
  c.strategy = ml_collections.ConfigDict(dict(name="entropy", kw=ml_collections.ConfigDict()))
  c.score = ml_collections.ConfigDict(dict(batch_size=512, microbatch_size=64))
  c.train = ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=1e-3, batch_size=32, num_epochs=50, min_steps=200,
      weight_decay=0.0, momentum=0.9, nesterov=False,
      grad_clip=ml_collections.FieldReference(None, field_type=float)))
  c.eval = ml_collections.ConfigDict(dict(batch_size=512))
  c.mesh = [("data", -1)]
  c.ckpt = ml_collections.ConfigDict(dict(max_to_keep=2))
  return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config to a seconds-long run (used by the tests)."""
  c.data.max_train = 256
  c.data.max_test = 128
  c.al.initial_size = 16
  c.al.query_size = 8
  c.al.num_rounds = 2
  c.train.num_epochs = 2
  c.train.min_steps = 4
  c.train.batch_size = 16
  c.score.batch_size = 64
  c.eval.batch_size = 64
  c.progress = False
  # Thin the big backbones so CPU smoke runs take seconds, not minutes.
  if "width" in c.model:
    c.model.width = 4
  if "width_scale" in c.model:
    c.model.width_scale = 1 / 16
  if "filters" in c.model:  # the Gal et al. CNN of the MNIST configs
    c.model.filters = 4
  if "dense" in c.model:
    c.model.dense = 16
  if c.al.get("subset_size", 0) > 64:  # candidate subsets of 2,000-10,000 rows
    c.al.subset_size = 64
  return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = base_config()
  return smoke(c) if arg == "smoke" else c
