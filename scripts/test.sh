#!/usr/bin/env bash
# The test command (README, CI): set up, lint, then unit + integration tests against a real local HAPI
# FHIR server that the test session starts and stops itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PYTHON="${PYTHON:-python3}"
echo "test: ruff"
"$PYTHON" -m ruff format --check .
"$PYTHON" -m ruff check .
echo "test: pytest"
# Everything, the long rounds included (10 x 1,000 MLLP clients, SIGKILL rounds, a transaction of
# thousands): about 5 minutes on 2 cores. For a quick local loop: scripts/test.sh -m "not slow".
"$PYTHON" -m pytest "$@"
