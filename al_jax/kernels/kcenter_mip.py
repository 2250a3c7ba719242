"""Robust k-center (Sener & Savarese 2018) as a set-cover MIP solved by HiGHS.

Host code (NumPy + scipy.optimize.milp) on a candidate subset of m
unlabelled rows. The labelled set enters only through each candidate's
distance to its nearest labelled row, so labelled rows cost no variables and
no m x |L| matrix: a point already within delta of L needs no cover.

Feasibility at radius delta: binary y_j (j a new centre), binary z_i
(i an outlier),
    sum_{j: d(i,j) <= delta} y_j + z_i >= 1   for every i with d_L(i) > delta,
    sum_j y_j = budget,   sum_i z_i <= max_outliers.
The optimum radius is one of the candidate distances, so a binary search over
their sorted values between the greedy radius (feasible) and a lower bound
finds it exactly (the CS/DAL code searches a continuous interval to 1e-7).

Where this differs from the reference (ozansener/active_learning_coreset,
`full_solver_gurobi.py`): the outlier budget is real (the released model
bounds every outlier variable by 0); the assignment variables x_ij are
replaced by the equivalent set-cover rows (DESIGN.md: the assignment MIP did
not finish in 120 s at 200 points, the set cover takes 0.6 s).

Deterministic budget: each solve is bounded by HiGHS's branch-and-bound node
limit (`node_limit`), and the search by the number of distinct candidate
radii (at most log2 of it solves), so the same inputs give the same picks on
any machine. A wall-clock `time_limit` (None by default) is only a safety
net: a solve that hits it can end differently on a slower machine.
"""

import numpy as np
import scipy.optimize
import scipy.sparse
from absl import logging


def pairwise(x: np.ndarray) -> np.ndarray:
  """[m, m] Euclidean distances in float64 (exact ties for the search)."""
  x = np.asarray(x, np.float64)
  sq = np.sum(x * x, -1)
  return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))


def cover_radius(d: np.ndarray, d_lab: np.ndarray, picks, max_outliers: int = 0) -> float:
  """Radius of centres L + picks over the m candidates, ignoring the
  `max_outliers` farthest points."""
  near = np.minimum(d_lab, d[:, list(picks)].min(1) if len(picks) else np.inf)
  return float(np.sort(near)[::-1][max_outliers]) if max_outliers < len(near) else 0.0


def greedy(d: np.ndarray, d_lab: np.ndarray, budget: int, first: int = 0) -> list[int]:
  """k-center greedy on a distance matrix; `first` starts it when L is empty."""
  near = d_lab.copy()
  picks = []
  if not np.isfinite(near).any():
    picks.append(int(first))
    near = np.minimum(near, d[first])
  avail = np.ones(len(d), bool)
  avail[picks] = False
  while len(picks) < budget:
    i = int(np.argmax(np.where(avail, near, -1.0)))
    picks.append(i)
    avail[i] = False
    near = np.minimum(near, d[i])
  return picks


def feasible(d, d_lab, budget, delta, max_outliers, time_limit=None, node_limit: int = 2000):
  """Solves the feasibility MIP at radius `delta` within `node_limit` B&B nodes.

  Returns:
    ("feasible", picks) | ("infeasible", None) | ("unknown", message).
  """
  m = len(d)
  rows = np.flatnonzero(d_lab > delta)
  if len(rows) <= max_outliers:  # L (plus outliers) covers everything already.
    return "feasible", None
  cover = scipy.sparse.csr_matrix(d[rows] <= delta, dtype=np.float64)
  n_z = len(rows) if max_outliers else 0
  blocks = [cover] + ([scipy.sparse.identity(n_z, format="csr")] if n_z else [])
  cons = [scipy.optimize.LinearConstraint(scipy.sparse.hstack(blocks, format="csr"), 1, np.inf),
          scipy.optimize.LinearConstraint(
              np.concatenate([np.ones(m), np.zeros(n_z)])[None], budget, budget)]
  if n_z:
    cons.append(scipy.optimize.LinearConstraint(
        np.concatenate([np.zeros(m), np.ones(n_z)])[None], 0, max_outliers))
  options = {"node_limit": int(node_limit), "disp": False}
  if time_limit is not None:
    options["time_limit"] = float(time_limit)
  res = scipy.optimize.milp(
      np.concatenate([np.zeros(m), np.ones(n_z)]), integrality=np.ones(m + n_z),
      bounds=scipy.optimize.Bounds(0, 1), constraints=cons, options=options)
  if res.status == 2:
    return "infeasible", None
  if res.x is not None and res.status in (0, 1):
    picks = np.flatnonzero(res.x[:m] > 0.5)
    if len(picks) == budget:
      return "feasible", picks.tolist()
  return "unknown", f"status {res.status}: {res.message}"


def robust_k_center(d: np.ndarray, d_lab: np.ndarray, budget: int, max_outliers: int = 0,
                    time_limit: float | None = None, first: int = 0,
                    node_limit: int = 2000):
  """Binary search on the radius from the greedy solution.

  Args:
    d: [m, m] candidate distances. d_lab: [m] distance of each candidate to
      its nearest labelled row (+inf when L is empty). budget: new centres.
    max_outliers: points the cover may leave out. time_limit: optional
      seconds per solve (machine-dependent; None: none). first: the greedy's
      start when L is empty. node_limit: HiGHS branch-and-bound nodes per
      solve, the deterministic budget; a solve that ends without an answer
      stops the search with the best solution so far.
  Returns:
    (picks: list of `budget` candidate indices, radius, greedy radius,
    info: dict with solves and whether it fell back to the greedy).
  """
  if budget > len(d):
    raise ValueError(f"budget {budget} exceeds the {len(d)} candidates")
  best = greedy(d, d_lab, budget, first)
  ub = cover_radius(d, d_lab, best, max_outliers)
  r_greedy = ub
  # Greedy is a 2-approximation without outliers; outliers can shrink the
  # optimum arbitrarily, so then search from 0.
  lb = ub / 2 if max_outliers == 0 else 0.0
  vals = np.unique(np.concatenate([d.ravel(), d_lab[np.isfinite(d_lab)]]))
  vals = vals[(vals >= lb - 1e-12) & (vals <= ub)]
  lo, hi = 0, len(vals) - 1  # vals[hi] == ub is feasible (the greedy).
  info = {"solves": 0, "fallback": False}
  while lo < hi:
    mid = (lo + hi) // 2
    status, picks = feasible(d, d_lab, budget, vals[mid], max_outliers, time_limit, node_limit)
    info["solves"] += 1
    if status == "unknown":
      logging.warning("coreset_mip: solve at radius %.6g gave %s; keeping the best solution "
                      "so far (radius %.6g, greedy %.6g)", vals[mid], picks, vals[hi], r_greedy)
      info["fallback"] = True
      break
    if status == "feasible":
      hi = mid
      if picks is not None:
        best = picks
    else:
      lo = mid + 1
  return best, cover_radius(d, d_lab, best, max_outliers), r_greedy, info
