#!/usr/bin/env bash
# Set up and run the whole test suite (real models, real database, real PDFs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-test-services
exec .venv/bin/python -m pytest "$@"
