#!/usr/bin/env bash
# Placeholder: filled in by the issue that owns it.
set -euo pipefail
echo "bench-compare: not built yet" >&2
