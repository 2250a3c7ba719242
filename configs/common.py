"""What every config shares: the schema, the smoke shrink, the argument convention.

Every configs/*.py defines `get_config(arg)` with `arg` of the form
'NAME[,FLAG...]': NAME picks the strategy (protocol files take any
registered one; single-strategy files only their own), FLAG is `smoke`
(shrink to a seconds-long run, for the tests) or a variant the file lists in
its `VARIANTS`. Protocol files keep each strategy's departures from its
factory defaults in one dict (`TUNED`), an entry of {dotted config path:
value}, with "kw" for strategy keywords and "smoke" for what the smoke run
sets on top of `smoke()`; `finish` turns an entry into a config whose
`strategy.kw` lists every keyword of the strategy.
"""

from typing import Any

import ml_collections

from al_jax.config_utils import kw_config, strategy_kw

# The diversity strategies (configs/coreset_cifar10.py takes any of them).
DIVERSITY = ("coreset", "coreset_mip", "kmeans", "typiclust", "probcover", "cluster_margin")
# The MC-dropout strategies (they need a model with dropout).
BAYESIAN = ("bayesian_lc", "bayesian_entropy", "bald", "variation_ratios", "mean_std",
            "power_bald", "power_entropy", "batchbald")

_VAE_SMOKE = dict(num_steps=20, batch_size=8,
                  channels=())  # conv VAEs compile slowly on CPU; tests/test_vaal.py checks them
# Strategy keywords a smoke run shrinks (the rest keep their values).
SMOKE_KW = {
    "vaal": _VAE_SMOKE, "sraal": _VAE_SMOKE, "ta_vaal": _VAE_SMOKE,
    # A few LiSSA steps: on CPU each CNN HVP inside the loop costs ~10x a step.
    "isal": dict(depth=5, repeats=1, hvp_batch_size=16, val_size=32),
    **{n: dict(num_samples=4) for n in BAYESIAN},
    "batchbald": dict(num_samples=4, num_configs=64, refine=((16, 256),)),
}

# The Gal et al. (2017) CNN: two 4x4 convs with dropout, a dense layer.
GAL_CNN = dict(filters=32, kernel_size=4, padding="VALID", dense=128, dropout_conv=0.25,
               dropout_dense=0.5)


def base_config() -> ml_collections.ConfigDict:
  """The full schema with defaults (the digits protocol); other configs start from this."""
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
      initial_balanced=False, subset_size=0, validation_size=0,
      # Seeds seed .. seed+num_seeds-1 as one program (al_jax/seeds.py); seed_map
      # "vmap" (batched, fast) or "map" (one seed after another, bitwise single runs).
      num_seeds=1, seed_map="vmap"))
  c.strategy = ml_collections.ConfigDict(dict(name="entropy", kw=kw_config(strategy_kw("entropy"))))
  c.score = ml_collections.ConfigDict(dict(batch_size=512, microbatch_size=64))
  c.train = ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=1e-3, batch_size=32, num_epochs=50, min_steps=200,
      weight_decay=0.0, momentum=0.9, nesterov=False,
      grad_clip=ml_collections.FieldReference(None, field_type=float),
      compute_dtype="float32",  # "bfloat16": mixed precision (al_jax/precision.py)
      # al_jax/schedules.py: constant | multistep | cosine, optional linear warm-up.
      schedule=ml_collections.ConfigDict(dict(
          name="constant", milestones=(), unit="epochs", factor=0.1, alpha=0.0, warmup=0))))
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
  for key, small in (("width", 4), ("width_scale", 1 / 16), ("filters", 4), ("dense", 16)):
    if key in c.model:
      c.model[key] = small
  if c.al.get("subset_size", 0) > 64:  # candidate subsets of 2,000-10,000 rows
    c.al.subset_size = 64
  c.strategy.kw.update(SMOKE_KW.get(c.strategy.name, {}))
  return c


def parse(arg: str | None, names, default: str, variants=()) -> tuple[str, set[str]]:
  """'NAME[,FLAG...]' -> (NAME, {FLAG, ...}).

  Args:
    arg: the text after ':' in `--config file.py:arg`, or None.
    names: the strategy names the file takes.
    default: the strategy when `arg` names none.
    variants: the file's flags besides `smoke`.

  Returns:
    The strategy name and the set of flags given.

  Raises:
    ValueError: more than one name, or a part that is neither a name nor a flag.
  """
  parts = [p for p in (arg or "").split(",") if p]
  flags = {p for p in parts if p in ("smoke", *variants)}
  picked = [p for p in parts if p not in flags]
  if len(picked) > 1 or (picked and picked[0] not in names):
    raise ValueError(f"config argument {arg!r}: expected NAME[,FLAG...] with NAME one of "
                     f"{tuple(names)} and FLAG one of {('smoke', *variants)}")
  return (picked[0] if picked else default), flags


