"""Data sources, splits and the padded pool."""

import gzip
import os

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from al_jax import data


def cfg(**kw):
  base = dict(name="digits", test_size=0.25, normalize=True, max_train=None, max_test=None,
              data_dir=None, path=None)
  base.update(kw)
  return ml_collections.ConfigDict(base)


def test_digits_split_is_stratified_and_normalised():
  ds = data.load(cfg(), seed=0)
  assert ds.x_train.shape[1:] == (8, 8, 1) and ds.num_classes == 10
  assert len(ds.x_train) + len(ds.x_test) == 1797
  assert abs(len(ds.x_test) - 0.25 * 1797) <= 10
  # Each class keeps (about) its share in the test split.
  full = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
  test = np.bincount(ds.y_test, minlength=10)
  np.testing.assert_allclose(test / full, 0.25, atol=0.02)
  np.testing.assert_allclose(ds.x_train.mean(), 0.0, atol=1e-4)
  np.testing.assert_allclose(ds.x_train.std(), 1.0, atol=1e-3)


def test_same_seed_same_split_other_seed_differs():
  a, b, c = (data.load(cfg(), seed=s) for s in (0, 0, 1))
  np.testing.assert_array_equal(a.y_test, b.y_test)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  assert not np.array_equal(a.x_test, c.x_test)


def test_make_pool_pads_with_invalid_rows():
  x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
  y = np.arange(10, dtype=np.int32) % 3
  pool = data.make_pool(x, y, multiple=8)
  assert pool.x.shape[0] == 16 and pool.size == 10
  np.testing.assert_array_equal(pool.ids[:10], np.arange(10))
  assert (pool.ids[10:] == -1).all() and (pool.y[10:] == -1).all()
  assert pool.valid[:10].all() and not pool.valid[10:].any()


def _write_idx(path, arr):
  header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_loader_reads_files_built_here(tmp_path):
  rng = np.random.default_rng(0)
  imgs = rng.integers(0, 256, size=(50, 28, 28))
  labels = np.arange(50) % 10
  _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
  ds = data.load(cfg(name="mnist_idx", path=str(tmp_path), test_size=10, normalize=False), 0)
  assert ds.x_train.shape == (40, 28, 28, 1) and len(ds.x_test) == 10
  # Every image comes back with its own label, scaled to [0, 1].
  x_all = np.concatenate([ds.x_train, ds.x_test])[..., 0]
  y_all = np.concatenate([ds.y_train, ds.y_test])
  for xi, yi in zip(x_all, y_all):
    match = np.flatnonzero((np.abs(imgs / 255.0 - xi) < 1e-6).all(axis=(1, 2)))
    assert len(match) == 1 and labels[match[0]] == yi


def test_built_in_mnist10k_is_the_real_t10k_split_without_a_path():
  ds = data.load(cfg(name="mnist10k", test_size=2000, normalize=False), 0)
  # The same split as the IDX files read by path (numbers of earlier runs stay).
  by_path = data.load(cfg(name="mnist_idx", path=data.MNIST10K_DIR, test_size=2000,
                          normalize=False), 0)
  np.testing.assert_array_equal(ds.y_test, by_path.y_test)
  np.testing.assert_array_equal(ds.x_train, by_path.x_train)
  assert ds.num_classes == 10
  assert ds.x_train.shape == (8000, 28, 28, 1) and ds.x_test.shape == (2000, 28, 28, 1)
  counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
  np.testing.assert_array_equal(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
  assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_shipped_mnist_files_match_their_readme_checksums():
  import hashlib
  readme = open(os.path.join(data.MNIST10K_DIR, "..", "README.md")).read()
  for name in os.listdir(data.MNIST10K_DIR):
    with open(os.path.join(data.MNIST10K_DIR, name), "rb") as f:
      assert f"{hashlib.sha256(f.read()).hexdigest()}  {name}" in readme, name


def test_num_classes_comes_from_the_registry_not_the_labels(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, size=(40, 4, 4)))
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(40) % 3)  # labels 0-2 only
  ds = data.load(cfg(name="mnist_idx", path=str(tmp_path), test_size=8), 0)
  assert ds.num_classes == 10  # not 3, the largest label + 1
  # Adding a dataset is one registry entry; labels beyond its classes are one error.
  blobs = data.Source(lambda c, rng, seed: ((np.zeros((6, 2, 2, 1)), np.arange(6) % 4),
                                            (np.zeros((2, 2, 2, 1)), np.arange(2))), 3)
  monkeypatch.setitem(data.DATASETS, "blobs", blobs)
  assert "blobs" in data.known_datasets()
  with pytest.raises(ValueError, match="'blobs' has 3 classes but a label 3"):
    data.load(cfg(name="blobs"), 0)
  monkeypatch.setitem(data.DATASETS, "blobs", blobs._replace(num_classes=4))
  assert data.load(cfg(name="blobs"), 0).num_classes == 4


def test_idx_loader_bad_path_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere"):
    data.load(cfg(name="mnist_idx", path=str(tmp_path / "nowhere")), 0)


@pytest.mark.parametrize("name,shape", [("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1)),
                                        ("svhn_cropped", (32, 32, 3))])
def test_tfds_loader_under_mock_data(name, shape):
  with tfds.testing.mock_data(num_examples=24):
    ds = data.load(cfg(name=name), 0)
  assert ds.x_train.shape == (24,) + shape and ds.x_test.shape == (24,) + shape
  assert ds.y_train.dtype == np.int32 and ds.num_classes == 10


def test_tfds_missing_dataset_is_one_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"'cifar10'.*not prepared"):
    data.load(cfg(name="cifar10", data_dir=str(tmp_path)), 0)


def test_unknown_dataset():
  with pytest.raises(ValueError, match="Unknown dataset 'imagenet_xxl'"):
    data.load(cfg(name="imagenet_xxl"), 0)


def test_subsample_and_synthetic():
  c = cfg(name="synthetic", num_examples=100, num_classes=5, max_train=30, max_test=7)
  ds = data.load(c, 3)
  assert len(ds.x_train) == 30 and len(ds.x_test) == 7 and ds.num_classes == 5
