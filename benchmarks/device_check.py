"""One prepared accelerator check: correctness, determinism, speed and scale.

  bash benchmarks/device_check.sh --out $OUT [--wheels .whl]     # on a GPU, about 8 minutes
  python benchmarks/device_check.py --tiny --out /tmp/dc             # CPU, under a minute

Sections (each in its own subprocess with its own time limit, so a crash,
an out-of-memory or a hang loses that section only; results are written
after every section, as device_check.json and device_check.md in --out):

  meta         JAX / torch versions, backend, device name and memory.
  correctness  a chosen subset of the test suite on this backend (every
               selection mechanism, the conv models on XLA's own GPU
               convolutions, MC dropout, per-example gradients), run with
               pytest; tests that need 8 devices are skipped on one.
  determinism  the same AL run (entropy, badge, coreset, bald; MNIST-10k
               sized) twice with `config.deterministic=True`: identical
               ids?, and once without, to time what the flags cost.
  throughput   ResNet-18 training images/s at 32x32x3, batch 128: al_jax's
               train step (float32 and bfloat16) vs a PyTorch ResNet-18 of
               the same architecture and optimiser, eager and torch.compile.
  badge_round  one full round of configs/badge_cifar10.py on synthetic
               CIFAR-shaped data (50,000 pool, 10,000 test): train, score
               and select seconds, and the whole protocol extrapolated.
  scale        selection on one device: coreset (k=1,000) and BADGE (1,000
               picks) on a 1,000,000 x 512 pool with C=10; BALD and
               BatchBALD on [1,000,000, 20, 10] log-probabilities: seconds
               and peak device memory.
  seeds        the GPU rows of benchmarks/seeds_speed.py: whole runs (one
               query round) of the digits MLP and MNIST-10k MLP protocols,
               one seed against 8 seeds as one program (al.num_seeds=8);
               the target is 8 seeds in at most 1.5x one seed's time.

`--tiny` shrinks every size so the whole check runs on a CPU in the test
suite (tests/test_device_check.py): the script cannot rot unnoticed.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script: import al_jax and configs from this checkout
  sys.path.insert(0, ROOT)
SECTIONS = ("meta", "correctness", "determinism", "throughput", "badge_round", "scale",
            "seeds")

# Seconds each section may take on the GPU (8 minutes in all) and on a CPU
# with --tiny. A section past its limit is killed; what it wrote stays.
LIMITS = {
    "full": {"meta": 20, "correctness": 70, "determinism": 90, "throughput": 150,
             "badge_round": 75, "scale": 70, "seeds": 60},
    # Side by side on a shared CPU: generous, only a guard against hangs.
    "tiny": {"meta": 300, "correctness": 300, "determinism": 300, "throughput": 300,
             "badge_round": 300, "scale": 300, "seeds": 300},
}

SIZES = {
    "full": dict(
        det_pool=10000, det_test=2000, det_shape=(28, 28, 1), det_model="cnn",
        det_model_kw=dict(filters=32, kernel_size=4, padding="VALID", dense=128,
                          dropout_conv=0.25, dropout_dense=0.5),
        det_query=100, det_steps=300, det_rounds=2,
        tp_model="resnet18", tp_model_kw=dict(width=64), tp_shape=(32, 32, 3), tp_batch=128,
        tp_steps=50,
        round_pool=60000, round_test=10000, round_shape=(32, 32, 3),
        round_model="resnet18", round_model_kw=dict(width=64), round_epochs=100,
        torch_compile=True,
        scale_n=1_000_000, scale_d=512, scale_c=10, scale_k=20, scale_budget=1000,
        scale_labelled=1000, batchbald_budget=100,
        seeds_models=("digits_mlp", "mnist10k_mlp"), seeds_s=8, seeds_rounds=1),
    "tiny": dict(
        det_pool=240, det_test=60, det_shape=(8, 8, 1), det_model="mlp",
        det_model_kw=dict(hidden=(16,), dropout=0.3), det_query=8, det_steps=4, det_rounds=1,
        # Tiny CPU runs: small fast-compiling models in place of ResNet-18
        # (PyTorch's ResNet-18 still runs, eager, at width 2).
        tp_model="mlp", tp_model_kw=dict(hidden=(8,)), tp_shape=(8, 8, 3), tp_batch=8,
        tp_steps=2, torch_width=2,
        round_pool=160, round_test=40, round_shape=(8, 8, 3),
        round_model="mlp", round_model_kw=dict(hidden=(8,), dropout=0.0), round_epochs=1,
        torch_compile=False,
        scale_n=512, scale_d=8, scale_c=3, scale_k=4, scale_budget=8, scale_labelled=8,
        batchbald_budget=4,
        seeds_models=("digits_mlp",), seeds_s=2, seeds_rounds=0),
}

# The correctness subset: one or more tests for every selection mechanism,
# the conv models, MC dropout and per-example gradients. None of them needs
# 8 devices (those skip on one device, see device_check_plugin.py).
CORRECTNESS_TESTS = (
    # masked top-k (uncertainty, Bayesian top-k)
    "tests/test_uncertainty.py::test_uncertainty_matches_numpy",
    "tests/test_uncertainty.py::test_masked_top_k_never_returns_labelled_padding_or_nan_first",
    "tests/test_uncertainty.py::test_end_to_end_score_on_a_real_model",
    "tests/test_bayesian.py::test_top_k_strategies_match_numpy",
    "tests/test_bayesian.py::test_power_ids_unique_unlabelled_and_seeded",  # stochastic top-k
    # k-center greedy and the MIP
    "tests/test_kcenter.py::test_matches_numpy_reference",
    "tests/test_kcenter.py::test_coreset_mip_strategy_ids_and_determinism",
    # BADGE k-means++ on gradient factors
    "tests/test_badge.py::test_factors_are_the_last_layer_gradient_and_distances_match_materialised",
    "tests/test_badge.py::test_second_centre_follows_d_squared",
    # BatchBALD
    "tests/test_batchbald.py::test_exact_matches_exhaustive_enumeration",
    "tests/test_batchbald.py::test_batch_of_one_is_bald_top_1",
    # k-means, typiclust, probcover, cluster-margin
    "tests/test_diversity.py::test_kmeans_equals_numpy_lloyd_from_the_same_seeds",
    "tests/test_diversity.py::test_typicality_equals_brute_force",
    "tests/test_diversity.py::test_probcover_greedy_equals_brute_force",
    "tests/test_diversity.py::test_cluster_margin_picks_low_margin_rows_over_clusters",
    # DFAL, ALFA-Mix, WAAL, LL4AL, GCNs, VAAL family
    "tests/test_dfal.py::test_nonlinear_matches_loop_and_stops_once_the_label_flips",
    "tests/test_alfa_mix.py::test_candidates_match_explicit_mixing",
    "tests/test_waal.py::test_critic_and_gradient_penalty_match_numpy",
    "tests/test_ll4al.py::test_loss_module_pools_and_predicts_like_numpy",
    "tests/test_gcn.py::test_graph_and_propagation_match_dense_numpy_and_ignore_padding",
    "tests/test_vaal.py::test_select_is_the_top_k_of_the_trained_scores_among_unlabelled",
    # gradient strategies and per-example gradients
    "tests/test_egl.py::test_full_network_and_last_layer_egl_match_the_loop",
    "tests/test_isal.py::test_scores_are_minus_influence_from_a_per_example_loop",
    "tests/test_per_example.py::test_grad_norms_match_a_loop",
    "tests/test_per_example.py::test_last_layer_closed_form_matches_autodiff",
    "tests/test_data_diet.py::test_scores_with_predicted_labels_at_trained_and_at_init",
    "tests/test_forgetting.py::test_training_hook_records_one_update_per_epoch",
    # conv models on this backend's convolutions, MC dropout, BatchNorm
    "tests/test_models.py::test_views_shapes_and_head_of_embed",
    "tests/test_models.py::test_conv2d_matches_lax_values_and_gradients",
    "tests/test_models.py::test_cnn_conv_layers_equal_nnx_conv",
    "tests/test_models.py::test_conv2d_forward_mode_and_hessian_vector_products",
    "tests/test_models.py::test_train_view_updates_batch_norm_stats_and_eval_uses_them",
    "tests/test_mc.py::test_sample_k_is_one_network_whatever_the_batch",
    "tests/test_mc.py::test_cnn_masks_are_shared_across_batches",
    "tests/test_mc.py::test_reductions_match_numpy",
    # mixed precision
    "tests/test_precision.py::test_bfloat16_views_compute_in_bf16_and_return_float32",
)
TINY_CORRECTNESS_TESTS = (
    "tests/test_uncertainty.py::test_masked_top_k_never_returns_labelled_padding_or_nan_first",
    "tests/test_kcenter.py::test_random_start_is_seeded",
)
DET_STRATEGIES = ("entropy", "badge", "coreset", "bald")


# ----------------------------------------------------------------------------
# Driver: one subprocess per section, results merged into one report.


def main(argv=None):
  args = parse(argv)
  if args.worker:
    return worker(args)
  mode = "tiny" if args.tiny else "full"
  out = os.path.abspath(args.out or os.environ.get("OUT") or "device_check_out")
  os.makedirs(out, exist_ok=True)
  report = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "host": platform.node(), "argv": sys.argv[1:], "sections": {}}
  wanted = [s for s in SECTIONS if s in args.sections.split(",")] if args.sections else SECTIONS
  unknown = set(args.sections.split(",")) - set(SECTIONS) - {""}
  if unknown:
    raise SystemExit(f"error: unknown --sections {sorted(unknown)}; known: {list(SECTIONS)}")
  deadline = time.monotonic() + args.budget if args.budget else None

  def done(name, sec):
    report["sections"][name] = sec
    write_report(report, out)
    print(f"[device_check] {name}: {sec['status']} ({sec.get('seconds', 0):.0f} s)", flush=True)

  if mode == "tiny":
    # CPU: the sections only prove the code runs; run them side by side
    # (compiling is mostly single-threaded) and share a compilation cache.
    cache = tempfile.mkdtemp(prefix="dc_jax_cache_")
    os.environ.update(JAX_COMPILATION_CACHE_DIR=cache,
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    with concurrent.futures.ThreadPoolExecutor(len(wanted)) as pool:
      futures = {pool.submit(run_section, n, args, mode, LIMITS[mode][n], out): n
                 for n in wanted}
      for f in concurrent.futures.as_completed(futures):
        done(futures[f], f.result())
    shutil.rmtree(cache, ignore_errors=True)
    report["sections"] = {n: report["sections"][n] for n in wanted}
  else:
    for name in wanted:  # one at a time: the timings must not share the GPU
      limit = LIMITS[mode][name]
      if deadline is not None:
        limit = min(limit, int(deadline - time.monotonic()))
      if limit < 5:
        done(name, {"status": "skipped", "reason": "no time left in --budget"})
      else:
        done(name, run_section(name, args, mode, limit, out))
  report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
  write_report(report, out)
  print(open(os.path.join(out, "device_check.md")).read())
  return 0


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU, test suite)")
  p.add_argument("--out", help="output folder (default: $OUT, else ./device_check_out)")
  p.add_argument("--sections", default="", help=f"comma list of {SECTIONS} (default all)")
  p.add_argument("--budget", type=float, default=0,
                 help="seconds for all sections together (0: the sum of their limits)")
  p.add_argument("--mnist_dir", default="",
                 help="folder with the MNIST t10k IDX files for the determinism runs "
                      "(default: synthetic MNIST-shaped data)")
  p.add_argument("--worker", default="", help=argparse.SUPPRESS)
  p.add_argument("--result", default="", help=argparse.SUPPRESS)
  p.add_argument("--deterministic", type=int, default=0, help=argparse.SUPPRESS)
  p.add_argument("--limit", type=float, default=600, help=argparse.SUPPRESS)
  return p.parse_args(argv)


def run_section(name, args, mode, limit, out):
  """Runs one section's worker in a subprocess; never raises."""
  t0 = time.monotonic()
  fd, result = tempfile.mkstemp(prefix=f"dc_{name}_", suffix=".json")
  os.close(fd)
  cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--result", result]
  cmd += ["--tiny"] if mode == "tiny" else []
  cmd += ["--mnist_dir", args.mnist_dir] if args.mnist_dir else []
  cmd += ["--limit", str(limit)]
  rc, tail = run_cmd(cmd, limit, env=worker_env(mode), new_session=True)
  try:
    with open(result) as f:
      sec = json.load(f)
  except (OSError, ValueError):
    sec = {}
  os.unlink(result)
  if rc == "timeout":
    sec.setdefault("error", f"section killed after its {limit} s limit")
    sec["status"] = "timeout"
  elif rc != 0 and sec.get("status") != "error":
    sec["status"] = "error"
    sec.setdefault("error", f"worker exited with {rc}")
  sec.setdefault("status", "ok")
  if sec["status"] != "ok":
    sec["log_tail"] = tail[-3000:]
  sec["seconds"] = time.monotonic() - t0
  with open(os.path.join(out, f"{name}.log"), "w") as f:
    f.write(tail)
  return sec


