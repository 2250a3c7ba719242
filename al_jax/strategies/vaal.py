"""VAAL, SRAAL and TA-VAAL: a VAE + discriminator trained each round.

VAAL (Sinha et al., ICCV 2019): a beta-VAE learns a latent space of labelled
and unlabelled images; a discriminator D learns to tell labelled latents
(mu) from unlabelled ones while the VAE tries to fool it. The query takes
the unlabelled rows D finds least labelled-like. Per iteration: `vae_steps`
VAE updates on
    recon_weight * (MSE_L + MSE_U) + beta * (KL_L + KL_U)
      + adversary_weight * [BCE(D(mu_L), 1) + BCE(D(mu_U), 1)]
then `adv_steps` D updates on BCE(D(mu_L), 1) + BCE(D(mu_U), 0).

SRAAL (Zhang et al., CVPR 2020): the task model's online uncertainty
indicator (OUI, below) relabels the unlabelled state: D's targets become
labelled -> 0 and unlabelled -> OUI; the VAE latent is split in two halves,
the first decoded, the second fed to a classifier trained on labelled rows
(weight `ce_weight`). The query takes the highest D (uncertain and
unlabelled-like).

TA-VAAL (Kim et al., CVPR 2021): LL4AL's loss module is trained with the
task model (BCE ranking loss, through TrainExtension); its predicted
loss r conditions the VAE decoder (sigmoid(r) appended to z) and D (raw r
appended to mu). Query as VAAL.

Where it trains: inside `select`, in one jitted `lax.fori_loop` over
`num_steps` iterations of minibatches drawn (with replacement) from the
labelled and unlabelled rows of the scored pool. `score` only passes the
images through (plus OUI or r). The VAE does not depend on the task model,
so this keeps it out of train.py, gives it a fixed number of steps however
many rows are labelled (the reference ties its iteration count to the
dataset size, not to the labelled set), and reuses the loop's candidate
subset (`al.subset_size`; 10,000 in the TA-VAAL/GCN papers) for free.

Differences from the reference code (sinhasam/vaal, Beichen1996/SRAAL,
cubeyoung/TA-VAAL), each deliberate:
- KL (`kl_term`): VAAL and SRAAL take the per-row sum over latent dims
  averaged over the batch (SRAAL's reference; VAAL's sums over the batch
  too, which scales beta by the batch size); TA-VAAL takes the mean over
  batch and latent dims, as its reference (selection_methods.py:45), i.e.
  1/z_dim of the per-row sum.
- Networks are stateless (no BatchNorm) with 'SAME' padding: see vae.py.
- One minibatch per iteration serves all VAE and D steps of that
  iteration. SRAAL's 0.85 learning-rate decay is the `schedule` keyword
  (configs/sraal_cifar10.py sets it).
- The default networks are small (a fully connected VAE, `channels=()`) so
  the strategies run on tiny inputs and CPUs; the CIFAR-10 configs set the
  paper's conv encoder (128, 256, 512, 1024).
- Minibatches are sampled with replacement (the references cycle loaders).
- OUI and r are rounded to bfloat16 precision (`_coarse`) so that 1 and 8
  devices give the same queries.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax

from al_jax import models, schedules, sharding, train
from al_jax import vae as vae_lib
from al_jax.strategies import ll4al
from al_jax.strategies.base import Strategy, top_k

MODES = ("vaal", "sraal", "ta_vaal")


def online_uncertainty(logp: jax.Array) -> jax.Array:
  """SRAAL's OUI in (0, 1]: 1 - p_max * V_min(p_max) / var(p).

  V_min is the (population) variance of the least spread distribution with
  top probability p_max (the rest equal); var(p) is the unbiased variance
  over classes, as the reference's torch.var. A uniform p (var 0) gives 1.
  """
  p = jnp.exp(logp.astype(jnp.float32))
  c = p.shape[-1]
  p_max = jnp.max(p, axis=-1)
  v_min = ((c - 1) * (1 / c - (1 - p_max) / (c - 1)) ** 2 + (1 / c - p_max) ** 2) / c
  var = jnp.var(p, axis=-1, ddof=1)
  return jnp.where(var > 1e-12, 1.0 - p_max * v_min / jnp.maximum(var, 1e-12), 1.0)


def kl_term(mu: jax.Array, logvar: jax.Array, mode: str) -> jax.Array:
  """The VAE loss's KL term for `mode`: a scalar.

  Args:
    mu, logvar: [B, z] encoder outputs.
    mode: one of MODES.
  Returns:
    mean over the batch of the per-row KL summed over latent dims (vaal,
    sraal), or the mean over batch and latent dims (ta_vaal: its reference
    reduces with torch.mean over both, so its KL weighs 1/z of SRAAL's).
  """
  kl = jnp.mean(vae_lib.kl_divergence(mu, logvar))
  return kl / mu.shape[-1] if mode == "ta_vaal" else kl


def bce_logits(logit, target) -> jax.Array:
  """mean BCE(sigmoid(logit), target), stable."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logit, target))


def make_vaal_family(mode: str, num_classes: int, *, z_dim: int, beta: float,
                     adversary_weight: float, recon_weight: float, ce_weight: float,
                     channels, dense: int, disc_hidden, cls_hidden, lr: float, num_steps: int,
                     batch_size: int, vae_steps: int, adv_steps: int, eval_batch: int,
                     schedule=None):
  """Returns train_and_score(feats, pool, key) -> (scores [M], losses dict).

  feats: {"x": [M, ...] images} plus "oui" [M] (sraal) or "r" [M]
  (ta_vaal). scores: higher = query first (only unlabelled rows matter).
  """
  # Adam for both, with an optional schedule (al_jax/schedules.py) whose epoch
  # is one iteration (vae_steps / adv_steps updates) of num_steps.
  tx = train.make_optimizer(ml_collections.ConfigDict(dict(
      optimizer="adam", learning_rate=lr, schedule=schedule)))

  def train_and_score(feats, pool, key):
    x = feats["x"]
    m = x.shape[0]
    shape = x.shape[1:] if x.ndim == 4 else (1, 1, x[0].size)
    half = z_dim // 2
    cond = 1 if mode == "ta_vaal" else 0
    dec_in = (half if mode == "sraal" else z_dim) + cond
    # Stateless networks (vae.py): their params are all they hold, so `{}`
    # stands for the rest.
    vae = models.pure(lambda rngs: vae_lib.VAE(
        shape, z_dim, channels=channels, dense=dense, dec_in=dec_in, rngs=rngs))
    dis = models.pure(lambda rngs: vae_lib.Discriminator(
        z_dim + cond, hidden=disc_hidden, rngs=rngs))
    k_vae, k_d, k_c, k_loop = jax.random.split(key, 4)
    gen = {"vae": vae.init(k_vae)[0]}
    if mode == "sraal":  # the target learner on the second half of the latent
      cls = models.pure(lambda rngs: vae_lib.MLPClassifier(
          z_dim - half, num_classes, hidden=cls_hidden, rngs=rngs))
      gen["cls"] = cls.init(k_c)[0]
    disc = dis.init(k_d)[0]

    def encode(gen, xb):
      return vae.apply(gen["vae"], {}, xb, method=vae_lib.VAE.encode)
    lab = pool.labelled & pool.valid
    unl = pool.unlabelled
    r = feats.get("r")
    oui = feats.get("oui")

    def d_in(mu, rows):  # TA-VAAL appends the raw ranker output to D's input
      return jnp.concatenate([mu, r[rows][:, None]], -1) if mode == "ta_vaal" else mu

    def images(rows):
      # Minibatch rows gathered from the sharded pool: split them over the
      # data devices, as train.py does for its batches.
      return sharding.constrain_rows(
          x[rows].reshape((rows.shape[0],) + shape).astype(jnp.float32))

    # Labelled and unlabelled rows go through the networks as one batch
    # (rows[:B] labelled, rows[B:] unlabelled): with equal halves, the sum of
    # the two per-set means is twice the mean over the batch. One pass keeps
    # the compiled program half the size.
    def vae_loss(gen, disc, rows, k):
      xb = images(rows)
      mu, logvar = encode(gen, xb)
      z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k, mu.shape)
      dec = z[:, :half] if mode == "sraal" else z
      if mode == "ta_vaal":
        dec = jnp.concatenate([dec, jax.nn.sigmoid(r[rows])[:, None]], -1)
      recon = vae.apply(gen["vae"], {}, dec, method=vae_lib.VAE.decode)
      total = 2.0 * (recon_weight * jnp.mean((recon - xb) ** 2)
                     + beta * kl_term(mu, logvar, mode)
                     # The VAE wants D to call every latent "labelled" (1).
                     + adversary_weight * bce_logits(dis.apply(disc, {}, d_in(mu, rows)), 1.0))
      if mode == "sraal":  # the target learner sees labelled rows only
        logits = cls.apply(gen["cls"], {}, z[:batch_size, half:])
        total += ce_weight * jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
            logits, jnp.maximum(pool.labels[rows[:batch_size]], 0)))
      return total

    if mode == "sraal":  # state relabelling: labelled -> 0, unlabelled -> OUI
      d_target = lambda rows: jnp.concatenate([jnp.zeros(batch_size), oui[rows[batch_size:]]])
    else:
      d_target = lambda rows: jnp.concatenate([jnp.ones(batch_size), jnp.zeros(batch_size)])

    def d_loss(disc, gen, rows):
      mu = jax.lax.stop_gradient(encode(gen, images(rows))[0])
      return 2.0 * bce_logits(dis.apply(disc, {}, d_in(mu, rows)), d_target(rows))

    def draw(k, mask):
      p = mask.astype(jnp.float32)
      return jax.random.choice(k, m, (batch_size,), p=p / jnp.maximum(p.sum(), 1.0))

    def body(t, carry):
      gen, g_opt, disc, d_opt, _, _, first = carry
      k_l, k_u, k_s = jax.random.split(jax.random.fold_in(k_loop, t), 3)
      rows = jnp.concatenate([draw(k_l, lab), draw(k_u, unl)])

      def vae_step(s, c):
        gen, g_opt, _ = c
        loss, g = jax.value_and_grad(vae_loss)(gen, disc, rows, jax.random.fold_in(k_s, s))
        upd, g_opt = tx.update(g, g_opt, gen)
        return optax.apply_updates(gen, upd), g_opt, loss

      def d_step(s, c):
        del s
        disc, d_opt, _ = c
        loss, g = jax.value_and_grad(d_loss)(disc, gen, rows)
        upd, d_opt = tx.update(g, d_opt, disc)
        return optax.apply_updates(disc, upd), d_opt, loss

      zero = jnp.zeros((), jnp.float32)
      gen, g_opt, v_loss = jax.lax.fori_loop(0, vae_steps, vae_step, (gen, g_opt, zero))
      disc, d_opt, dl = jax.lax.fori_loop(0, adv_steps, d_step, (disc, d_opt, zero))
      first = jnp.where(t == 0, jnp.stack([v_loss, dl]), first)  # for tests and logs
      return gen, g_opt, disc, d_opt, v_loss, dl, first

    zero = jnp.zeros((), jnp.float32)
    g_opt = schedules.set_round(tx.init(gen), num_steps * vae_steps, vae_steps)
    d_opt = schedules.set_round(tx.init(disc), num_steps * adv_steps, adv_steps)
    carry = (gen, g_opt, disc, d_opt, zero, zero, jnp.zeros(2))
    gen, _, disc, _, v_loss, dl, first = jax.lax.fori_loop(0, num_steps, body, carry)

    # Score every row in fixed chunks (padded), D's probability of "labelled".
    def chunk(rows):
      mu = encode(gen, images(rows))[0]
      return jax.nn.sigmoid(dis.apply(disc, {}, d_in(mu, rows)))

    d = sharding.chunked_map(chunk, jnp.arange(m), eval_batch)
    # VAAL / TA-VAAL: least labelled-like first; SRAAL: D predicts OUI-like
    # "uncertain unlabelled" states, highest first.
    scores = d if mode == "sraal" else -d
    return scores, {"vae_loss": v_loss, "d_loss": dl, "vae_loss_first": first[0],
                    "d_loss_first": first[1]}

  return train_and_score


