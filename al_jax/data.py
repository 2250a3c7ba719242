"""Datasets as in-memory arrays, and the fixed-size padded pool.

Sources (`config.data.name`), the `DATASETS` registry:
  digits      scikit-learn's load_digits (8x8x1, 10 classes); ships in the
              wheel, so the default needs no network.
  mnist10k    the MNIST t10k IDX files shipped in al_jax/datasets_data
              (10,000 28x28x1 images); split into pool/test by `data.test_size`.
  mnist_idx   MNIST-format IDX files (images + labels, optionally .gz) from
              `data.path` (a folder); split into pool/test by `data.test_size`.
  synthetic   Gaussian blobs (for tests and benchmarks).
  mnist, fashion_mnist, svhn_cropped, cifar10, cifar100
              TFDS, read with `tfds.data_source(..., download=False)` from
              `data.data_dir` (prepared once in array_record format; see README).

The training split is the AL pool. Its stable global ids are the row indices
of that split (every host loads the same order).

`data.pool_dtype` = "uint8" keeps integer-valued image sources (digits,
mnist10k, mnist_idx, the TFDS images) in their source bytes: 4x less host and device
memory (a CIFAR-10 pool: 150 MB instead of 614 MB). The per-channel
normalisation then runs on the fly inside the jitted train / score /
evaluate functions (`normalizer`), with the same statistics as the float
path.
"""

import gzip
import os
import zlib
from typing import Any, Callable, NamedTuple

import numpy as np

TFDS_NAMES = ("mnist", "fashion_mnist", "svhn_cropped", "cifar10", "cifar100")
IDX_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The MNIST test split shipped as package data (al_jax/datasets_data/README.md).
MNIST10K_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets_data",
                            "mnist_t10k")


class Dataset(NamedTuple):
  x_train: np.ndarray  # [N, H, W, C] float32 (normalised)
  y_train: np.ndarray  # [N] int32
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  # uint8 pools only: per-channel (scale, offset), float32 [C] each, so that
  # x * scale + offset is the normalised float input. None: x is float.
  to_float: tuple | None = None


class Pool(NamedTuple):
  """The training split padded to a fixed size.

  x: [N_pad, ...]; y: [N_pad] oracle labels (-1 on padding); ids: [N_pad]
  global ids, equal to the row position for real rows and -1 on padding;
  valid: [N_pad] bool.
  """
  x: np.ndarray
  y: np.ndarray
  ids: np.ndarray
  valid: np.ndarray

  @property
  def size(self) -> int:
    return int(self.valid.sum())


class Source(NamedTuple):
  """One dataset of the registry.

  read: (cfg, rng, seed) -> ((x_train, y_train), (x_test, y_test)), images
    [N, H, W, C] (integer pixel values for integer sources, else float32 in
    [0, 1]) and int labels, before subsampling.
  num_classes: the number of classes, or cfg -> that number.
  max_value: integer sources: the pixel value that maps to 1.0; None: float.
  """
  read: Callable
  num_classes: int | Callable
  max_value: float | None = None


def _splitting(images_and_labels: Callable, default_test_size):
  """A `read` that splits one array source by data.test_size (stratified, seeded)."""
  def read(cfg, rng, seed):
    x, y = images_and_labels(cfg, seed)
    return _split(x, y, cfg.get("test_size", default_test_size), rng)
  return read


def _tfds_read(name: str):
  def read(cfg, rng, seed):
    del rng, seed  # TFDS has its own train/test splits.
    return _tfds(name, "train", cfg.get("data_dir")), _tfds(name, "test", cfg.get("data_dir"))
  return read


DATASETS: dict[str, Source] = {
    "digits": Source(_splitting(lambda cfg, seed: _digits(), 0.25), 10, 16.0),
    "mnist10k": Source(_splitting(lambda cfg, seed: _mnist_idx(MNIST10K_DIR), 2000), 10, 255.0),
    "mnist_idx": Source(_splitting(lambda cfg, seed: _mnist_idx(cfg.get("path")), 2000), 10,
                        255.0),
    "synthetic": Source(_splitting(lambda cfg, seed: _synthetic(cfg, seed), 0.25),
                        lambda cfg: int(cfg.get("num_classes", 4))),
    **{n: Source(_tfds_read(n), 100 if n == "cifar100" else 10, 255.0) for n in TFDS_NAMES},
}


def known_datasets() -> list[str]:
  return sorted(DATASETS)


def num_classes(cfg) -> int:
  """The number of classes of the dataset named in `cfg` (from the registry)."""
  n = DATASETS[cfg["name"]].num_classes
  return int(n(cfg) if callable(n) else n)


POOL_DTYPES = ("float32", "uint8")