def run_cmd(cmd, limit, env=None, cwd=ROOT, new_session=False):
  """Runs cmd with a time limit; returns (exit code or "timeout", stdout+stderr).

  The driver starts each section in a new process group (new_session) and
  kills the whole group on timeout, the section's own subprocesses with it;
  those therefore stay in their section's group.
  """
  proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=new_session)
  try:
    output, _ = proc.communicate(timeout=limit)
    return proc.returncode, output
  except subprocess.TimeoutExpired:
    if new_session:
      os.killpg(proc.pid, signal.SIGKILL)
    else:
      proc.kill()
    output, _ = proc.communicate()
    return "timeout", output


def worker_env(mode):
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
  env["PYTHONUNBUFFERED"] = "1"
  # JAX would take 75% of the GPU up front; torch shares the GPU in one
  # section, and peak-memory numbers should be what a computation needs.
  env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  env["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL", "2")
  if mode == "tiny":
    env["JAX_PLATFORMS"] = "cpu"
  return env


def write_report(report, out):
  tmp = os.path.join(out, "device_check.json.tmp")
  with open(tmp, "w") as f:
    json.dump(report, f, indent=1, default=str)
  os.replace(tmp, os.path.join(out, "device_check.json"))
  with open(os.path.join(out, "device_check.md"), "w") as f:
    f.write(markdown(report))