def _check(mode, z_dim, beta, adversary_weight, recon_weight, ce_weight, lr, num_steps,
           batch_size, vae_steps, adv_steps, eval_batch):
  for name, v in (("beta", beta), ("adversary_weight", adversary_weight),
                  ("recon_weight", recon_weight), ("ce_weight", ce_weight), ("lr", lr)):
    if v < 0:
      raise ValueError(f"{mode} {name} must be >= 0, got {v}")
  for name, v in (("num_steps", num_steps), ("batch_size", batch_size),
                  ("vae_steps", vae_steps), ("adv_steps", adv_steps),
                  ("eval_batch", eval_batch)):
    if v < 1:
      raise ValueError(f"{mode} {name} must be >= 1, got {v}")
  if z_dim < (2 if mode == "sraal" else 1):
    raise ValueError(f"{mode} z_dim must be >= {2 if mode == 'sraal' else 1}, got {z_dim}")


def _images(batch):
  return batch["x"].astype(jnp.float32)


def _coarse(v: jax.Array) -> jax.Array:
  """v rounded to bfloat16 precision (kept in float32).

  OUI and the predicted loss come from a trained model whose last bits
  depend on how training batches were sharded (reduction order); fed into
  the VAE/D training, such differences grow into different queries on 1
  vs 8 devices. About 3 significant digits is all these signals carry.
  """
  return jax.lax.reduce_precision(v.astype(jnp.float32), exponent_bits=8, mantissa_bits=7)


