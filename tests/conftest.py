"""Tests run on 8 fake CPU devices (set before JAX initialises).

The default run (`pytest -q -n 2`, pytest.ini adds `-m "not slow"`) keeps one
end-to-end case per mechanism; SLOW below names the tests that run only with
`-m slow`, in one place so test files stay untouched by the choice. The run
ends by saying how many slow tests it left out.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

# Node ids run only with `-m slow` (an entry ending in "[" or "::", or with
# an unclosed "[", covers every test it prefixes). Besides these, tests carry
# @pytest.mark.slow themselves. What stays in the default run, one case per
# mechanism:
#   - smoke runs of configs: default (top-k), coreset_digits (k-center),
#     badge_digits and egl_digits (gradients), forgetting_digits (a training
#     extension), uncertain_gcn_digits (a network trained inside select),
#     mnist10k:coreset (CNN on MNIST-10k); the TFDS loader under mock data
#     (test_data.py; margin_cifar10's whole ResNet run is slow);
#   - the 1-vs-8-device check of whole runs for random (bald, badge: slow);
#   - parallel seeds: entropy (vmap and map) selects like single runs;
#   - each module's own tests against NumPy references (ResNet-18 / VGG-16,
#     repeated-shape and subprocess variants run with -m slow).
SLOW = (
    # Config smoke runs whose mechanism has a default case above (each 5-60 s of CPU).
    *(f"tests/test_loop.py::test_every_config_runs_smoke[{name}]" for name in (
        *(f"digits:{s}" for s in ("alfa_mix", "core_gcn", "dfal", "el2n", "grand", "isal",
                                  "ll4al", "sraal", "ta_vaal", "vaal", "waal")),
        *(f"mnist10k:{s}" for s in ("alfa_mix", "badge", "core_gcn", "dfal", "egl", "el2n",
                                    "forgetting", "grand", "isal", "ll4al", "sraal", "ta_vaal",
                                    "uncertain_gcn", "vaal", "waal")),
        "digits:entropy,table", "mnist10k:entropy,table", "mnist", "bald_mnist",
        "badge_cifar10", "coreset_cifar10")),
    # ResNet-18 cases of the per-example taps (minutes of CPU); the MLP and
    # CNN cases stay in the default run.
    *(f"tests/test_per_example_taps.py::{t}[resnet18]" for t in (
        "test_one_and_eight_devices_agree", "test_projection_is_the_fixed_sketch_of_each_gradient",
        "test_loss_dot_equals_jvp")),
    # Device checks beyond one per mechanism (all strategies run with -m slow).
    # (entropy's and coreset's selections have their own 1-vs-8 tests in
    # test_uncertainty.py and test_kcenter.py.)
    *(f"tests/test_loop.py::test_one_device_and_eight_devices_select_the_same_ids[{s}]"
      for s in ("typiclust", "forgetting", "vaal", "entropy", "coreset")),
    # Second cases of one mechanism (each 6-25 s of CPU).
    "tests/test_multiprocess.py::test_kill_one_process_then_relaunch_resumes",
    "tests/test_waal.py::test_alpha_zero_trains_exactly_like_cross_entropy_and_the_critic_learns",
    "tests/test_vaal.py::test_training_decreases_both_losses_and_d_separates_the_sets[sraal]",
    "tests/test_vaal.py::test_training_decreases_both_losses_and_d_separates_the_sets[ta_vaal]",
    "tests/test_ll4al.py::test_detached_module_leaves_the_backbone_as_cross_entropy_trains_it",
    "tests/test_accuracy_benchmark.py::"
    "test_runs_each_strategy_with_its_own_config_and_the_overrides",
    "tests/test_loop.py::test_resume_after_a_kill_gives_the_same_ids[True]",
    "tests/test_loop.py::test_warm_ll4al_resume_continues_the_loss_module",  # ~20 s CPU
    "tests/test_loop.py::test_every_config_runs_smoke[digits:bald]",  # = device [bald]
    "tests/test_models.py::test_mc_masks_do_not_depend_on_the_batch[cnn-shape1-kw1]",
    # Parallel seeds against single runs: the default run keeps entropy (vmap
    # and map), forgetting (a training extension) and typiclust (host-side select).
    *(f"tests/test_seeds.py::test_each_seed_selects_what_its_single_run_selects[{s}-vmap]"
      for s in ("random", "coreset", "badge", "bald")),
    "tests/test_seeds.py::test_resume_after_a_kill_gives_the_same_ids[digits:ll4al-True]",
    # Subprocess variants; in-process tests of the same rule stay (test_faults.py).
    "tests/test_faults.py::test_kill_at_random_points_resumes_to_the_same_ids",
    "tests/test_faults.py::test_second_run_into_a_busy_workdir_fails_at_once_naming_the_holder",
    "tests/test_faults.py::test_cli_bad_value_is_one_error_line_and_writes_nothing[args1",
    "tests/test_faults.py::test_cli_bad_value_is_one_error_line_and_writes_nothing[args2",
    "tests/test_faults.py::"
    "test_huge_learning_rate_stops_every_optimizer_and_the_fix_reuses_the_workdir[adamw]",
    "tests/test_faults.py::"
    "test_huge_learning_rate_stops_every_optimizer_and_the_fix_reuses_the_workdir[sgd]",
    "tests/test_precision.py::test_uint8_pool_run_selects_like_the_float_pool",
    # Model variants: the MLP and one CNN shape stay in the default run.
    *(f"tests/test_models.py::{t}[{v}]"
      for t in ("test_views_shapes_and_head_of_embed", "test_mc_masks_do_not_depend_on_the_batch")
      for v in ("cnn-shape2-kw2", "resnet18-shape3-kw3", "vgg16_bn-shape4-kw4")),
    "tests/test_models.py::test_conv2d_matches_lax_values_and_gradients[VALID-3-5]",
    "tests/test_models.py::test_conv2d_matches_lax_values_and_gradients[SAME-4-3]",
    # Second and third cases of one mechanism, measured as the costliest of the
    # default run (2026-12-01, --durations): the MLP/CNN cases and one per
    # mechanism stay; every case still runs in CI's slow set.
    *(f"tests/test_per_example_taps.py::{t}[{m}]" for t in (
        "test_loss_dot_equals_jvp", "test_grad_norms_equal_vmap_grad",
        "test_class_grad_norms_equal_vmap_grad") for m in ("vgg16_bn", "resnet18", "cnn_same")
      if (t, m) != ("test_loss_dot_equals_jvp", "resnet18")),
    "tests/test_per_example_taps.py::test_projection_is_the_fixed_sketch_of_each_gradient[cnn]",
    *(f"tests/test_contract.py::{t}[{s}]" for t in (
        "test_unlabelled_labels_are_never_read", "test_selection_is_the_unlabelled_ids")
      for s in ("ta_vaal", "sraal", "waal", "ll4al", "isal")),
    "tests/test_vaal.py::test_first_iteration_losses_match_an_independent_composition[vaal]",
    "tests/test_vaal.py::test_first_iteration_losses_match_an_independent_composition[ta_vaal]",
    "tests/test_loop.py::test_every_config_runs_smoke[margin_cifar10]",
    "tests/test_loop.py::test_one_device_and_eight_devices_select_the_same_ids[bald]",
    "tests/test_loop.py::test_one_device_and_eight_devices_select_the_same_ids[badge]",
    *(f"tests/test_models.py::test_call_returns_logits_and_out[{v}]"
      for v in ("resnet18-shape3-kw3", "vgg16_bn-shape4-kw4")),
    "tests/test_isal.py::test_isal_selects_the_rows_whose_upweighting_lowers_the_held_out_loss_most",
    "tests/test_ll4al.py::test_loop_passes_the_trained_module_to_the_next_round_only_when_warm",
    "tests/test_mc.py::test_cnn_masks_are_shared_across_batches",
    *(f"tests/test_diversity.py::test_valid_deterministic_and_device_independent[{s}]"
      for s in ("kmeans", "probcover", "coreset_mip", "typiclust")),
    "tests/test_gradient_paths_digits.py::test_digits_scores_and_picks_are_unchanged[isal-",
    "tests/test_precision.py::test_bfloat16_training_on_digits_matches_float32_within_one_point",
    "tests/test_accelerator.py::test_vaal_select_runs_under_the_loop_mesh",
    "tests/test_isal.py::test_held_out_s_test_ranks_unlike_g_dot_v",
    "tests/test_waal.py::test_long_epoch_runs_over_the_unlabelled_set_as_the_reference",
    "tests/test_ll4al.py::test_module_learns_to_rank_the_losses",
    "tests/test_seeds.py::test_each_seed_selects_what_its_single_run_selects[typiclust-vmap]",
    "tests/test_seeds.py::test_each_seed_selects_what_its_single_run_selects[forgetting-vmap]",
    "tests/test_seeds.py::test_resume_after_a_kill_gives_the_same_ids[default-False]",
    "tests/test_seeds.py::test_seeds_axis_on_the_mesh_selects_the_ids_of_one_device",
    "tests/test_alfa_mix.py::test_select_takes_candidates_fills_randomly_and_is_deterministic",
    "tests/test_vaal.py::test_first_iteration_losses_match_an_independent_composition[sraal]",
    "tests/test_contract.py::test_selection_is_the_unlabelled_ids[batchbald]",
    "tests/test_mc.py::test_sample_k_is_one_network_whatever_the_batch",
    "tests/test_vaal.py::test_conv_vae_reconstruction_improves_and_separates_with_the_adversary",
    "tests/test_gradient_embeddings.py::test_badge_full_projected_seeds_on_the_projected_gradients",
    "tests/test_main.py::test_strategy_kw_override_for_a_strategy_named_on_the_command_line",
    "tests/test_isal.py::test_loop_holds_out_validation_rows_and_reports_their_accuracy",
    "tests/test_docs.py::test_library_examples_run",
    "tests/test_multiprocess.py::test_launch_two_processes_matches_single_process",
    "tests/test_waal.py::test_one_train_mode_forward_pass_per_set_and_step",
    # The array-level API against the runner: every strategy with -m slow.
    *(f"tests/test_api.py::test_same_ids_as_the_runner[{case}]" for case in (
        "least_confidence-", "margin-", "bayesian_lc-", "bayesian_entropy-",
        "variation_ratios-", "mean_std-", "power_entropy-", "coreset_mip-", "kmeans-num_iters",
        "typiclust-min_cluster_size-num_iters", "probcover-num_iters", "kmeans-normalize",
        "badge-bias", "power_bald-beta", "probcover-delta")),
)


def _is_slow(nodeid: str) -> bool:
  # An entry without "]" after its "[" is a prefix of parametrised ids.
  return any(nodeid == s or (s.endswith(("[", "::")) or ("[" in s and not s.endswith("]")))
             and nodeid.startswith(s) for s in SLOW)


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: long-running; run with `pytest -m slow`")


@pytest.hookimpl(tryfirst=True)  # Before `-m` deselects by marker.
def pytest_collection_modifyitems(config, items):
  for item in items:
    if _is_slow(item.nodeid):
      item.add_marker(pytest.mark.slow)
  # A renamed test silently leaves SLOW: when the whole suite is collected,
  # every entry must still name a test.
  if not config.args or config.args == ["tests"]:
    stale = [s for s in SLOW if not any(
        _is_slow(i.nodeid) and (i.nodeid == s or i.nodeid.startswith(s)) for i in items)]
    if stale:
      raise pytest.UsageError(f"tests/conftest.py SLOW names no test: {stale}")


_LEFT_OUT = {"slow": 0}


def pytest_deselected(items):
  _LEFT_OUT["slow"] += sum(1 for i in items if i.get_closest_marker("slow"))


def pytest_sessionfinish(session):
  # Under xdist, workers collect: hand the count to the controller.
  if hasattr(session.config, "workeroutput"):
    session.config.workeroutput["slow_left_out"] = _LEFT_OUT["slow"]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
  del error
  n = getattr(node, "workeroutput", {}).get("slow_left_out", 0)
  _LEFT_OUT["slow"] = max(_LEFT_OUT["slow"], n)  # Every worker collects the whole suite.


def pytest_terminal_summary(terminalreporter):
  n = _LEFT_OUT["slow"]
  if n:
    terminalreporter.write_line(
        f"{n} slow tests left out; run them with `.venv/bin/python -m pytest -q -n 2 -m slow`")


@pytest.fixture(scope="session")
def devices():
  assert jax.device_count() == 8, jax.devices()
  return jax.devices()