def markdown(report) -> str:
  meta = report["sections"].get("meta", {}).get("result", {})
  lines = [f"# al_jax device check ({report['mode']})", "",
           f"Device: {meta.get('device', '?')} ({meta.get('backend', '?')}), "
           f"jax {meta.get('jax', '?')}, jaxlib {meta.get('jaxlib', '?')}, "
           f"torch {meta.get('torch', '?')}; started {report['started']}.", "",
           "| section | item | value | note |", "|---|---|---|---|"]
  for name, sec in report["sections"].items():
    status = sec["status"]
    head = f"{status}, {sec.get('seconds', 0):.0f} s"
    if status != "ok":
      head += ": " + str(sec.get("error") or sec.get("reason", "")).splitlines()[-1][:150]
    lines.append(f"| **{name}** | | | {head} |")
    for row in sec.get("rows", []):
      item, value, note = (list(row) + ["", ""])[:3]
      lines.append(f"| | {item} | {fmt(value)} | {note} |")
  return "\n".join(lines) + "\n"


def fmt(v):
  if isinstance(v, float):
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
  return str(v)


# ----------------------------------------------------------------------------
# Workers: each writes {"status", "rows": [(item, value, note)], "result"}
# to --result after every measurement, so a timeout keeps what was done.


class Section:

  def __init__(self, path):
    self.path, self.rows, self.result, self.errors = path, [], {}, []
    self.save()

  def row(self, item, value, note=""):
    self.rows.append((item, value, note))
    self.save()

  def save(self, status="running"):
    doc = {"status": status, "rows": self.rows, "result": self.result}
    if self.errors:
      doc["error"] = "; ".join(self.errors)
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(doc, f, default=str)
    os.replace(tmp, self.path)

  def guard(self, what, fn, *a, **kw):
    """Runs one measurement; an exception is recorded, not raised."""
    try:
      return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001 -- the report must survive any failure
      msg = f"{what}: {type(e).__name__}: {str(e)[:300]}"
      self.errors.append(msg)
      self.result.setdefault("tracebacks", {})[what] = traceback.format_exc()[-2000:]
      self.row(what, "error", msg[:200])
      return None


