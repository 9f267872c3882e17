#!/usr/bin/env bash
# Installs Debian's ZooKeeper server when it is missing, so the state-manager tests can run a
# real one on loopback. The tests start and stop their own server; this script starts nothing,
# and stops the service the package may start on installation (by its pid file, never by name).
set -euo pipefail
if [ -x /usr/share/zookeeper/bin/zkServer.sh ] || [ -f /usr/share/java/zookeeper.jar ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-zookeeper: ZooKeeper is not installed and this is not root; run: sudo apt-get install zookeeper" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends zookeeper default-jre-headless >/dev/null
for pidfile in /var/run/zookeeper/zookeeper_server.pid /run/zookeeper/zookeeper_server.pid; do
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
done
