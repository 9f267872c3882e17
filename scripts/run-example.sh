#!/usr/bin/env bash
# make run: submit the word count example to the local cluster, wait for its
# physical plan, show its status, and leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."
EGRET=${EGRET:-bin/egret}
SPEC=${SPEC:-examples/wordcount.yaml}
CLUSTER=${CLUSTER:-local}
[ -x "$EGRET" ] || { echo "run-example: $EGRET is missing; run make first" >&2; exit 1; }
[ -f "$SPEC" ] || { echo "run-example: $SPEC is missing" >&2; exit 1; }
NAME=$(sed -n 's/^name:[[:space:]]*//p' "$SPEC" | head -1 | tr -d '"'"'"'')
[ -n "$NAME" ] || { echo "run-example: no name: in $SPEC" >&2; exit 1; }

if "$EGRET" list "$CLUSTER" 2>/dev/null | grep -qx "$NAME"; then
  echo "run-example: $NAME already runs on $CLUSTER; showing it (stop it with: $EGRET kill $CLUSTER $NAME)"
else
  "$EGRET" submit "$CLUSTER" "$SPEC"
fi

# The physical plan appears once every stream manager has registered with the
# topology manager; status reports it as the topology's state.
deadline=$((SECONDS + 60))
until state=$("$EGRET" status "$CLUSTER" "$NAME" --json | sed -n 's/^  "state": "\(.*\)",$/\1/p') && [ "$state" = running ] || [ "$state" = paused ]; do
  if [ $SECONDS -ge $deadline ]; then
    echo "run-example: no physical plan after 60 s; the logs: $EGRET logs $CLUSTER $NAME 0" >&2
    "$EGRET" status "$CLUSTER" "$NAME" || true
    exit 1
  fi
  sleep 0.2
done

"$EGRET" status "$CLUSTER" "$NAME"
echo
echo "$NAME keeps running. Follow a container's log:  $EGRET logs $CLUSTER $NAME 1 -f"
echo "Stop it and remove its state:                 $EGRET kill $CLUSTER $NAME"
