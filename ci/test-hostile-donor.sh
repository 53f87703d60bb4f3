#!/usr/bin/env bash
# A hostile donor cannot crash the recipient nor make it write outside the
# target directory. An honest donor's descriptors are rewritten on the way
# by ci/tamper-proxy.py (file names with `..` or absolute, a file index or
# chunk number out of range, an absurd file count); each clone must fail
# with a clear error, leave no directory behind, write nothing outside, and
# the recipient must go on answering. Closes with "N passed, N failed".
#
#   ci/test-hostile-donor.sh [--recipient ours|stock]
#
# With --recipient stock the same cases run against the stock plugin, for
# comparison (on MySQL 9.7.4 the stock recipient dies with signal 11 on the
# file index case; later cases then fail to connect).
set -uo pipefail
LOG_TAG=test-hostile-donor
. "$(dirname "$0")/common.sh"

RECIPIENT_PLUGIN=ours
[ "${1:-}" = --recipient ] && RECIPIENT_PLUGIN=${2:?ours or stock}
PORT=${PORT_BASE:-14000}
DONOR=$PORT RECIPIENT=$((PORT + 1)) PROXY=$((PORT + 5))
cleanup() { server_stop donor; server_stop recipient; }
trap cleanup EXIT

build_plugin
install_our_plugin
recipient_dir=$OUR_PLUGIN_DIR
[ "$RECIPIENT_PLUGIN" = stock ] && recipient_dir=$STOCK_PLUGIN_DIR

log "an honest donor, and a $RECIPIENT_PLUGIN recipient that reaches it through a tampering proxy"
server_init donor
server_start donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user;
  CREATE DATABASE app; CREATE TABLE app.victim (id INT PRIMARY KEY, v TEXT);
  INSERT INTO app.victim VALUES (1, 'a'), (2, 'b')"
start_recipient() {
  server_start recipient "$RECIPIENT" "$recipient_dir" --plugin-load-add=mysql_clone.so
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY'"
}
server_init recipient
start_recipient

ESCAPE=/tmp/clone-rs-escape.ibd
# hostile NAME EXPECTED_ERRNO EXPECTED_MESSAGE_PART TAMPERING...
hostile() {
  local name=$1 errno=$2 message=$3 proxy dest log; shift 3
  log="$ROOTFS$(server_dir recipient)/tamper.log"
  python3 "$REPO/ci/tamper-proxy.py" "$PROXY" "$DONOR" "$@" 2>"$log" &
  proxy=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PROXY") 2>/dev/null && break; sleep 0.1; done
  dest=$(server_dir recipient)/hostile
  check "$name: clone fails with $errno" "$errno" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY
    IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL")"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "$name: the donor's descriptor was rewritten" "tampered" "$(head -1 "$log")"
  if ! check "$name: the recipient still answers" "1" "$(sql "$RECIPIENT" "SELECT 1" 2>&1)"; then
    log "the recipient died (see $ROOTFS$(server_dir recipient)/error.log); starting it again"
    server_stop recipient; start_recipient
  fi
  check "$name: clone_status tells why" "1" \
    "$(sql "$RECIPIENT" "SELECT error_message LIKE '%$message%' FROM performance_schema.clone_status" 2>&1)"
  check "$name: no directory left" "absent" "$([ -e "$ROOTFS$dest" ] && echo present || echo absent)"
  check "$name: nothing written outside" "absent" "$([ -e "$ROOTFS$ESCAPE" ] && echo present || echo absent)"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$ESCAPE"
}

hostile "file name with parent steps" 1525 "file path" rename app/victim.ibd "../../../../../../../..$ESCAPE"
hostile "absolute file name outside" 1525 "file path" rename app/victim.ibd "$ESCAPE"
hostile "file index out of range" 3863 "Invalid File Index" index app/victim.ibd 4000000000
hostile "chunk number out of range" 3863 "Invalid Chunk Number" chunk 4000000000
hostile "absurd file count" 3863 "Invalid State Descriptor" files 4000000000

log "the same donor, without tampering, still clones"
dest=$(server_dir recipient)/honest
sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
check "honest clone succeeds" "0" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR
  IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL")"
check "honest clone holds the table" "1" "$([ -f "$ROOTFS$dest/app/victim.ibd" ] && echo 1)"
rm -rf "${ROOTFS:?}$dest"

report test-hostile-donor
