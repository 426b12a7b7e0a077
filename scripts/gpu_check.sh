#!/usr/bin/env bash
# The GPU check: one markdown table of the CUDA tests, the benchmark and the bf16-vs-fp32 L1
# (scripts/gpu_check.py says what each part does).  Under 8 minutes on one H100/H200:
#     scripts/gpu_check.sh [--out bench-results/gpu_check.md]
# Tests itself on the CPU in about a minute:
#     scripts/gpu_check.sh --dry_run
# Uses the checkout's .venv when there is one, else python3.  Needs no network and never
# changes the GPU's settings.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$root/.venv/bin/python" ]; then
    python="$root/.venv/bin/python"
else
    python="python3"
fi
exec "$python" "$root/scripts/gpu_check.py" "$@"
