"""VAAL / SRAAL / TA-VAAL: OUI and KL against NumPy, VAE shapes, training, the queries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from al_jax import models, strategies
from al_jax import vae as vae_lib
from al_jax.strategies import vaal
from al_jax.strategies.base import PoolView


def test_online_uncertainty_matches_the_reference_formula():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 4)) * 2
  logits[0] = 0.0  # uniform p: var 0
  p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  c = 4
  mx = p.max(-1)
  pp1 = (c - 1) * (1 / c - (1 - mx) / (c - 1)) ** 2
  pp3 = (pp1 + (1 / c - mx) ** 2) / c
  with np.errstate(invalid="ignore"):
    ref = 1 - mx * pp3 / p.var(-1, ddof=1)
  ref[0] = 1.0
  got = np.asarray(vaal.online_uncertainty(jax.nn.log_softmax(jnp.asarray(logits, jnp.float32))))
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
  assert ((got > 0) & (got <= 1)).all()


def test_kl_divergence_matches_numpy():
  rng = np.random.default_rng(1)
  mu, logvar = rng.normal(size=(2, 5, 3))
  ref = 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, -1)
  np.testing.assert_allclose(vae_lib.kl_divergence(jnp.asarray(mu), jnp.asarray(logvar)), ref,
                             rtol=1e-5)


def test_kl_term_reduces_as_each_reference():
  rng = np.random.default_rng(1)
  mu, logvar = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
  elem = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar))  # [B, z]
  args = (jnp.asarray(mu, jnp.float32), jnp.asarray(logvar, jnp.float32))
  # SRAAL: torch.mean(sum over dim 1); TA-VAAL: torch.mean over every element.
  np.testing.assert_allclose(vaal.kl_term(*args, "sraal"), elem.sum(1).mean(), rtol=1e-5)
  np.testing.assert_allclose(vaal.kl_term(*args, "vaal"), elem.sum(1).mean(), rtol=1e-5)
  np.testing.assert_allclose(vaal.kl_term(*args, "ta_vaal"), elem.mean(), rtol=1e-5)


@pytest.mark.parametrize("shape,channels", [((28, 28, 1), (8, 16, 16)), ((32, 32, 3), (4, 8)),
                                            ((8, 8, 1), ())])
def test_vae_reconstructs_the_input_shape(shape, channels):
  vae = models.pure(lambda rngs: vae_lib.VAE(shape, 6, channels=channels, dense=16, dec_in=7,
                                             rngs=rngs))
  params, _ = jax.eval_shape(vae.init, jax.random.key(0))  # shapes only: no conv compile on CPU
  x = jax.ShapeDtypeStruct((3,) + shape, jnp.float32)
  mu, logvar = jax.eval_shape(lambda p, x: vae.apply(p, {}, x, method=vae_lib.VAE.encode),
                              params, x)
  assert mu.shape == logvar.shape == (3, 6)
  rec = jax.eval_shape(
      lambda p: vae.apply(p, {}, jnp.zeros((3, 7)), method=vae_lib.VAE.decode), params)
  assert rec.shape == (3,) + shape


def toy_pool(seed=0, n=96, n_lab=24, shift=1.5):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
  lab = np.zeros(n, bool)
  lab[rng.choice(n - 8, n_lab, replace=False)] = True
  valid = np.arange(n) < n - 8  # the last 8 rows are padding
  x[~lab] += shift  # unlabelled rows look different: D can tell them apart
  labels = np.where(lab, rng.integers(0, 3, n), -1).astype(np.int32)
  pool = PoolView(jnp.asarray(np.where(valid, 1000 + np.arange(n), -1).astype(np.int32)),
                  jnp.asarray(valid), jnp.asarray(lab), jnp.asarray(labels))
  return x, pool


def family(mode, **kw):
  base = dict(z_dim=8, beta=1.0, adversary_weight=0.0, recon_weight=1.0, ce_weight=1.0,
              channels=(), dense=32, disc_hidden=(32,), cls_hidden=(16,), lr=2e-3,
              num_steps=150, batch_size=16, vae_steps=2, adv_steps=1, eval_batch=40)
  return vaal.make_vaal_family(mode, 3, **{**base, **kw})


@pytest.mark.parametrize("mode", vaal.MODES)
def test_training_decreases_both_losses_and_d_separates_the_sets(mode):
  x, pool = toy_pool()
  n = len(x)
  feats = {"x": jnp.asarray(x), "oui": jnp.full((n,), 0.9), "r": jnp.linspace(-1, 1, n)}
  scores, losses = jax.jit(family(mode))(feats, pool, jax.random.key(0))
  losses = {k: float(v) for k, v in losses.items()}
  assert losses["vae_loss"] < 0.8 * losses["vae_loss_first"], losses
  assert losses["d_loss"] < 0.8 * losses["d_loss_first"], losses
  s = np.asarray(scores)
  lab, unl = np.asarray(pool.labelled), np.asarray(pool.unlabelled)
  # Scores are higher-first: VAAL / TA-VAAL rank unlabelled-looking rows
  # (low D) first; SRAAL's D is trained towards 0 on L and OUI (0.9) on U.
  assert s[unl].mean() > s[lab].mean() + 0.15, (s[unl].mean(), s[lab].mean())


def test_select_is_the_top_k_of_the_trained_scores_among_unlabelled():
  # SRAAL: its scores rank highest D first (VAAL's lowest-D order is checked
  # through the scores in the training test).
  name = "sraal"
  fns = models.build("mlp", (8, 8, 1), 3, hidden=(8,))
  kw = dict(z_dim=8, dense=32, disc_hidden=(32,), num_steps=10, batch_size=16, eval_batch=40)
  strat = strategies.get(name, fns, **kw)
  x, pool = toy_pool(1)
  params, rest = fns.init(jax.random.key(0))
  feats = strat.score(params, rest, {"x": jnp.asarray(x)}, jax.random.key(0))
  key = jax.random.key(5)
  ids, _ = jax.jit(lambda f, p, k: strat.select(f, p, 10, k))(feats, pool, key)
  ids = np.asarray(ids)
  mode_kw = dict(beta=1.0, adversary_weight=1.0, recon_weight=1.0 if name == "vaal" else 5.0,
                 ce_weight=5.0, channels=(), lr=5e-4, vae_steps=2, adv_steps=1,
                 cls_hidden=(1024, 256))
  if name == "sraal":
    mode_kw["disc_hidden"] = (32,)
  scores, _ = jax.jit(vaal.make_vaal_family(name, 3, **{**mode_kw, **kw}))(feats, pool, key)
  s = np.asarray(scores)
  unl = np.flatnonzero(np.asarray(pool.unlabelled))
  ref = unl[np.argsort(-s[unl], kind="stable")[:10]]
  np.testing.assert_array_equal(np.sort(ids), np.sort(1000 + ref))
  assert len(set(ids)) == 10


def test_bad_options_fail_loudly():
  fns = models.build("mlp", (4,), 3, hidden=(4,))
  with pytest.raises(ValueError, match="beta"):
    strategies.get("vaal", fns, beta=-1.0)
  with pytest.raises(ValueError, match="z_dim"):
    strategies.get("sraal", fns, z_dim=1)
  with pytest.raises(ValueError, match="num_steps"):
    strategies.get("ta_vaal", fns, num_steps=0)


# End to end: tests/test_loop.py smoke-runs every configs/*.py (these strategies' digits,
# MNIST-10k and CIFAR-10 configs, the last two through a candidate subset) and runs every
# registered strategy on 1 vs 8 devices.


def reference_first_losses(mode, x, pool, key, kw, oui=None, r=None, num_classes=3):
  """VAE and D losses of iteration 0, composed independently of make_vaal_family.

  Same networks, initial parameters, minibatch and noise (the documented key
  derivation), but each loss written per set from the module docstring's
  formulas: recon_weight (MSE_L + MSE_U) + beta (KL_L + KL_U)
  + adversary_weight [BCE(D(mu_L), 1) + BCE(D(mu_U), 1)] (+ SRAAL's CE), and
  D's BCE with targets 1 / 0 (VAAL, TA-VAAL) or 0 / OUI (SRAAL). D's loss is
  taken after one Adam step of the VAE on the reference loss.
  """
  import optax
  b, z_dim = kw["batch_size"], kw["z_dim"]
  half, cond = z_dim // 2, int(mode == "ta_vaal")
  shape = x.shape[1:]
  vae = models.pure(lambda rngs: vae_lib.VAE(
      shape, z_dim, channels=kw["channels"], dense=kw["dense"],
      dec_in=(half if mode == "sraal" else z_dim) + cond, rngs=rngs))
  dis = models.pure(lambda rngs: vae_lib.Discriminator(
      z_dim + cond, hidden=kw["disc_hidden"], rngs=rngs))
  k_vae, k_d, k_c, k_loop = jax.random.split(key, 4)
  gen = {"vae": vae.init(k_vae)[0]}
  if mode == "sraal":
    cls = models.pure(lambda rngs: vae_lib.MLPClassifier(
        z_dim - half, num_classes, hidden=kw["cls_hidden"], rngs=rngs))
    gen["cls"] = cls.init(k_c)[0]
  disc = dis.init(k_d)[0]
  lab = np.asarray(pool.labelled & pool.valid, np.float32)
  unl = np.asarray(pool.valid & ~pool.labelled, np.float32)
  k_l, k_u, k_s = jax.random.split(jax.random.fold_in(k_loop, 0), 3)
  rows_l = jax.random.choice(k_l, len(x), (b,), p=lab / lab.sum())
  rows_u = jax.random.choice(k_u, len(x), (b,), p=unl / unl.sum())
  noise = jax.random.normal(jax.random.fold_in(k_s, 0), (2 * b, z_dim))
  softplus = lambda v: jnp.logaddexp(0.0, v)

  def d_logit(mu, rows):
    inp = jnp.concatenate([mu, r[rows][:, None]], -1) if cond else mu
    return dis.apply(disc, {}, inp)

  def set_loss(g, rows, eps, labelled):
    xb = jnp.asarray(x)[rows]
    mu, logvar = vae.apply(g["vae"], {}, xb, method=vae_lib.VAE.encode)
    z = mu + jnp.exp(0.5 * logvar) * eps
    dec = z[:, :half] if mode == "sraal" else z
    if cond:
      dec = jnp.concatenate([dec, jax.nn.sigmoid(r[rows])[:, None]], -1)
    mse = jnp.mean((vae.apply(g["vae"], {}, dec, method=vae_lib.VAE.decode) - xb) ** 2)
    kl = jnp.mean(0.5 * jnp.sum(jnp.exp(logvar) + mu ** 2 - 1.0 - logvar, -1))
    if mode == "ta_vaal":  # its reference: torch.mean over batch and latent dims
      kl = kl / mu.shape[-1]
    fool = jnp.mean(softplus(-d_logit(mu, rows)))  # BCE(sigmoid(l), 1)
    out = kw["recon_weight"] * mse + kw["beta"] * kl + kw["adversary_weight"] * fool
    if mode == "sraal" and labelled:
      logp = jax.nn.log_softmax(cls.apply(g["cls"], {}, z[:, half:]))
      y = jnp.asarray(pool.labels)[rows]
      out += kw["ce_weight"] * -jnp.mean(jnp.take_along_axis(logp, y[:, None], -1))
    return out

  vae_loss = lambda g: set_loss(g, rows_l, noise[:b], True) + set_loss(g, rows_u, noise[b:], False)
  loss0, grad = jax.value_and_grad(vae_loss)(gen)
  tx = optax.adam(kw["lr"])
  upd, _ = tx.update(grad, tx.init(gen), gen)
  gen1 = optax.apply_updates(gen, upd)

  def d_set(rows, target):
    mu = vae.apply(gen1["vae"], {}, jnp.asarray(x)[rows], method=vae_lib.VAE.encode)[0]
    logit = d_logit(mu, rows)
    return jnp.mean(softplus(logit) - target * logit)  # BCE(sigmoid(l), target)

  if mode == "sraal":
    d_loss = d_set(rows_l, 0.0) + d_set(rows_u, oui[rows_u])
  else:
    d_loss = d_set(rows_l, 1.0) + d_set(rows_u, 0.0)
  return float(loss0), float(d_loss)


@pytest.mark.parametrize("mode", vaal.MODES)
def test_first_iteration_losses_match_an_independent_composition(mode):
  """adversary_weight = 1: the VAE's fool-D term, SRAAL's relabelled D targets and
  CE, TA-VAAL's r conditioning all enter, checked against `reference_first_losses`."""
  x, pool = toy_pool(2)
  n = len(x)
  rng = np.random.default_rng(3)
  oui = jnp.asarray(rng.uniform(0.2, 1.0, n), jnp.float32)
  r = jnp.asarray(rng.normal(size=n), jnp.float32)
  kw = dict(z_dim=8, beta=0.7, adversary_weight=1.3, recon_weight=2.0, ce_weight=0.5,
            channels=(), dense=16, disc_hidden=(16,), cls_hidden=(8,), lr=1e-2,
            num_steps=1, batch_size=8, vae_steps=1, adv_steps=1, eval_batch=48)
  key = jax.random.key(4)
  feats = {"x": jnp.asarray(x), "oui": oui, "r": r}
  _, losses = jax.jit(vaal.make_vaal_family(mode, 3, **kw))(feats, pool, key)
  vae_ref, d_ref = reference_first_losses(mode, x, pool, key, kw, oui=oui, r=r)
  np.testing.assert_allclose(float(losses["vae_loss_first"]), vae_ref, rtol=1e-4)
  np.testing.assert_allclose(float(losses["d_loss_first"]), d_ref, rtol=1e-4)


def test_conv_vae_reconstruction_improves_and_separates_with_the_adversary():
  """The convolutional VAE the CIFAR configs use, trained (not just shape-checked):
  its reconstruction + KL loss falls and D still tells the sets apart with the
  adversary on."""
  x, pool = toy_pool(0, n=64, n_lab=16)
  n = len(x)
  feats = {"x": jnp.asarray(x), "oui": jnp.full((n,), 0.9), "r": jnp.zeros(n)}
  scores, losses = jax.jit(family("vaal", channels=(4, 8), adversary_weight=1.0, num_steps=60,
                                  eval_batch=32))(feats, pool, jax.random.key(0))
  losses = {k: float(v) for k, v in losses.items()}
  assert losses["vae_loss"] < 0.8 * losses["vae_loss_first"], losses
  s = np.asarray(scores)
  assert s[np.asarray(pool.unlabelled)].mean() > s[np.asarray(pool.labelled)].mean(), s