def finish(c: ml_collections.ConfigDict, name: str, entry: dict[str, Any] | None = None,
           flags=()) -> ml_collections.ConfigDict:
  """`c` set up for strategy `name` with its protocol entry, smoke-shrunk if asked.

  Args:
    c: a config holding the protocol (data, model, schedule).
    name: a registered strategy.
    entry: {dotted path: value} departures for this strategy; "kw" holds its
      keyword departures, "smoke" what a smoke run sets after `smoke()`.
    flags: the parsed flags; "smoke" shrinks the run.

  Returns:
    `c`, with strategy.kw listing every keyword of the strategy.
  """
  entry = dict(entry or {})
  smoke_entry = entry.pop("smoke", {})
  c.strategy.name = name
  c.strategy.kw = kw_config(strategy_kw(name, **entry.pop("kw", {})))
  _set(c, entry)
  if "smoke" in flags:
    c = smoke(c)
    _set(c, smoke_entry)
  return c


def _set(c: ml_collections.ConfigDict, values: dict[str, Any]) -> None:
  for path, value in values.items():
    *parents, last = path.split(".")
    node = c
    for p in parents:
      node = node[p]
    node[last] = value


def mnist10k(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The built-in MNIST-10k data (al_jax/datasets_data) with the Gal et al. CNN.

  The 10,000 t10k images split (by the seed) into an 8,000-image pool and
  2,000 test images; 20 balanced initial labels.
  """
  c.data.name = "mnist10k"
  c.data.test_size = 2000
  c.model_name = "cnn"
  c.model = GAL_CNN
  c.al.initial_size = 20
  c.al.initial_balanced = True
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


# The re-run protocol's shorter schedule (DeepAL+ style): Nesterov, 100 epochs.
CIFAR10_100_EPOCHS = {"train.nesterov": True, "train.num_epochs": 100}
# The VAAL family at CIFAR-10 scale: conv VAE, 8,000 iterations per round on the
# labelled rows plus a random 10,000 unlabelled (see configs/vaal_cifar10.py).
VAE_CIFAR10 = {"kw": dict(channels=(128, 256, 512, 1024), num_steps=8000, batch_size=128,
                          eval_batch=1000)}
# The candidate subset of the model-based CIFAR-10 configs (the smoke pool holds 64).
SUBSET_CIFAR10 = {"al.subset_size": 10000, "smoke": {"al.subset_size": 32}}


def cifar10_config(arg: str | None, names: tuple[str, ...], *entries: dict,
                   tuned: dict | None = None) -> ml_collections.ConfigDict:
  """A CIFAR-10 paper config: cifar10() plus the merged entries.

  Args:
    arg: the config argument 'NAME[,smoke]'.
    names: the strategies the file takes; the first is its default.
    *entries: protocol entries (see `finish`); later ones win, "kw" and
      "smoke" merge key by key.
    tuned: {strategy: entry} applied last, for files taking several strategies.

  Returns:
    The config.
  """
  name, flags = parse(arg, names, names[0])
  entry = merge(*entries, (tuned or {}).get(name, {}))
  return finish(cifar10(base_config()), name, entry, flags)
def merge(*entries: dict) -> dict:
  """Entries combined left to right; their "kw" and "smoke" dicts merge too."""
  out: dict[str, Any] = {}
  for e in entries:
    for k, v in e.items():
      out[k] = {**out.get(k, {}), **v} if k in ("kw", "smoke") else v
  return out


def multistep(milestones, unit: str = "epochs", factor: float = 0.1) -> dict:
  """A multistep schedule dict (al_jax/schedules.py), for train.schedule or a strategy kw."""
  return dict(name="multistep", milestones=tuple(milestones), unit=unit, factor=factor,
              alpha=0.0, warmup=0)


def train_schedule(schedule: dict) -> dict:
  """`schedule` as {dotted path: value} entries for config.train.schedule."""
  return {f"train.schedule.{k}": v for k, v in schedule.items()}


# The LL4AL / TA-VAAL / GCNAL reference scripts' MultiStepLR (MILESTONES = [160, 240]).
MILESTONES_160_240 = multistep((160, 240))
