#!/usr/bin/env bash
# Sets everything up, then starts the web app on the bundled corpus (the index is built on first run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m assistant app "$@"
