"""Learning-rate schedules: the rate of every step against optax's schedules, one compile."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from al_jax import data, models, schedules, sharding, train


def _sched(**kw):
  return ml_collections.ConfigDict(dict(dict(name="constant", milestones=(), unit="epochs",
                                             factor=0.1, alpha=0.0, warmup=0), **kw))


@pytest.mark.parametrize("kw,reference", [
    (dict(name="multistep", milestones=(2, 5), unit="steps", factor=0.1),
     lambda total: optax.piecewise_constant_schedule(0.5, {2: 0.1, 5: 0.1})),
    (dict(name="multistep", milestones=(1,), unit="epochs", factor=0.5),  # 4 steps per epoch
     lambda total: optax.piecewise_constant_schedule(0.5, {4: 0.5})),
    (dict(name="cosine", alpha=0.1),
     lambda total: optax.cosine_decay_schedule(0.5, total, alpha=0.1)),
    (dict(name="cosine", warmup=3, unit="steps"),
     lambda total: optax.warmup_cosine_decay_schedule(0.0, 0.5, 3, total, end_value=0.0)),
    (dict(name="constant", warmup=1, unit="epochs"),
     lambda total: optax.join_schedules([optax.linear_schedule(0.0, 0.5, 4),
                                         optax.constant_schedule(0.5)], [4])),
])
def test_schedule_matches_optax_for_any_round_length(kw, reference):
  lr = schedules.make(_sched(**kw), 0.5)
  for total in (12, 20):  # two rounds: the traced function serves both
    got = jax.jit(lambda s, t: lr(s, t, 4))(jnp.arange(total), total)
    want = [float(reference(total)(s)) for s in range(total)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)


def test_constant_schedule_keeps_the_plain_optimiser():
  assert schedules.make(_sched(), 0.1) is None
  tcfg = ml_collections.ConfigDict(dict(optimizer="sgd", learning_rate=0.1, schedule=_sched()))
  state = train.make_optimizer(tcfg).init({"w": jnp.zeros(2)})
  assert not any(isinstance(s, schedules.ScheduledState) for s in jax.tree_util.tree_leaves(
      state, is_leaf=lambda s: isinstance(s, schedules.ScheduledState)))


@pytest.mark.parametrize("kw,match", [(dict(name="step"), "train.schedule.name 'step'"),
                                      (dict(unit="rounds"), "train.schedule.unit 'rounds'"),
                                      (dict(name="multistep", milestones=(-1,)), "milestones")])
def test_bad_schedule_is_one_clear_error(kw, match):
  with pytest.raises(ValueError, match=match):
    schedules.make(_sched(**kw), 0.1)


def test_auxiliary_optimisers_take_the_same_schedule():
  from al_jax.strategies import ll4al
  sched = _sched(name="multistep", milestones=(1,), unit="epochs", factor=0.1)
  tx = ll4al.make_module_optimizer("sgd", 0.5, sched)
  params = {"w": jnp.zeros(())}
  # Inside any pytree (an extension state), set_round reaches the state.
  ext = schedules.set_round({"opt": tx.init(params), "other": 1}, total=6, per_epoch=3)
  moves = []
  for _ in range(6):
    upd, ext["opt"] = tx.update({"w": jnp.ones(())}, ext["opt"], params)
    moves.append(-float(upd["w"]))
  # SGD with momentum 0.9 and wd 5e-4 on w = 0: the first update is the rate itself.
  assert moves[0] == pytest.approx(0.5)
  assert float(schedules.learning_rate(jax.tree_util.tree_leaves(
      ext["opt"], is_leaf=lambda s: isinstance(s, schedules.ScheduledState))[0])) == \
      pytest.approx(0.05)  # after the epoch-1 milestone
  with pytest.raises(ValueError, match="train.schedule.name 'nope'"):
    ll4al.make_module_optimizer("adam", 1e-3, _sched(name="nope"))


def _fit_with_spy(schedule, sizes):
  """SGD on a loss of gradient 1 per weight: each step moves a weight by -lr.

  The extension's own parameter `v` (an auxiliary optimiser, as LL4AL's
  module) trains with the same schedule. Returns fit and, per round, the
  rates applied to the model and to `v` at each step but the last.
  """
  c = ml_collections.ConfigDict(dict(name="synthetic", num_examples=96, num_classes=3,
                                     shape=(4,), test_size=0.25, normalize=True))
  ds = data.load(c, 0)
  pool = data.make_pool(ds.x_train, ds.y_train, 16)
  mesh = sharding.make_mesh([("data", 1)])
  fns = models.build("mlp", (4,), 3, hidden=())
  seen = []

  def linear_loss(params, rest, ext, batch, key, epoch):
    del key, epoch
    (logits, _), new_rest = fns.apply_train(params, rest, batch["x"], jax.random.key(0))
    first = jax.tree_util.tree_leaves(params)[0]
    jax.debug.callback(lambda a, b: seen.append((float(a), float(b))), first.ravel()[0],
                       ext["params"]["v"])
    total = sum(jnp.sum(p) for p in jax.tree_util.tree_leaves(params)) + ext["params"]["v"]
    return total, (new_rest, logits)

  tcfg = ml_collections.ConfigDict(dict(optimizer="sgd", learning_rate=0.5, momentum=0.0,
                                        batch_size=16, num_epochs=3, min_steps=0,
                                        weight_decay=0.0, schedule=schedule))
  fit = train.make_fit(fns, tcfg, mesh, extension=train.TrainExtension(
      init=lambda *a: {"params": {"v": jnp.zeros(())}}, loss=linear_loss,
      tx=train.make_optimizer(tcfg)))
  x, y = sharding.shard_rows(mesh, pool.x), sharding.shard_rows(mesh, pool.y)
  rounds = []
  for n_lab in sizes:
    labelled = np.zeros(len(pool.y), bool)
    labelled[:n_lab] = True
    seen.clear()
    params, rest = fns.init(jax.random.key(0))
    fit(params, rest, x, y, sharding.shard_rows(mesh, labelled), jax.random.key(1))
    rates = -np.diff(np.asarray(seen), axis=0)
    np.testing.assert_allclose(rates[:, 1], rates[:, 0], rtol=1e-5)  # the extension's too
    rounds.append(rates[:, 0])
  return fit, rounds


def test_applied_rate_follows_the_schedule_and_the_epoch_compiles_once():
  schedule = _sched(name="multistep", milestones=(1, 2), unit="epochs", factor=0.1)
  fit, rounds = _fit_with_spy(schedule, sizes=(20, 40))  # 2 and 3 steps per epoch
  for got, per_epoch in zip(rounds, (2, 3)):
    want = [0.5 * 0.1 ** (s // per_epoch) for s in range(3 * per_epoch - 1)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
  assert fit.epoch._cache_size() == 1  # both rounds, one trace


def test_cosine_rate_spans_each_rounds_own_length():
  fit, rounds = _fit_with_spy(_sched(name="cosine"), sizes=(16, 48))  # 3 and 9 steps per round
  for got in rounds:
    total = len(got) + 1
    np.testing.assert_allclose(got, [float(optax.cosine_decay_schedule(0.5, total)(s))
                                     for s in range(total - 1)], rtol=1e-5, atol=1e-7)
  assert fit.epoch._cache_size() == 1