def worker(args):
  sizes = SIZES["tiny" if args.tiny else "full"]
  sec = Section(args.result)
  workers = {"meta": w_meta, "correctness": w_correctness, "determinism": w_determinism,
             "throughput": w_throughput, "badge_round": w_badge_round, "scale": w_scale,
             "seeds": w_seeds, "det_run": w_det_run,
             **{f"scale_{p}": w_scale_one for p in SCALE_PARTS}}
  fn = workers[args.worker]
  try:
    fn(sec, sizes, args)
  except Exception as e:  # noqa: BLE001
    sec.errors.append(f"{type(e).__name__}: {str(e)[:500]}")
    sec.result["traceback"] = traceback.format_exc()[-3000:]
    sec.save("error")
    return 1
  sec.save("error" if sec.errors else "ok")
  return 0


def w_meta(sec, sizes, args):
  del sizes, args
  import jax
  import jaxlib
  dev = jax.devices()[0]
  sec.result.update(backend=jax.default_backend(), device=dev.device_kind,
                    num_devices=jax.device_count(), jax=jax.__version__,
                    jaxlib=jaxlib.__version__, python=platform.python_version(),
                    xla_flags=os.environ.get("XLA_FLAGS", ""))
  stats = dev.memory_stats() or {}
  sec.result["device_memory_gib"] = stats.get("bytes_limit", 0) / 2**30
  try:
    import torch
    sec.result["torch"] = torch.__version__
    sec.result["torch_cuda"] = bool(torch.cuda.is_available())
  except ImportError:
    sec.result["torch"] = "not installed"
  sec.result["conv2d_backward"] = ("custom GEMM JVP (CPU only)" if jax.default_backend() == "cpu"
                                   else "XLA's own convolution gradients")
  for k in ("device", "backend", "num_devices", "jax", "torch", "device_memory_gib",
            "conv2d_backward"):
    sec.row(k, sec.result[k])


