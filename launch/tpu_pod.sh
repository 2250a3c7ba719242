#!/usr/bin/env bash
# Runs one al_jax experiment on every worker of a Cloud TPU VM pod slice.
#
#   launch/tpu_pod.sh TPU_NAME ZONE -- --config configs/badge_cifar10.py --workdir gs://bucket/run
#
# Copies this repo to every worker, installs requirements, then starts the same command on all
# workers with AL_JAX_DISTRIBUTED=1 (jax.distributed.initialize() auto-detects the pod).
# Per-worker logs: ~/al_jax_logs/worker.log on each worker, streamed by gcloud with a prefix.
# The workdir must be shared by all workers (a GCS bucket or NFS): Orbax writes checkpoints from
# every process and only process 0 writes metrics and plots.
set -euo pipefail
if [[ $# -lt 3 || "$3" != "--" ]]; then
  echo "usage: $0 TPU_NAME ZONE -- MAIN_ARGS..." >&2
  exit 2
fi
tpu=$1; zone=$2; shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
ssh() { gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all "$@"; }

tar -C "$repo" --exclude=.git --exclude=.venv -czf /tmp/al_jax_src.tgz .
gcloud compute tpus tpu-vm scp /tmp/al_jax_src.tgz "$tpu":/tmp/ --zone "$zone" --worker=all
ssh --command "mkdir -p ~/al_jax ~/al_jax_logs && tar -C ~/al_jax -xzf /tmp/al_jax_src.tgz && \
  cd ~/al_jax && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt 'jax[tpu]'"
printf -v args '%q ' "$@"
ssh --command "cd ~/al_jax && AL_JAX_DISTRIBUTED=1 .venv/bin/python -m al_jax.main $args \
  2>&1 | tee ~/al_jax_logs/worker.log"
