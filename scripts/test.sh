#!/usr/bin/env bash
# Sets everything up (including test tools and chromium), then runs lint, type checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check assistant evals tests
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
