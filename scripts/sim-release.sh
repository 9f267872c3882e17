#!/usr/bin/env bash
# Builds the simulated Heron release (issue 5 fills this in).
set -euo pipefail
mkdir -p build
