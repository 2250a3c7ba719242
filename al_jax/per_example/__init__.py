"""Per-example gradient maps shared by EGL, BADGE, GraNd, ISAL and TracIn.

Two paths to full-network per-example gradients:
* `reference` (vmap(grad), in microbatches): `grad_norms`, `class_grad_norms`,
  `loss_dot` (one jvp) and the last-layer closed forms; kept as the test
  reference and for `path="vmap"`;
* `fast` (layer taps, the default of the strategies): `tap_grad_norms`,
  `tap_class_grad_norms`, `tap_loss_dot`, `grad_projections`, from each
  layer's input a and output cotangent delta of one forward and one backward
  pass of the batch (`taps`, reduced per layer by `layers`).
"""

from al_jax.per_example.fast import class_grad_norms as tap_class_grad_norms
from al_jax.per_example.fast import grad_norms as tap_grad_norms
from al_jax.per_example.fast import loss_dot as tap_loss_dot
from al_jax.per_example.fast import projections as grad_projections
from al_jax.per_example.reference import (batch_losses, class_grad_norms, example_loss,
                                          grad_norms, hvp, last_layer_class_grad_norms,
                                          last_layer_inputs, loss_dot,
                                          tree_dot, tree_sq_norm)

PATHS = ("taps", "vmap")

__all__ = ["PATHS", "batch_losses", "class_grad_norms", "example_loss", "grad_norms",
           "grad_projections", "hvp", "last_layer_class_grad_norms", "last_layer_inputs",
           "loss_dot", "tap_class_grad_norms", "tap_grad_norms",
           "tap_loss_dot", "tree_dot", "tree_sq_norm"]
