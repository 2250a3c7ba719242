#!/usr/bin/env bash
# Runs benchmarks/device_check.py on an accelerator machine in one command.
#
#   bash benchmarks/device_check.sh --wheels .whl --out "$OUT" [device_check.py flags...]
#
# --wheels DIR: install every wheel in DIR first, offline (the GPU machine has
# no registry; bring ml-collections and anything else missing as wheels, see
# benchmarks/README.md, "Device check"). They go to a private folder put first
# on PYTHONPATH, so the machine's own packages stay as they are.
# Everything else is passed to device_check.py (--tiny, --sections, --budget,
# --mnist_dir, --out). The whole check is killed after DEVICE_CHECK_TIMEOUT
# seconds (default 540); each section has its own smaller limit inside.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
WHEELS=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="${2:?error: --wheels needs a folder}"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -n "$WHEELS" ]; then
  if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "error: --wheels $WHEELS holds no .whl files" >&2; exit 1
  fi
  SITE=${DEVICE_CHECK_SITE:-/tmp/al_jax_site}
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$WHEELS"/*.whl || { echo "error: installing $WHEELS/*.whl failed" >&2; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import ml_collections" 2>/dev/null || {
  echo "error: ml_collections is not importable; pass --wheels DIR with its wheel" >&2; exit 1; }
export PYTHONUNBUFFERED=1
exec timeout -k 10 "${DEVICE_CHECK_TIMEOUT:-540}" "$PY" benchmarks/device_check.py "${ARGS[@]}"
