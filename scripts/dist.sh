#!/usr/bin/env bash
# make dist: a static egret for Mesos agents to fetch (ExecutorInfo's URI):
#   dist/egret-<version>-linux-amd64.tar.gz   (egret at the archive's root)
#   dist/egret-<version>-linux-amd64.tar.gz.sha256
# The checksum file is in sha256sum's format; its first field is what the
# mesos cluster configuration's egret checksum wants ("sha256:<hex>").
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
name="egret-${VERSION}-linux-amd64"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" build -trimpath \
	-ldflags "-s -w -X main.version=${VERSION}" -o "$work/egret" ./cmd/egret
# Static or nothing: an agent may not have the libc this host has.
if command -v file >/dev/null && file "$work/egret" | grep -q 'dynamically linked'; then
	echo "dist: $work/egret is dynamically linked" >&2
	exit 1
fi
mkdir -p dist
# Reproducible archive: fixed owner, mode and time.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00:00Z' \
	-C "$work" -cf - egret | gzip -n >"dist/${name}.tar.gz.tmp"
mv "dist/${name}.tar.gz.tmp" "dist/${name}.tar.gz"
(cd dist && sha256sum "${name}.tar.gz" >"${name}.tar.gz.sha256")
echo "dist/${name}.tar.gz"
echo "sha256:$(cut -d' ' -f1 "dist/${name}.tar.gz.sha256")"
