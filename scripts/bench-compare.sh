#!/usr/bin/env bash
# make bench-compare: egret supervise beside supervisord and s6 on the same workloads, in the
# same run; writes bench/RESULTS.md (generated, never edited by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v supervisord >/dev/null || need+=(supervisor)
command -v s6-svscan >/dev/null || need+=(s6)
if ((${#need[@]})); then
	echo "bench-compare: installing ${need[*]}" >&2
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2
	# Debian's supervisor package starts its own daemon: stop it by its pid file, not by name.
	for pf in /run/supervisord.pid /var/run/supervisord.pid; do
		if [ -s "$pf" ]; then
			pid=$(cat "$pf")
			$SUDO kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	done
fi
[ -x bin/egret ] || go build -o bin/egret ./cmd/egret
exec go run ./bench -compare -results bench/RESULTS.md "$@"