def vaal(fns, *, z_dim: int = 32, beta: float = 1.0, adversary_weight: float = 1.0,
         recon_weight: float = 1.0, channels=(), dense: int = 256,
         disc_hidden=(512, 512), lr: float = 5e-4, num_steps: int = 500, batch_size: int = 64,
         vae_steps: int = 2, adv_steps: int = 1, eval_batch: int = 512,
         schedule=None) -> Strategy:
  """VAAL strategy (the VAE trains inside `select`).

  Args:
    fns: the model's `models.Functional` (only its class count is used).
    z_dim: latent size (paper: 32). beta: KL weight (1).
    adversary_weight: weight of the VAE's fool-D term (1).
    recon_weight: weight of the reconstruction MSE (1).
    channels: encoder conv widths (paper: 128, 256, 512, 1024); the default
      () is a fully connected VAE with one hidden layer of `dense` units.
    disc_hidden: D's hidden widths (512, 512). lr: Adam lr for both (5e-4).
    num_steps: training iterations per round. batch_size: rows per set per
      iteration (64). vae_steps / adv_steps: updates per iteration (2 / 1).
    eval_batch: rows per chunk when scoring the pool.
    schedule: the VAE's and D's learning-rate schedule, a dict as
      config.train.schedule (al_jax/schedules.py); an epoch is one iteration
      of num_steps. None: constant.
  """
  _check("vaal", z_dim, beta, adversary_weight, recon_weight, 0.0, lr, num_steps, batch_size,
         vae_steps, adv_steps, eval_batch)
  run = make_vaal_family(
      "vaal", fns.num_classes, z_dim=z_dim, beta=beta, adversary_weight=adversary_weight,
      recon_weight=recon_weight, ce_weight=0.0, channels=tuple(channels), dense=dense,
      disc_hidden=tuple(disc_hidden), cls_hidden=(), lr=lr, num_steps=num_steps,
      batch_size=batch_size, vae_steps=vae_steps, adv_steps=adv_steps, eval_batch=eval_batch,
      schedule=schedule)

  def score(params, rest, batch, key, ext=None):
    del params, rest, key, ext
    return {"x": _images(batch)}

  return Strategy(score, top_k(lambda feats, pool, key, ext: run(feats, pool, key)[0]))


