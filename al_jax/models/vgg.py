"""VGG16 with BatchNorm (CIFAR-size inputs; the WAAL/DAL backbone)."""

import jax
from flax import nnx

from al_jax.models.base import head_outputs

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M")


class VGG16BN(nnx.Module):
  """out["pre_logits"] = flattened 512-d features after the last pool (32x32
  input); out["stages"] = the 5 pooled block outputs."""

  def __init__(self, input_shape, num_classes: int, *, width_scale: float = 1.0,
               dropout: float = 0.0, rngs: nnx.Rngs):
    h, w, cin = input_shape
    convs, bns = [], []
    for v in _VGG16:
      if v == "M":
        h, w = h // 2, w // 2
        continue
      cout = max(1, int(v * width_scale))
      convs.append(nnx.Conv(cin, cout, (3, 3), padding=1, rngs=rngs))
      bns.append(nnx.BatchNorm(cout, momentum=0.9, rngs=rngs))
      cin = cout
    if h < 1 or w < 1:
      raise ValueError(f"VGG16 needs inputs of at least 32x32, got {input_shape}")
    self.convs = nnx.List(convs)
    self.bns = nnx.List(bns)
    self.drop = nnx.Dropout(dropout)
    self.embed_dim = h * w * cin
    self.head = nnx.Linear(self.embed_dim, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None):
    i, stages = 0, []
    for v in _VGG16:
      if v == "M":
        x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        stages.append(x)
      else:
        x = jax.nn.relu(self.bns[i](self.convs[i](x)))
        i += 1
    return head_outputs(self.drop, self.head, x.reshape((x.shape[0], -1)), stages, rngs)
