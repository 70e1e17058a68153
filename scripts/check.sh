#!/usr/bin/env bash
# Lint, format and type checks (ruff, mypy: configured in pyproject.toml); .ci/run runs them
# before the tests. Needs the venv (scripts/setup.sh installs both from requirements.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(app ingest retrieval rerank ui tests benchmarks scripts)
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
.venv/bin/mypy
