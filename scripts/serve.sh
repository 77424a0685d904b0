#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the server with the offline default engines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sutradhar serve "$@"