def w_correctness(sec, sizes, args):
  del sizes
  tests = TINY_CORRECTNESS_TESTS if args.tiny else CORRECTNESS_TESTS
  env = dict(os.environ)
  # Compare against the NumPy references at full float32 precision (GPUs
  # otherwise run float32 matmuls and convolutions in TF32).
  env["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
  # --noconftest: the suite's conftest forces 8 fake CPU devices; here the
  # tests run on this machine's backend, and the plugin skips the tests
  # that need 8 devices.
  cmd = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--noconftest", "-p", "benchmarks.device_check_plugin", "-m", "not slow", *tests]
  t0 = time.perf_counter()
  # Stop pytest before the section's limit, so the outcomes so far survive.
  rc, out = run_cmd(cmd, max(args.limit - 15, 10), env=env)
  counts = {}
  for line in out.splitlines():  # -v: "tests/x.py::name[param] PASSED   [ 10%]"
    m = re.match(r"^(tests/\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", line)
    if m:
      counts.setdefault(m.group(2), []).append(m.group(1))
  sec.result.update(rc=rc, tests=list(tests), outcomes=counts, seconds=time.perf_counter() - t0)
  n = {k: len(v) for k, v in counts.items()}
  sec.row("tests passed", n.get("PASSED", 0), f"of {sum(n.values())} collected from "
          f"{len(tests)} ids")
  for kind in ("FAILED", "ERROR"):
    for t in counts.get(kind, []):
      sec.row(kind.lower(), t)
  if n.get("SKIPPED"):
    sec.row("skipped", n["SKIPPED"], "need 8 devices")
  if rc != 0 or n.get("FAILED") or n.get("ERROR") or not n.get("PASSED"):
    sec.errors.append(f"pytest exit {rc}: {n}")
    sec.result["pytest_tail"] = out[-4000:]


def det_config(sizes, args, strategy):
  from configs import common
  c = common.base_config()
  c.progress = False
  if args.mnist_dir:
    c.data.name, c.data.path, c.data.test_size = "mnist_idx", args.mnist_dir, sizes["det_test"]
    c.data.pool_dtype = "uint8"
  else:  # overlapping blobs: uncertain, MNIST-shaped
    c.data.name = "synthetic"
    c.data.num_examples, c.data.num_classes = sizes["det_pool"], 10
    c.data.shape, c.data.separation = sizes["det_shape"], 0.05
    c.data.test_size = sizes["det_test"]
  c.model_name, c.model = sizes["det_model"], sizes["det_model_kw"]
  c.al.initial_size, c.al.initial_balanced = 20, True
  c.al.query_size, c.al.num_rounds = sizes["det_query"], sizes["det_rounds"]
  c.train.batch_size = 8 if args.tiny else 64
  c.train.num_epochs, c.train.min_steps = 1, sizes["det_steps"]
  c.score.batch_size = c.eval.batch_size = 1000 if not args.tiny else 60
  c.strategy.name = strategy
  c.strategy.kw = common.strategy_kw(strategy)
  c.deterministic = bool(args.deterministic)
  return c


def w_det_run(sec, sizes, args):
  """One process: every DET_STRATEGIES run, ids and times."""
  from al_jax import determinism
  determinism.apply(bool(args.deterministic))  # before JAX starts
  from al_jax import loop, metrics
  for name in DET_STRATEGIES:
    def one():
      work = tempfile.mkdtemp(prefix=f"dc_det_{name}_")
      try:
        loop.run(det_config(sizes, args, name), work)
        sel = metrics.read_jsonl(os.path.join(work, "selected.jsonl"))
        rec = metrics.read_jsonl(os.path.join(work, "metrics.jsonl"))
      finally:
        shutil.rmtree(work, ignore_errors=True)
      sec.result[name] = {"ids": [s["ids"] for s in sel],
                          "accuracy": [r["accuracy"] for r in rec],
                          # the last round trained / selected with compiled
                          # programs (with one selection: includes compiling)
                          "time_train": rec[-1]["time_train"],
                          "time_score": rec[-2]["time_score"],
                          "time_select": rec[-2]["time_select"]}
      sec.save()
    sec.guard(name, one)
  import jax
  sec.result["xla_flags"] = os.environ.get("XLA_FLAGS", "")
  sec.result["backend"] = jax.default_backend()


def w_determinism(sec, sizes, args):
  del sizes
  mode = "tiny" if args.tiny else "full"
  runs = {}

  def det_process(label, det):
    fd, path = tempfile.mkstemp(prefix=f"dc_{label}_", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "det_run", "--result", path,
           "--deterministic", str(det)] + (["--tiny"] if args.tiny else [])
    cmd += ["--mnist_dir", args.mnist_dir] if args.mnist_dir else []
    t0 = time.perf_counter()
    rc, out = run_cmd(cmd, 600, env=worker_env(mode))
    try:
      with open(path) as f:
        runs[label] = json.load(f)["result"]
    except (OSError, ValueError):
      runs[label] = {}
      sec.errors.append(f"{label}: no result (exit {rc}): {out[-500:]}")
    os.unlink(path)
    runs[label]["wall_seconds"] = time.perf_counter() - t0

  labels = (("det_a", 1), ("det_b", 1), ("nondet", 0))
  if args.tiny:  # CPU: side by side; on a GPU one after the other (timings)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
      list(pool.map(lambda a: det_process(*a), labels))
  else:
    for label, det in labels:
      det_process(label, det)
  for label, _ in labels:
    sec.row(f"{label} process", runs[label]["wall_seconds"],
            f"s wall incl. start and compiles; XLA_FLAGS='{runs[label].get('xla_flags', '')}'")
  from al_jax import determinism
  sec.result["flags"] = list(determinism.FLAGS)
  sec.result["runs"] = {k: {n: {f: v for f, v in r.items() if f != "ids"}
                            for n, r in v.items() if isinstance(r, dict)}
                        for k, v in runs.items()}
  for name in DET_STRATEGIES:
    a, b, c = (runs[k].get(name) for k in ("det_a", "det_b", "nondet"))
    if not (a and b):
      sec.errors.append(f"{name}: a deterministic run failed")
      continue
    same = a["ids"] == b["ids"]
    if not same:
      sec.errors.append(f"{name}: two deterministic runs selected different ids")
    note = "same ids in both rounds" if same else "DIFFERENT ids"
    if c:
      note += f"; without the flags: {'same' if c['ids'] == a['ids'] else 'different'} ids"
    sec.row(f"{name}: deterministic run twice", "identical" if same else "DIFFER", note)
    if c:
      for t in ("time_train", "time_score", "time_select"):
        ratio = a[t] / c[t] if c[t] > 0 else float("nan")
        sec.row(f"{name}: {t} with / without flags", ratio,
                f"{a[t]:.3f} s vs {c[t]:.3f} s")


def _time(fn, *a):
  import jax
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*a))
  return out, time.perf_counter() - t0


