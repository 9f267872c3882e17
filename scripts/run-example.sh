#!/usr/bin/env bash
# Placeholder: filled in by the issue that owns it.
set -euo pipefail
echo "run-example: not built yet" >&2