def sraal(fns, *, z_dim: int = 64, beta: float = 1.0, adversary_weight: float = 1.0,
          recon_weight: float = 5.0, ce_weight: float = 5.0, channels=(), dense: int = 256,
          disc_hidden=(512, 512, 512, 512), cls_hidden=(1024, 256), lr: float = 5e-4,
          num_steps: int = 500, batch_size: int = 64, vae_steps: int = 2, adv_steps: int = 1,
          eval_batch: int = 512, schedule=None) -> Strategy:
  """SRAAL strategy: VAAL + target learner on half the latent + OUI relabelling.

  Args as `vaal`, plus ce_weight (paper: 5) for the latent classifier with
  hidden widths `cls_hidden` (1024, 256). Paper: z_dim 200 (100 + 100),
  recon_weight 5, a 5-layer D (4 x 512).
  """
  _check("sraal", z_dim, beta, adversary_weight, recon_weight, ce_weight, lr, num_steps,
         batch_size, vae_steps, adv_steps, eval_batch)
  run = make_vaal_family(
      "sraal", fns.num_classes, z_dim=z_dim, beta=beta, adversary_weight=adversary_weight,
      recon_weight=recon_weight, ce_weight=ce_weight, channels=tuple(channels), dense=dense,
      disc_hidden=tuple(disc_hidden), cls_hidden=tuple(cls_hidden), lr=lr, num_steps=num_steps,
      batch_size=batch_size, vae_steps=vae_steps, adv_steps=adv_steps, eval_batch=eval_batch,
      schedule=schedule)

  def score(params, rest, batch, key, ext=None):
    del key, ext
    logp = jax.nn.log_softmax(fns.apply(params, rest, batch["x"])[0].astype(jnp.float32))
    return {"x": _images(batch), "oui": _coarse(online_uncertainty(logp))}

  return Strategy(score, top_k(lambda feats, pool, key, ext: run(feats, pool, key)[0]))