def get(name: str, seed: int = 0, **kw: Any) -> Dataset:
  """Looks up `name` in DATASETS and loads it: split, subsampled, normalised.

  The same verb as `models.get` and `strategies.get`: unknown names fail
  with the list of known ones. kw are the other fields of a config's `data`
  section (test_size, max_train, max_test, normalize, pool_dtype, path,
  data_dir, ...), so `get(**config.data, seed=config.seed)` loads a config's
  dataset.
  """
  return load(dict(kw, name=name), seed)


def load(cfg, seed: int) -> Dataset:
  """`get` with the dataset's fields as one mapping (a config's `data`)."""
  name = cfg["name"]
  pool_dtype = cfg.get("pool_dtype", "float32")
  if pool_dtype not in POOL_DTYPES:
    raise ValueError(f"Unknown data.pool_dtype '{pool_dtype}'; known: {list(POOL_DTYPES)}")
  if name not in DATASETS:
    raise ValueError(f"Unknown dataset '{name}'; known: {known_datasets()}")
  rng = np.random.default_rng(seed)
  source = DATASETS[name]
  (x_tr, y_tr), (x_te, y_te) = source.read(cfg, rng, seed)
  max_value = source.max_value  # integer sources: the value that maps to 1.0
  if pool_dtype == "uint8" and max_value is None:
    raise ValueError(f"data.pool_dtype='uint8' needs an integer image source "
                     f"({', '.join(n for n, s in DATASETS.items() if s.max_value)}); "
                     f"'{name}' is float")
  classes = num_classes(cfg)
  top = int(max(y_tr.max(), y_te.max()))
  if top >= classes:
    raise ValueError(f"data.name={name!r} has {classes} classes but a label {top}")
  x_tr, y_tr = _subsample(x_tr, y_tr, cfg.get("max_train"), rng)
  x_te, y_te = _subsample(x_te, y_te, cfg.get("max_test"), rng)
  y_tr, y_te = y_tr.astype(np.int32), y_te.astype(np.int32)
  if pool_dtype == "float32":
    xf_tr, xf_te = _float_normalised(x_tr, x_te, max_value, cfg.get("normalize", True))
    return Dataset(xf_tr, y_tr, xf_te, y_te, classes)
  scale = np.full(x_tr.shape[-1], 1.0 / max_value)
  offset = np.zeros(x_tr.shape[-1])
  if cfg.get("normalize", True):
    # Per-channel (last axis) statistics of the pool: label-free and fixed.
    mean, std = _channel_stats(x_tr)
    mean, std = mean * scale, std * scale + 1e-6
    scale, offset = scale / std, -mean / std
  return Dataset(x_tr.astype(np.uint8), y_tr, x_te.astype(np.uint8), y_te, classes,
                 to_float=(scale.astype(np.float32), offset.astype(np.float32)))


def _float_normalised(x_tr, x_te, max_value, normalize: bool):
  """(x_tr, x_te) in float32 with per-channel standardisation by the pool.

  The float pool keeps the arithmetic it always had (scale to [0, 1] in
  float64, cast, then float32 statistics), so a float run selects exactly
  the ids it selected before uint8 pools existed; the uint8 path computes
  the same transform as one affine map on device (equal to ~1e-6).
  """
  if max_value is not None:
    x_tr, x_te = (x_tr / max_value).astype(np.float32), (x_te / max_value).astype(np.float32)
  x_tr, x_te = x_tr.astype(np.float32), x_te.astype(np.float32)
  if normalize:
    axes = tuple(range(x_tr.ndim - 1))
    mean = x_tr.mean(axis=axes, keepdims=True)
    std = x_tr.std(axis=axes, keepdims=True) + 1e-6
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
  return x_tr.astype(np.float32), x_te.astype(np.float32)


def _channel_stats(x: np.ndarray):
  """Per-channel mean and std in float64, one channel at a time (no float copy of x)."""
  flat = x.reshape(-1, x.shape[-1])
  mean = np.array([flat[:, c].mean(dtype=np.float64) for c in range(flat.shape[1])])
  std = np.array([flat[:, c].std(dtype=np.float64) for c in range(flat.shape[1])])
  return mean, std


def normalizer(ds: Dataset):
  """The on-device input transform of `ds`: x -> float32 normalised, or None.

  Called inside the jitted train / score / evaluate functions on each batch,
  so only batches (never the pool) exist in float32 on the devices.
  """
  if ds.to_float is None:
    return None
  scale, offset = (np.asarray(a, np.float32) for a in ds.to_float)

  def to_float(x):
    import jax.numpy as jnp  # data.py stays importable without touching JAX
    return x.astype(jnp.float32) * scale + offset

  return to_float


