"""Default experiment: entropy sampling with an MLP on scikit-learn digits.

  python -m al_jax.main --config configs/default.py --workdir /tmp/al_default

1,350-image pool / 447 test images, 20 initial labels + 15 rounds of 20.
Runs offline in well under a minute on 2 CPU cores. `:smoke` shrinks any
config for tests.
"""

import inspect

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """The full schema with defaults; other configs start from this."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.progress = True
  c.deterministic = False  # GPU: deterministic XLA kernels (al_jax/determinism.py)
  c.data = ml_collections.ConfigDict(dict(
      name="digits", data_dir=ml_collections.FieldReference(None, field_type=str),
      path=ml_collections.FieldReference(None, field_type=str),
      test_size=0.25, normalize=True, augment="none",
      max_train=ml_collections.FieldReference(None, field_type=int),
      max_test=ml_collections.FieldReference(None, field_type=int),
      pool_dtype="float32"))  # "uint8": integer image pools stay bytes on device
  c.model_name = "mlp"
  c.model = ml_collections.ConfigDict(dict(hidden=(128,), dropout=0.0))
  c.al = ml_collections.ConfigDict(dict(
      initial_size=20, query_size=20, num_rounds=15, warm_start=False,
      initial_balanced=False, subset_size=0, validation_size=0))
  c.strategy = ml_collections.ConfigDict(dict(name="entropy", kw=ml_collections.ConfigDict()))
  c.score = ml_collections.ConfigDict(dict(batch_size=512, microbatch_size=64))
  c.train = ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=1e-3, batch_size=32, num_epochs=50, min_steps=200,
      weight_decay=0.0, momentum=0.9, nesterov=False,
      grad_clip=ml_collections.FieldReference(None, field_type=float),
      compute_dtype="float32"))  # "bfloat16": mixed precision (al_jax/precision.py)
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


def mnist10k(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The MNIST-10k protocol shared by the configs/*_mnist10k.py files.

  The t10k IDX files split into an 8,000-image pool and 2,000 test images,
  the Gal et al. (2017) CNN, 20 balanced initial labels + 20 rounds of 20,
  at least 300 steps of batch 64 per round.
  """
  c.data.name = "mnist_idx"
  c.data.path = "/work/shared/data/mnist-t10k"
  c.data.test_size = 2000
  c.model_name = "cnn"
  c.model = dict(filters=32, kernel_size=4, padding="VALID", dense=128,
                 dropout_conv=0.25, dropout_dense=0.5)
  c.al.initial_size = 20
  c.al.initial_balanced = True
  c.al.query_size = 20
  c.al.num_rounds = 20
  c.train.batch_size = 64
  c.train.num_epochs = 50
  c.train.min_steps = 300
  return c


def cifar10(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The CIFAR-10 protocol of LL4AL / VAAL / GCNAL (1,000 initial + 10 x 1,000).

  ResNet-18, flip + crop augmentation, SGD 0.1 with momentum 0.9 and weight
  decay 5e-4, 200 epochs of batch 128 per round (retrained from scratch).
  """
  c.data.name = "cifar10"
  c.data.augment = "flip_crop"
  c.model_name = "resnet18"
  c.model = dict(width=64, dropout=0.0)
  c.al.initial_size = 1000
  c.al.query_size = 1000
  c.al.num_rounds = 10
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.1
  c.train.momentum = 0.9
  c.train.weight_decay = 5e-4
  c.train.batch_size = 128
  c.train.num_epochs = 200
  c.train.min_steps = 0
  c.score.batch_size = 1000
  c.eval.batch_size = 1000
  return c


def parse(arg: str | None, names: tuple, default: str) -> tuple[str, bool]:
  """A config argument 'NAME[,smoke]' -> (NAME, is_smoke); NAME must be in `names`."""
  parts = [p for p in (arg or "").split(",") if p]
  picked = [p for p in parts if p != "smoke"]
  if len(picked) > 1 or (picked and picked[0] not in names):
    raise ValueError(f"config argument {arg!r}: expected one of {names}, optionally ',smoke'")
  return (picked[0] if picked else default), "smoke" in parts


def strategy_kw(name: str) -> dict:
  """Every hyperparameter of strategy `name` with its default (from its factory)."""
  from al_jax.strategies import STRATEGIES  # Configs load before the library otherwise.
  return {k: p.default for k, p in inspect.signature(STRATEGIES[name]).parameters.items()
          if k != "fns"}


def table_config(c: ml_collections.ConfigDict, arg: str | None,
                 suffix: str) -> ml_collections.ConfigDict:
  """`c` set up for one row of a one-protocol table (configs/table_*.py).

  `arg` is 'NAME[,smoke]' for any registered strategy. The data, model and
  schedule stay those of `c` for every row; the strategy's hyperparameters
  (and candidate subset) come from its own configs/NAME_<suffix>.py when it
  has one (e.g. the VAAL family's CPU-sized networks), its factory
  defaults otherwise.
  """
  import importlib
  import importlib.util

  from al_jax.strategies import STRATEGIES
  name, is_smoke = parse(arg, tuple(sorted(STRATEGIES)), "entropy")
  c.strategy.name = name
  if importlib.util.find_spec(f"configs.{name}_{suffix}") is not None:
    own = importlib.import_module(f"configs.{name}_{suffix}").get_config(
        "smoke" if is_smoke else None)
    c.strategy.kw = own.strategy.kw
    c.al.subset_size = own.al.subset_size
  else:
    c.strategy.kw = strategy_kw(name)
  if is_smoke:
    subset = c.al.subset_size
    c = smoke(c)
    c.al.subset_size = subset  # Already shrunk by the strategy's own smoke config.
  return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = base_config()
  return smoke(c) if arg == "smoke" else c
