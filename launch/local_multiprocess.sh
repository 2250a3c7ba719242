#!/usr/bin/env bash
# N CPU processes on 127.0.0.1, D fake devices each, one jax.distributed job (gloo collectives).
#
#   launch/local_multiprocess.sh N D -- --config configs/default.py --workdir /tmp/mp
#
# Logs: ${AL_JAX_LOG_DIR:-/tmp/al_jax_logs}/process_<i>.log (pid in process_<i>.pid).
# Exits non-zero if any process fails; rerun the same command to resume from the last checkpoint.
set -euo pipefail
if [[ $# -lt 3 || "$3" != "--" ]]; then
  echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS -- MAIN_ARGS..." >&2
  exit 2
fi
n=$1; d=$2; shift 3
python=${PYTHON:-python}
port=${AL_JAX_PORT:-$((20000 + RANDOM % 20000))}
logs=${AL_JAX_LOG_DIR:-/tmp/al_jax_logs}
mkdir -p "$logs"
pids=()
for ((i = 0; i < n; i++)); do
  AL_JAX_DISTRIBUTED=1 AL_JAX_COORDINATOR="127.0.0.1:$port" AL_JAX_NUM_PROCESSES=$n \
  AL_JAX_PROCESS_ID=$i JAX_PLATFORMS=cpu \
  XLA_FLAGS="--xla_force_host_platform_device_count=$d" \
    "$python" -m al_jax.main "$@" >"$logs/process_$i.log" 2>&1 &
  pids+=($!)
  echo $! >"$logs/process_$i.pid"  # lets a test (or you) stop one process
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "process $i failed; see $logs/process_$i.log" >&2
    status=1
  fi
done
exit $status