def w_throughput(sec, sizes, args):
  import jax
  import ml_collections
  import numpy as np
  from al_jax import models, precision, sharding, train
  b, steps, shape = sizes["tp_batch"], sizes["tp_steps"], sizes["tp_shape"]
  n = b * steps
  sec.result.update(batch=b, steps=steps, shape=shape, model=sizes["tp_model"],
                    optimizer="SGD lr 0.1, momentum 0.9, weight decay 5e-4, no augmentation")
  mesh = sharding.make_mesh([("data", -1)])
  rng = np.random.default_rng(0)
  x = sharding.shard_rows(mesh, rng.normal(size=(n,) + shape).astype(np.float32))
  y = sharding.shard_rows(mesh, rng.integers(0, 10, n).astype(np.int32))
  lab = sharding.shard_rows(mesh, np.ones(n, bool))
  tcfg = ml_collections.ConfigDict(dict(
      optimizer="sgd", learning_rate=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4,
      batch_size=b, num_epochs=2, min_steps=0))
  base = models.build(sizes["tp_model"], shape, 10, **sizes["tp_model_kw"])

  def jax_rate(dtype):
    fns = precision.with_compute_dtype(base, dtype)
    fit = train.make_fit(fns, tcfg, mesh)
    params, rest = models.jit_init(fns)(jax.random.key(0))
    _, t_first = _time(lambda: fit(params, rest, x, y, lab, jax.random.key(1))[0])
    _, t = _time(lambda: fit(params, rest, x, y, lab, jax.random.key(2))[0])
    rate = 2 * n / t
    sec.result[f"al_jax_{dtype}"] = {"images_per_s": rate, "first_call_s": t_first}
    sec.row(f"al_jax train step, {dtype}", rate, f"images/s ({2 * steps} steps; first call "
            f"with compile {t_first:.1f} s)")

  for dtype in ("float32", "bfloat16"):
    sec.guard(f"al_jax {dtype}", jax_rate, dtype)
  try:
    import torch
  except ImportError:
    sec.result["torch"] = "skipped: torch is not installed"
    sec.row("PyTorch", "skipped", "torch is not installed")
    return
  dev = "cuda" if torch.cuda.is_available() else "cpu"
  width = sizes.get("torch_width") or sizes["tp_model_kw"]["width"]
  if args.tiny:
    torch.set_num_threads(1)  # the other sections share the CPU
  for compiled in (False, True):
    if compiled and not sizes["torch_compile"]:
      sec.row("PyTorch torch.compile", "skipped", "not in --tiny")
      continue
    for dtype in ("float32",) if args.tiny else ("float32", "bfloat16"):
      sec.guard(f"torch {'compile' if compiled else 'eager'} {dtype}", torch_rate, sec, dev,
                dtype, compiled, b, steps, shape, width)


