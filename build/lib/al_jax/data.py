"""Datasets as in-memory arrays, and the fixed-size padded pool.

Sources (`config.data.name`):
  digits      scikit-learn's load_digits (8x8x1, 10 classes); ships in the
              wheel, so the default needs no network.
  mnist_idx   MNIST-format IDX files (images + labels, optionally .gz) from
              `data.path` (a folder); split into pool/test by `data.test_size`.
  synthetic   Gaussian blobs (for tests and benchmarks).
  mnist, fashion_mnist, svhn_cropped, cifar10, cifar100
              TFDS, read with `tfds.data_source(..., download=False)` from
              `data.data_dir` (prepared once in array_record format; see README).

The training split is the AL pool. Its stable global ids are the row indices
of that split (every host loads the same order).
"""

import gzip
import os
from typing import NamedTuple

import numpy as np

TFDS_NAMES = ("mnist", "fashion_mnist", "svhn_cropped", "cifar10", "cifar100")
IDX_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class Dataset(NamedTuple):
  x_train: np.ndarray  # [N, H, W, C] float32 (normalised)
  y_train: np.ndarray  # [N] int32
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int


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


def known_datasets() -> list[str]:
  return sorted(("digits", "mnist_idx", "synthetic") + TFDS_NAMES)


def load(cfg, seed: int) -> Dataset:
  """Loads, splits, subsamples and normalises the dataset named in `cfg`."""
  name = cfg.name
  rng = np.random.default_rng(seed)
  if name == "digits":
    x, y = _digits()
    (x_tr, y_tr), (x_te, y_te) = _split(x, y, cfg.get("test_size", 0.25), rng)
  elif name == "mnist_idx":
    x, y = _mnist_idx(cfg.get("path"))
    (x_tr, y_tr), (x_te, y_te) = _split(x, y, cfg.get("test_size", 2000), rng)
  elif name == "synthetic":
    x, y = _synthetic(cfg, seed)
    (x_tr, y_tr), (x_te, y_te) = _split(x, y, cfg.get("test_size", 0.25), rng)
  elif name in TFDS_NAMES:
    x_tr, y_tr = _tfds(name, "train", cfg.get("data_dir"))
    x_te, y_te = _tfds(name, "test", cfg.get("data_dir"))
  else:
    raise ValueError(f"Unknown dataset '{name}'; known: {known_datasets()}")
  num_classes = int(max(y_tr.max(), y_te.max())) + 1
  x_tr, y_tr = _subsample(x_tr, y_tr, cfg.get("max_train"), rng)
  x_te, y_te = _subsample(x_te, y_te, cfg.get("max_test"), rng)
  if cfg.get("normalize", True):
    # Per-channel (last axis) statistics of the pool: label-free and fixed.
    axes = tuple(range(x_tr.ndim - 1))
    mean = x_tr.mean(axis=axes, keepdims=True)
    std = x_tr.std(axis=axes, keepdims=True) + 1e-6
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
  return Dataset(x_tr.astype(np.float32), y_tr.astype(np.int32),
                 x_te.astype(np.float32), y_te.astype(np.int32), num_classes)


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
  d = load_digits()
  return (d.images[..., None] / 16.0).astype(np.float32), d.target.astype(np.int32)


def _read_idx(path: str) -> np.ndarray:
  """Reads one IDX file (big-endian header: magic, dims; uint8 payload)."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
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
  return (x[..., None] / 255.0).astype(np.float32), y.astype(np.int32)


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
  return (x / 255.0).astype(np.float32), y


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
