#!/usr/bin/env bash
# Drive a running WVS through the whole MVP cycle with wvsctl, playing the agent with `wvs agent`.
#   WVS_API_URL=http://127.0.0.1:8080 scripts/smoke-test.sh
# Needs wvs and wvsctl on PATH (or WVS_BIN=<dir holding them>) and the workspace mount visible here.
set -euo pipefail

BIN=${WVS_BIN:+$WVS_BIN/}
WVSCTL="${BIN}wvsctl"
WVS="${BIN}wvs"
export WVS_API_URL=${WVS_API_URL:-http://localhost:8080}
WSID=${SMOKE_WSID:-smoke-$(date +%s)-$$}
AGENT_PID=""

step() { printf '\n=== %s\n' "$*"; }
fail() { printf 'SMOKE TEST FAILED: %s\n' "$*" >&2; exit 1; }
# field NAME [NAME...]: a value of the JSON object on stdin, by its path (field result snapshot_id).
field() { python3 -c 'import functools, json, sys; print(functools.reduce(dict.get, sys.argv[1:], json.load(sys.stdin)))' "$@"; }
# A snapshot's tree, in WVS's root-only area (<mount>/.wvs/snapshots/<wsid>/<id>), not in the agent view.
snapshot_tree() { dirname "$ROOT" | sed "s|\$|/.wvs/snapshots/$WSID/$1|"; }
cleanup() { [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true; }
trap cleanup EXIT

step "create workspace $WSID and wait until ACTIVE"
$WVSCTL workspace create "$WSID" --owner smoke --wait
[ "$($WVSCTL workspace get "$WSID" --json | field state)" = ACTIVE ] || fail "workspace is not ACTIVE"
ROOT=$($WVSCTL workspace get "$WSID" --json | field root_path)

step "start the agent's quiesce responder"
$WVS agent "$ROOT" &
AGENT_PID=$!

step "write into current and snapshot it"
echo "version one" > "$ROOT/current/notes.txt"
FIRST=$($WVSCTL snapshot create "$WSID" -m "first" --wait --json | field result snapshot_id)
[ -f "$(snapshot_tree "$FIRST")/notes.txt" ] || fail "snapshot $FIRST is not on disk"
[ ! -e "$ROOT/snapshots" ] || fail "the agent view holds snapshots"

step "list snapshots"
$WVSCTL snapshot list "$WSID" | grep -q "$FIRST" || fail "snapshot $FIRST is not listed"

step "change current, then roll back to the first snapshot"
echo "version two" > "$ROOT/current/notes.txt"
echo "scratch" > "$ROOT/current/scratch.txt"
$WVSCTL current set "$WSID" "$FIRST" --wait
[ "$(cat "$ROOT/current/notes.txt")" = "version one" ] || fail "rollback did not restore notes.txt"
[ ! -e "$ROOT/current/scratch.txt" ] || fail "rollback kept a file written after the snapshot"
[ "$($WVSCTL current get "$WSID" --json | field current_snapshot_id)" = "$FIRST" ] || fail "current_snapshot_id"

step "take a second snapshot and drop it"
SECOND=$($WVSCTL snapshot create "$WSID" -m "second" --wait --json | field result snapshot_id)
$WVSCTL snapshot drop "$WSID" "$SECOND" --wait
if $WVSCTL snapshot list "$WSID" | grep -q "$SECOND"; then fail "dropped snapshot is still listed"; fi
[ ! -e "$(snapshot_tree "$SECOND")" ] || fail "dropped snapshot is still on disk"

step "tasks of the workspace"
$WVSCTL task list --wsid "$WSID"
[ "$($WVSCTL task list --wsid "$WSID" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')" -ge 5 ] \
  || fail "expected at least 5 tasks"

step "disable the workspace: reads work, writes are gone"
$WVSCTL workspace disable "$WSID"
[ "$($WVSCTL workspace get "$WSID" --json | field state)" = DISABLED ] || fail "workspace is not DISABLED"
if OUT=$($WVSCTL snapshot create "$WSID" 2>&1); then fail "a write on a disabled workspace succeeded"; fi
echo "$OUT" | grep -q WVS_GONE || fail "expected WVS_GONE, got: $OUT"

echo
echo "=== ALL SMOKE TESTS PASSED ==="
