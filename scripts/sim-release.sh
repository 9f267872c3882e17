#!/usr/bin/env bash
# Builds the simulated Heron release: build/heron-core-sim.tar.gz, laid out
# like Heron's heron-core.tar.gz (release.yaml, heron-core/bin, heron-core/lib),
# and copies it to bin/heron-core-sim.tar.gz beside bin/egret.
#
# heron-core/bin holds one multi-call binary, heron-sim (test/sim), and small
# wrappers named after Heron's binaries that run it in that role;
# heron-core/bin/heron-executor is a copy of egret (which answers as
# `egret heron-executor` under that name); heron-core/java/bin/java is the
# Java stand-in, so heron.directory.sandbox.java.home=./heron-core/java keeps
# the executor's command lines exactly Heron's.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
EGRET=${EGRET:-bin/egret}
# BUILD_DIR and COPY_TO let tests build a release elsewhere (COPY_TO= skips the copy).
BUILD_DIR=${BUILD_DIR:-build}
COPY_TO=${COPY_TO-bin}
stage=$BUILD_DIR/sim-release
rm -rf "$stage"
mkdir -p "$stage/heron-core/bin" "$stage/heron-core/java/bin"

if [ ! -x "$EGRET" ]; then
	echo "sim-release: $EGRET not built (run make build)" >&2
	exit 1
fi
$GO build -trimpath -ldflags '-s -w' -o "$stage/heron-core/bin/heron-sim" ./test/sim
cp "$EGRET" "$stage/heron-core/bin/heron-executor"

for role in heron-tmanager heron-stmgr heron-shell heron-python-instance heron-cpp-instance; do
	cat >"$stage/heron-core/bin/$role" <<WRAP
#!/bin/sh
# Simulated $role (egret test/sim).
exec "\$(dirname "\$0")/heron-sim" $role "\$@"
WRAP
done
cat >"$stage/heron-core/java/bin/java" <<'WRAP'
#!/bin/sh
# Simulated JVM (egret test/sim): answers the JVM-version probe and runs Heron's Java main classes.
exec "$(dirname "$0")/../../bin/heron-sim" java "$@"
WRAP
chmod 755 "$stage"/heron-core/bin/* "$stage/heron-core/java/bin/java"

# The lib directories hold placeholder jars so Heron's classpaths name real files.
while read -r dir jars; do
	mkdir -p "$stage/heron-core/lib/$dir"
	for j in $jars; do
		echo "simulated by egret test/sim" >"$stage/heron-core/lib/$dir/$j"
	done
done <<'LIBS'
scheduler heron-scheduler.jar heron-local-scheduler.jar heron-mesos-scheduler.jar
packing heron-roundrobin-packing.jar heron-binpacking-packing.jar
statemgr heron-localfs-statemgr.jar heron-zookeeper-statemgr.jar
metricsmgr heron-metricsmgr.jar
metricscachemgr heron-metricscachemgr.jar
instance heron-instance.jar
ckptmgr heron-ckptmgr.jar
statefulstorage heron-localfs-statefulstorage.jar
healthmgr heron-healthmgr.jar
downloaders heron-downloader.jar
LIBS

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
cat >"$stage/release.yaml" <<EOF2
heron.build.version: ${version}-sim
heron.build.time: $(date -u +%Y-%m-%dT%H:%M:%SZ)
heron.build.user: egret
heron.build.host: sim
heron.build.git.revision: ${version}
heron.build.git.status: simulated
EOF2

out=$BUILD_DIR/heron-core-sim.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$stage" -czf "$out" release.yaml heron-core
rm -rf "$stage"
if [ -n "$COPY_TO" ]; then
	mkdir -p "$COPY_TO"
	cp "$out" "$COPY_TO/heron-core-sim.tar.gz"
fi
echo "built $out ($(du -h "$out" | cut -f1))${COPY_TO:+, copied to $COPY_TO/}"
