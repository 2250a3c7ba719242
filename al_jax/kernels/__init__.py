"""Selection kernels: array-level algorithms over the padded pool, one home.

  topk        masked / stochastic (Gumbel) top-k over unlabelled rows
  kcenter     k-center greedy over an O(N) min-distance vector
  kcenter_mip robust k-center by binary search over a set-cover MIP (scipy)
  clustering  k-means (Lloyd) with k-means++ or greedy k-means++ seeding
  badge       BADGE's k-means++ seeding on factorised gradient embeddings

They take per-row arrays (possibly sharded over the `data` axis) and masks,
return row positions, and know nothing of models or strategies.
"""
