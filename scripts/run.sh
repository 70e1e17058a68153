#!/usr/bin/env bash
# Set up, ingest the bundled sample collection, and serve the chat on http://127.0.0.1:7860.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kb ingest samples/collection --collection samples
exec .venv/bin/kb serve