def make_pool(x: np.ndarray, y: np.ndarray, multiple: int) -> Pool:
  """Pads the pool to a multiple of `multiple` rows (shards x batches)."""
  n = len(x)
  n_pad = -(-n // multiple) * multiple
  pad = n_pad - n
  xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
  yp = np.concatenate([y, -np.ones(pad, np.int32)]).astype(np.int32)
  ids = np.concatenate([np.arange(n), -np.ones(pad, np.int64)]).astype(np.int32)
  valid = np.arange(n_pad) < n
  return Pool(xp, yp, ids, valid)


def pad_rows(x: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
  """Pads any array's rows to a multiple; returns (padded, valid mask)."""
  n = len(x)
  n_pad = -(-n // multiple) * multiple
  xp = np.concatenate([x, np.zeros((n_pad - n,) + x.shape[1:], x.dtype)])
  return xp, np.arange(n_pad) < n


def _digits():
  from sklearn.datasets import load_digits  # Lazy: only this source needs it.
  d = load_digits()  # integer pixel values 0..16
  return d.images[..., None].astype(np.uint8), d.target.astype(np.int32)


def _read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (big-endian header: magic, dims; uint8 payload)."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (EOFError, OSError, zlib.error) as e:  # truncated / not gzip / unreadable
    raise ValueError(f"data.path: cannot read {path} ({type(e).__name__}: {e}); the file is "
                     f"damaged or not an IDX file: download it again") from e
  magic = int.from_bytes(raw[0:4], "big")
  if magic >> 8 != 0x08:  # 0x08 = unsigned byte payload.
    raise ValueError(f"{path}: not a uint8 IDX file (magic {magic:#x})")
  ndim = magic & 0xFF
  dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != int(np.prod(dims)):
    raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
  return data.reshape(dims)


def _find(folder: str, stem: str) -> str:
  for suffix in (".gz", ""):
    p = os.path.join(folder, stem + suffix)
    if os.path.exists(p):
      return p
  raise FileNotFoundError(f"data.path={folder!r}: no {stem}[.gz] there")


def _mnist_idx(path):
  if not path or not os.path.isdir(path):
    raise FileNotFoundError(
        f"data.name='mnist_idx' needs data.path to be a folder holding "
        f"{IDX_FILES[0]}[.gz] and {IDX_FILES[1]}[.gz]; got data.path={path!r}")
  names = sorted(os.listdir(path))
  img = [n for n in names if "images-idx3" in n]
  lab = [n for n in names if "labels-idx1" in n]
  if len(img) != 1 or len(lab) != 1:
    raise FileNotFoundError(f"data.path={path!r} must hold exactly one "
                            f"*images-idx3* and one *labels-idx1* file; found {names}")
  x = _read_idx(os.path.join(path, img[0]))
  y = _read_idx(os.path.join(path, lab[0]))
  if len(x) != len(y):
    raise ValueError(f"data.path={path!r}: {len(x)} images but {len(y)} labels")
  return x[..., None], y.astype(np.int32)


def _synthetic(cfg, seed):
  """Well-separated Gaussian blobs shaped like tiny images."""
  n = int(cfg.get("num_examples", 512))
  c = int(cfg.get("num_classes", 4))
  shape = tuple(cfg.get("shape", (4, 4, 1)))
  rng = np.random.default_rng(seed + 12345)
  centres = rng.normal(size=(c,) + shape) * float(cfg.get("separation", 3.0))
  y = np.arange(n) % c
  x = centres[y] + rng.normal(size=(n,) + shape)
  return x.astype(np.float32), y.astype(np.int32)


def _tfds(name: str, split: str, data_dir):
  import tensorflow_datasets as tfds  # Lazy: heavy import, TFDS sources only.
  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises several types for "not prepared".
    raise FileNotFoundError(
        f"TFDS dataset '{name}' (split '{split}') is not prepared in "
        f"data.data_dir={data_dir!r}. Prepare it once with network access: "
        f"`python -m al_jax.prepare_data {name} --data_dir DIR` (needs "
        f"requirements-prepare.txt). Cause: {type(e).__name__}: {str(e)[:200]}"
    ) from e
  n = len(source)
  first = source[0]
  x = np.empty((n,) + np.shape(first["image"]), np.uint8)
  y = np.empty((n,), np.int32)
  for i in range(n):
    rec = source[i]
    x[i], y[i] = rec["image"], rec["label"]
  return x, y


def _split(x, y, test_size, rng):
  """Stratified split; test_size is a count (>= 1) or a fraction (< 1)."""
  n = len(x)
  n_test = int(round(test_size * n)) if test_size < 1 else int(test_size)
  if not 0 < n_test < n:
    raise ValueError(f"data.test_size={test_size} gives {n_test} test rows of {n}")
  # Stratify: take each class's share of the test rows from a shuffled order.
  test = []
  for c in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == c))
    test.append(idx[:int(round(n_test * len(idx) / n))])
  test = np.sort(np.concatenate(test))
  train = np.setdiff1d(np.arange(n), test)
  return (x[train], y[train]), (x[test], y[test])


def _subsample(x, y, max_n, rng):
  if max_n is None or max_n >= len(x):
    return x, y
  keep = np.sort(rng.permutation(len(x))[:int(max_n)])
  return x[keep], y[keep]
