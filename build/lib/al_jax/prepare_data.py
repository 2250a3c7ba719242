"""Prepares a TFDS image dataset once, in the array_record format al_jax reads.

  pip install -r requirements-prepare.txt     # TensorFlow, for preparation only
  python -m al_jax.prepare_data cifar10 --data_dir ~/tensorflow_datasets

Needs network access (it downloads). The library itself never imports
TensorFlow: it reads the prepared files with `tfds.data_source`.
"""

import sys

from absl import app, flags

from al_jax import data

_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data folder (default: TFDS's own).")


def main(argv):
  if len(argv) != 2 or argv[1] not in data.TFDS_NAMES:
    sys.exit(f"usage: python -m al_jax.prepare_data NAME [--data_dir DIR]; "
             f"NAME in {list(data.TFDS_NAMES)}")
  import tensorflow_datasets as tfds
  builder = tfds.builder(argv[1], data_dir=_DATA_DIR.value)
  builder.download_and_prepare(file_format="array_record")
  print(f"prepared {argv[1]} in {builder.data_dir}")


if __name__ == "__main__":
  app.run(main)