def ta_vaal(fns, *, z_dim: int = 32, beta: float = 1.0, adversary_weight: float = 1.0,
            recon_weight: float = 1.0, channels=(), dense: int = 256,
            disc_hidden=(512, 512), lr: float = 5e-4, num_steps: int = 500,
            batch_size: int = 64, vae_steps: int = 1, adv_steps: int = 1,
            eval_batch: int = 512, loss_weight: float = 1.0, margin: float = 1.0,
            detach_epoch: int = 120, loss_hidden: int = 128, module_optimizer: str = "adam",
            module_lr: float = 1e-3, schedule=None, module_schedule=None) -> Strategy:
  """TA-VAAL strategy: LL4AL's loss module (BCE ranking) conditions VAAL.

  Args as `vaal` (paper: vae_steps 1, adv_steps 1) plus the loss module's
  (see ll4al.ll4al): loss_weight (lambda), margin, detach_epoch,
  loss_hidden, module_optimizer, module_lr, module_schedule.
  """
  _check("ta_vaal", z_dim, beta, adversary_weight, recon_weight, 0.0, lr, num_steps, batch_size,
         vae_steps, adv_steps, eval_batch)
  extension = ll4al.loss_module_extension(
      fns, weight=loss_weight, margin=margin, detach_epoch=detach_epoch, hidden=loss_hidden,
      module_optimizer=module_optimizer, module_lr=module_lr, ranking="bce",
      module_schedule=module_schedule)
  run = make_vaal_family(
      "ta_vaal", fns.num_classes, schedule=schedule, z_dim=z_dim, beta=beta,
      adversary_weight=adversary_weight, recon_weight=recon_weight, ce_weight=0.0,
      channels=tuple(channels), dense=dense, disc_hidden=tuple(disc_hidden), cls_hidden=(),
      lr=lr, num_steps=num_steps, batch_size=batch_size, vae_steps=vae_steps,
      adv_steps=adv_steps, eval_batch=eval_batch)

  def score(params, rest, batch, key, ext=None):
    del key
    return {"x": _images(batch),
            "r": _coarse(ll4al.predicted_loss(fns, params, rest, batch["x"], ext,
                                              loss_hidden))}

  return Strategy(score, top_k(lambda feats, pool, key, ext: run(feats, pool, key)[0]),
                  extension=extension)
