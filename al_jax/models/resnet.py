"""ResNet-18, CIFAR variant (3x3 stem, no max-pool), as used across AL papers."""

import jax
from flax import nnx

from al_jax.models.base import head_outputs


class BasicBlock(nnx.Module):

  def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, padding=1,
                          use_bias=False, rngs=rngs)
    self.bn1 = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
    self.conv2 = nnx.Conv(cout, cout, (3, 3), padding=1, use_bias=False, rngs=rngs)
    self.bn2 = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
    if stride != 1 or cin != cout:
      self.short_conv = nnx.Conv(cin, cout, (1, 1), strides=stride,
                                 use_bias=False, rngs=rngs)
      self.short_bn = nnx.BatchNorm(cout, momentum=0.9, rngs=rngs)
    else:
      self.short_conv = None
      self.short_bn = None

  def __call__(self, x):
    h = jax.nn.relu(self.bn1(self.conv1(x)))
    h = self.bn2(self.conv2(h))
    s = x if self.short_conv is None else self.short_bn(self.short_conv(x))
    return jax.nn.relu(h + s)


class ResNet18(nnx.Module):
  """out["pre_logits"] = global-average-pooled 512-d features (after the
  optional dropout before the head); out["stages"] = the 4 stage outputs."""

  def __init__(self, input_shape, num_classes: int, *, width: int = 64,
               dropout: float = 0.0, rngs: nnx.Rngs):
    c = input_shape[-1]
    self.stem = nnx.Conv(c, width, (3, 3), padding=1, use_bias=False, rngs=rngs)
    self.stem_bn = nnx.BatchNorm(width, momentum=0.9, rngs=rngs)
    blocks, cin = [], width
    for i, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
      for j in range(2):
        stride = 2 if (i > 0 and j == 0) else 1
        blocks.append(BasicBlock(cin, cout, stride, rngs=rngs))
        cin = cout
    self.blocks = nnx.List(blocks)
    self.drop = nnx.Dropout(dropout)
    self.head = nnx.Linear(cin, num_classes, rngs=rngs)
    self.embed_dim = cin

  def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None):
    h, stages = jax.nn.relu(self.stem_bn(self.stem(x))), []
    for i, block in enumerate(self.blocks):
      h = block(h)
      if i % 2 == 1:  # the output of each of the 4 stages (2 blocks each)
        stages.append(h)
    return head_outputs(self.drop, self.head, h.mean(axis=(1, 2)), stages, rngs)
