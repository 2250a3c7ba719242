"""The table arithmetic of benchmarks/bald_mnist.py on hand-made histories."""

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bald_mnist.py")
_spec = importlib.util.spec_from_file_location("bald_mnist_benchmark", _PATH)
bald_mnist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bald_mnist)


def test_acquired_to_reach_counts_labels_beyond_the_initial_set_at_the_first_hit():
  hist = [{"num_labelled": 20 + 10 * r, "accuracy": a}
          for r, a in enumerate([0.5, 0.91, 0.89, 0.96])]
  assert bald_mnist.acquired_to_reach(hist, 0.90, 20) == 10
  assert bald_mnist.acquired_to_reach(hist, 0.95, 20) == 30
  assert bald_mnist.acquired_to_reach(hist, 0.99, 20) is None


def test_fmt_reports_seeds_that_never_reach_the_target():
  assert bald_mnist.fmt([150, 170], 380) == "160 ± 14 (150, 170)"  # sd with ddof 1
  assert bald_mnist.fmt([None, None], 380) == "> 380 (2/2 seeds)"
  assert bald_mnist.fmt([200, None], 380) == "200; 1 seed(s) > 380"
  assert bald_mnist.fmt([], 380) == "—"


def test_aubc_spread_is_the_sample_sd_and_a_student_t_interval():
  mean, sd, lo, hi = bald_mnist.spread([0.80, 0.82, 0.84])
  assert abs(mean - 0.82) < 1e-12 and abs(sd - 0.02) < 1e-12       # ddof 1 (ddof 0: 0.0163)
  half = 4.302652729911275 * 0.02 / 3 ** 0.5                         # t(0.975, 2 dof), not 1.96
  assert abs(lo - (0.82 - half)) < 1e-9 and abs(hi - (0.82 + half)) < 1e-9
  assert bald_mnist.fmt_aubc([0.80, 0.82, 0.84]) == "0.8200 ± 0.0200 [0.7703, 0.8697]"
  assert bald_mnist.fmt_aubc([0.8]) == "0.8000 (1 seed)"
