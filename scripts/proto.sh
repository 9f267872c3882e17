#!/usr/bin/env bash
# Placeholder: filled in by the issue that owns it.
set -euo pipefail
echo "proto: not built yet" >&2