def torch_resnet18(width, num_classes=10):
  """The same CIFAR ResNet-18 as al_jax.models.resnet (3x3 stem, no max-pool)."""
  import torch
  from torch import nn

  class Block(nn.Module):

    def __init__(self, cin, cout, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(cout)  # torch momentum 0.1 == flax momentum 0.9
      self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(cout)
      self.short = (nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
          nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
      h = torch.relu(self.bn1(self.conv1(x)))
      return torch.relu(self.bn2(self.conv2(h)) + self.short(x))

  layers, cin = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
  for i, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
    for j in range(2):
      layers.append(Block(cin, cout, 2 if (i > 0 and j == 0) else 1))
      cin = cout
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
  return nn.Sequential(*layers)


def torch_rate(sec, dev, dtype, compiled, b, steps, shape, width):
  import torch
  torch.manual_seed(0)
  model = torch_resnet18(width).to(dev).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
  net = torch.compile(model) if compiled else model
  x = torch.randn(b, shape[2], shape[0], shape[1], device=dev).to(
      memory_format=torch.channels_last)
  y = torch.randint(0, 10, (b,), device=dev)
  loss_fn = torch.nn.CrossEntropyLoss()
  use_amp = dtype == "bfloat16"

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=use_amp):
      loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()

  def sync():
    if dev == "cuda":
      torch.cuda.synchronize()

  t0 = time.perf_counter()
  for _ in range(3):  # warm-up (and compile)
    step()
  sync()
  t_warm = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(2 * steps):
    step()
  sync()
  rate = 2 * steps * b / (time.perf_counter() - t0)
  key = f"torch_{'compile' if compiled else 'eager'}_{dtype}"
  sec.result[key] = {"images_per_s": rate, "warmup_s": t_warm}
  sec.row(f"PyTorch {'torch.compile' if compiled else 'eager'}, {dtype}", rate,
          f"images/s ({2 * steps} steps, channels_last{', autocast' if use_amp else ''}; "
          f"warm-up {t_warm:.1f} s)")


def w_badge_round(sec, sizes, args):
  from configs import badge_cifar10
  from al_jax import loop, metrics
  c = badge_cifar10.get_config()
  c.progress = False
  c.data.name = "synthetic"
  c.data.num_examples, c.data.num_classes = sizes["round_pool"], 10
  c.data.shape, c.data.separation = sizes["round_shape"], 0.05
  c.data.test_size = sizes["round_test"]
  c.model_name, c.model = sizes["round_model"], sizes["round_model_kw"]
  c.train.num_epochs = sizes["round_epochs"]
  c.al.num_rounds = 1
  protocol = badge_cifar10.get_config()  # the real protocol, for the extrapolation
  if args.tiny:
    c.al.initial_size = c.al.query_size = 16
    c.train.batch_size, c.score.batch_size, c.eval.batch_size = 8, 40, 40
  work = tempfile.mkdtemp(prefix="dc_badge_")
  try:
    t0 = time.perf_counter()
    loop.run(c, work)
    wall = time.perf_counter() - t0
    rec = metrics.read_jsonl(os.path.join(work, "metrics.jsonl"))
  finally:
    shutil.rmtree(work, ignore_errors=True)
  r0, r1 = rec[0], rec[1]
  sec.result.update(rounds=rec, wall_seconds=wall)
  sec.row("round 0: train", r0["time_train"], f"s, {r0['num_labelled']} labels, "
          f"{r0['train_steps']} steps (incl. compile)")
  sec.row("round 0: score pool", r0["time_score"], f"s, {sizes['round_pool'] - sizes['round_test']}"
          " rows (incl. compile)")
  sec.row("round 0: select", r0["time_select"], "s (incl. compile)")
  sec.row("round 1: train", r1["time_train"], f"s, {r1['num_labelled']} labels, "
          f"{r1['train_steps']} steps (compiled)")
  per_step = r1["time_train"] / max(r1["train_steps"], 1)
  # The protocol: rounds 0..R, n_r = initial + r * query labels, epochs x
  # ceil(n_r / batch) steps each; score + select in rounds 0..R-1.
  al, tr = protocol.al, protocol.train
  steps = sum(int(tr.num_epochs) * -(-(int(al.initial_size) + r * int(al.query_size))
                                     // int(tr.batch_size))
              for r in range(int(al.num_rounds) + 1))
  total = per_step * steps + int(al.num_rounds) * (r0["time_score"] + r0["time_select"])
  sec.result.update(protocol_steps=steps, seconds_per_step=per_step,
                    protocol_seconds_extrapolated=total)
  sec.row("protocol extrapolated", total / 60, f"minutes: {steps} train steps at "
          f"{per_step * 1e3:.2f} ms + {al.num_rounds} x score/select"
          + (" (tiny sizes: not the real protocol)" if args.tiny else ""))


def w_seeds(sec, sizes, args):
  """One seed against S seeds as one program, whole runs (seeds_speed.py's
  protocols and timing: each run compiles its own functions)."""
  del args
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  import seeds_speed
  root = tempfile.mkdtemp(prefix="dc_seeds_")
  s, rounds = sizes["seeds_s"], sizes["seeds_rounds"]
  quick = {"train.num_epochs": 1, "train.min_steps": 0}
  short = quick if rounds == 0 else {}  # the tiny check: only proves the section runs
  try:
    seeds_speed.timed(seeds_speed.config(sizes["seeds_models"][0], 0, **quick), root)  # start-up
    for model in sizes["seeds_models"]:
      one = sec.guard(f"{model}: 1 seed", seeds_speed.timed,
                      seeds_speed.config(model, rounds, **short), root)
      many = sec.guard(f"{model}: {s} seeds", seeds_speed.timed,
                       seeds_speed.config(model, rounds, **short, **{"al.num_seeds": s}), root)
      if one is None or many is None:
        continue
      sec.result[model] = {"one_seed_s": one, f"seeds_{s}_s": many, "ratio": many / one}
      sec.row(f"{model}: 1 seed", one, f"s, {rounds} query round(s), whole run incl. compile")
      sec.row(f"{model}: {s} seeds as one program", many,
              f"s; {many / one:.2f}x one seed (target: at most 1.5x on a GPU)")
  finally:
    shutil.rmtree(root, ignore_errors=True)


SCALE_PARTS = ("coreset", "badge", "bald", "batchbald")


def w_scale(sec, sizes, args):
  mode = "tiny" if args.tiny else "full"
  if args.tiny:  # CPUs report no peak memory: one process for all parts
    for part in SCALE_PARTS:
      sec.guard(part, w_scale_one, sec, sizes, args, part)
    return
  for part in SCALE_PARTS:  # one process each: a clean peak-memory counter
    fd, path = tempfile.mkstemp(prefix=f"dc_scale_{part}_", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"scale_{part}",
           "--result", path] + (["--tiny"] if args.tiny else [])
    rc, out = run_cmd(cmd, 600, env=worker_env(mode))
    try:
      with open(path) as f:
        doc = json.load(f)
    except (OSError, ValueError):
      doc = {"rows": [], "result": {}}
    os.unlink(path)
    sec.result[part] = doc.get("result", {}).get(part, {})
    for row in doc.get("rows", []):
      sec.row(*row)
    if rc != 0 or doc.get("status") == "error":
      sec.errors.append(f"{part}: exit {rc}: {doc.get('error', out[-300:])}")
      sec.row(part, "error", str(doc.get("error", out[-200:]))[:200])


def w_scale_one(sec, sizes, args, part=None):
  import jax
  import jax.numpy as jnp
  from al_jax import mc, strategies
  from al_jax.strategies.base import PoolView
  part = part or args.worker[len("scale_"):]
  n, d, c, k = sizes["scale_n"], sizes["scale_d"], sizes["scale_c"], sizes["scale_k"]
  budget = sizes["batchbald_budget"] if part == "batchbald" else sizes["scale_budget"]
  ids = jnp.arange(n, dtype=jnp.int32)
  labelled = ids < sizes["scale_labelled"]
  pool = PoolView(ids, jnp.ones(n, bool), labelled, jnp.where(labelled, ids % c, -1))
  key = jax.random.key(0)
  if part in ("coreset", "badge"):
    h = jax.random.normal(key, (n, d), jnp.float32)
    if part == "coreset":
      feats, shape = h, f"[{n:,}, {d}]"
    else:
      p = jax.nn.softmax(jax.random.normal(jax.random.fold_in(key, 1), (n, c)))
      feats, shape = {"h": h, "q": p - jax.nn.one_hot(jnp.argmax(p, -1), c)}, \
          f"h [{n:,}, {d}], q [{n:,}, {c}]"
    strat = strategies.get(part, None)
    fn = jax.jit(strat.select, static_argnums=2)
  else:
    feats = jax.nn.log_softmax(jax.random.normal(key, (n, k, c)) * 2.0)
    shape = f"[{n:,}, {k}, {c}]"
    if part == "bald":
      top = strategies.get("bald", None).select
      fn = jax.jit(lambda lp, pool_, b_, key_: top(mc.mutual_information(lp), pool_, b_, key_),
                   static_argnums=2)
    else:
      fn = jax.jit(strategies.get("batchbald", None).select, static_argnums=2)
  jax.block_until_ready(feats)
  dev = jax.devices()[0]
  base = (dev.memory_stats() or {}).get("peak_bytes_in_use", 0)
  (sel, _), t_first = _time(fn, feats, pool, budget, jax.random.key(1))
  _, t = _time(fn, feats, pool, budget, jax.random.key(1))
  stats = dev.memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  sel = jax.device_get(sel)
  ok = len(set(sel.tolist())) == budget and not bool(jax.device_get(labelled)[sel].any())
  if not ok:
    sec.errors.append(f"{part}: invalid selection")
  sec.result[part] = dict(input=shape, budget=budget, seconds=t, first_call_seconds=t_first,
                          peak_bytes=peak, input_peak_bytes=base, valid=ok)
  mem = (f"; peak device memory {peak / 2**30:.2f} GiB (inputs alone {base / 2**30:.2f} GiB)"
         if peak is not None else "; peak memory: not reported by this backend")
  what = {"coreset": "coreset k-center greedy", "badge": "BADGE k-means++",
          "bald": "BALD (MI + top-k)", "batchbald": "BatchBALD greedy"}[part]
  sec.row(f"{what}, {budget} picks", t, f"s on {shape} (first call with compile "
          f"{t_first:.1f} s){mem}")


if __name__ == "__main__":
  sys.exit(main())
