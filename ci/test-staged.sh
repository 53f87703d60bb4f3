#!/usr/bin/env bash
# The staged in-place clone on real mysqld 9.7.4 servers: CLONE INSTANCE in
# place clones into <datadir>/.clone_staging while the recipient keeps its
# data and serves, and the restart swaps the clone in.
#
#   ci/test-staged.sh [--stock]
#
# - from our donor, with a reader and a writer on the recipient during the
#   copy; from a stock donor: the donor's checksums and GTIDs after the
#   restart, none of the old instance's files left;
# - failures before the swap (the donor killed mid-copy, KILL QUERY, the
#   connections cut for good, the recipient killed -9 mid-copy): every recipient table keeps its
#   checksum, the server answers, clone_status says the data was kept;
# - kill -9 at points of the swap and its restart: the server comes up
#   entirely old or entirely new, never a mix;
# - on a small file system of its own (a loop device this script makes and
#   removes): AUTO falls back to the stock order when both copies do not
#   fit, ALWAYS refuses, and a staging file system filled mid-copy keeps
#   the data;
# - the dry run says which way the clone would go, and which of the
#   recipient's transactions it discards.
# With --stock the recipient runs the stock plugin, for comparison: its
# failures are what it does (it drops the data first), not a fault here.
set -uo pipefail
LOG_TAG=test-staged
. "$(dirname "$0")/common.sh"

PLUGIN=ours
[ "${1:-}" = --stock ] && PLUGIN=stock
RPLUGDIR=$OUR_PLUGIN_DIR
[ "$PLUGIN" = stock ] && RPLUGDIR=$STOCK_PLUGIN_DIR

PORT=${PORT_BASE:-14900}
DONOR=$PORT RECIPIENT=$((PORT + 1)) SMALLR=$((PORT + 2)) PROXY=$((PORT + 3))
D=staged-donor R=staged-recipient S=staged-small/srv
SMALL_FS=$CACHE/staged-small.img
SMALL_MNT=$ROOTFS/clone-rs/staged-small
OPTS="--plugin-load-add=mysql_clone.so --gtid-mode=ON --enforce-gtid-consistency=ON --innodb-redo-log-capacity=16M"
SCRIPT_SERVERS=("$D" "$R" "$S")
HELPERS=()
cleanup() {
  local pid
  for pid in "${HELPERS[@]}"; do kill "$pid" 2>/dev/null; done
  stop_script_servers
  mountpoint -q "$SMALL_MNT" && umount "$SMALL_MNT"
  rm -f "$SMALL_FS"
}
trap cleanup EXIT

build_plugin
install_our_plugin

rdir() { echo "$ROOTFS$(server_dir "${1:-$R}")"; }
restarts() { cat "$(rdir "${1:-$R}")/exit-codes" 2>/dev/null | grep -c '^16$'; }
log_size() { stat -c %s "$(rdir "${1:-$R}")/error.log" 2>/dev/null || echo 0; }
logged_since() { tail -c +$(($1 + 1)) "$(rdir "${3:-$R}")/error.log" | grep -q "$2"; }
wait_log_line() { wait_until "${3:-60}" 0.01 -- logged_since "$1" "$2" "${4:-$R}"; }
restarted_since() { [ "$(restarts "${2:-$R}")" -gt "$1" ]; }
recipient_pid() { local sup; sup=$(cat "$(rdir "${1:-$R}")/supervisor.pid" 2>/dev/null) && pgrep -P "$sup" | head -1; }

# kill_recipient [NAME]: SIGKILL of the supervised mysqld; the supervisor
# then ends (the status is not 16).
kill_recipient() {
  local name=${1:-$R} pid sup
  pid=$(recipient_pid "$name") && kill -9 "$pid"
  sup=$(cat "$(rdir "$name")/supervisor.pid" 2>/dev/null)
  [ -n "$sup" ] && wait_until 10 0.1 -- pid_gone "$sup"
  rm -f "$(rdir "$name")/mysqld.pid" "$(rdir "$name")/supervised.pid" "$(rdir "$name")/supervisor.pid"
}
start_recipient() { SOFT_WAIT=1 server_start_supervised "${1:-$R}" "${2:-$RECIPIENT}" "$RPLUGDIR" $OPTS; }

log "donor with data"
server_init $D
server_start $D "$DONOR" "$OUR_PLUGIN_DIR" $OPTS --clone-donor-timeout-after-network-failure=0
bash "$REPO/ci/gen-data.sh" "$DONOR" "${TEST_DATA_MB:-24}" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user;
  CREATE DATABASE newdb; CREATE TABLE newdb.n (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO newdb.n VALUES (1, 'donor')"
DONOR_SUMS=$(checksums "$DONOR")
DONOR_GTIDS=$(sql "$DONOR" "SELECT @@GLOBAL.gtid_executed")

# with_data PORT: the recipient's own data: an InnoDB table, a MyISAM
# table, a table in a general tablespace at the data directory's top, and
# two binary logs.
with_data() {
  sql "$1" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR,127.0.0.1:$PROXY';
    DROP DATABASE IF EXISTS mine;
    $(sql "$1" "SELECT 'DROP TABLESPACE ts_mine;' FROM information_schema.innodb_tablespaces WHERE name = 'ts_mine'")
    CREATE DATABASE mine; CREATE TABLE mine.t (id INT PRIMARY KEY, v VARCHAR(64));
    INSERT INTO mine.t VALUES (1, 'kept'), (2, 'also kept');
    CREATE TABLE mine.m (id INT) ENGINE=MyISAM; INSERT INTO mine.m VALUES (7);
    CREATE TABLESPACE ts_mine ADD DATAFILE 'ts_mine.ibd';
    CREATE TABLE mine.g (id INT PRIMARY KEY) TABLESPACE ts_mine; INSERT INTO mine.g VALUES (3);
    FLUSH BINARY LOGS; INSERT INTO mine.t VALUES (3, 'in the second binary log')"
}
MINE_TABLES=mine.t,mine.m,mine.g
mine() { checksums "$1" "$MINE_TABLES" 2>&1; }

CLONE_FROM="CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'"
# clone_in_place PORT [SQL before]: the statement's output (its error).
clone_in_place() {
  wait_donor_idle "$DONOR" >/dev/null
  sql "$1" "SET GLOBAL clone_max_data_bandwidth = 0; ${2:-} $CLONE_FROM" 2>&1
}
throttled() { echo "SET GLOBAL clone_max_data_bandwidth = ${1:-12};"; }
# dry PORT SQL: runs SQL to its end whatever fails (mysql --force).
dry() { printf '%s\n' "$2" | in_root mysql -uroot -h127.0.0.1 -P"$1" -N -B --force 2>&1; }

# old_files_left NAME: what of the old instance is left in its data
# directory: the schema mine, the general tablespace, binary logs past the
# new first one, InnoDB's saved and replacement files, the staging.
old_files_left() {
  local d; d=$(rdir "$1")/data
  (cd "$d" && ls -d mine ts_mine.ibd binlog.000002 binlog.000003 .clone_staging *.#clone_save *.#clone \
    '#innodb_redo.#clone' '#innodb_redo.#clone_save' '#clone/#status_error' 2>/dev/null | paste -sd' ')
}

# is_new PORT / is_old PORT BEFORE: the server has the donor's data and GTIDs
# and none of its own / exactly what it had (checksums BEFORE).
is_new() { [ "$(checksums "$1")" = "$DONOR_SUMS" ] && [ "$(sql "$1" "SELECT @@GLOBAL.gtid_executed")" = "$DONOR_GTIDS" ]; }
is_old() { [ "$(checksums "$1")" = "$2" ]; }
state_of() { if is_new "$1"; then echo new; elif is_old "$1" "$2"; then echo old; else echo mixed; fi; }
status_row() { sql "$1" "SELECT STATE, ERROR_NO FROM performance_schema.clone_status"; }
status_message() { sql "$1" "SELECT ERROR_MESSAGE FROM performance_schema.clone_status"; }

# Background sessions on PORT while a clone runs: a reader and a writer,
# each line of their logs "ok" or "fail".
start_load() {
  local port=$1 out=$CACHE/staged-load
  rm -f "$out".reader "$out".writer
  ( while :; do sql "$port" "SELECT COUNT(*) FROM mine.t" >/dev/null 2>&1 && echo ok || echo fail; sleep 0.2; done >>"$out".reader ) &
  HELPERS+=($!)
  ( i=1000; while :; do i=$((i + 1)); sql "$port" "INSERT INTO mine.t VALUES ($i, 'during the copy')" >/dev/null 2>&1 && echo ok || echo fail; sleep 0.2; done >>"$out".writer ) &
  HELPERS+=($!)
}
stop_load() {
  local pid
  for pid in "${HELPERS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  HELPERS=()
}
load_count() { cat "$CACHE/staged-load.$1" 2>/dev/null | grep -c "^$2\$"; }

# --- A staged clone from our donor, with a reader and a writer ---------------
log "staged clone from our donor, a reader and a writer on the recipient"
server_init $R
start_recipient || fail "recipient start"
with_data "$RECIPIENT"
before_restarts=$(restarts)
start_load "$RECIPIENT"
out=$(clone_in_place "$RECIPIENT" "$(throttled 12)")
stop_load
check "our donor: the clone returns success" "" "$(grep '^ERROR' <<<"$out")"
check "our donor: the reader kept answering during the copy" "0" "$(load_count reader fail)"
check "our donor: the writer kept writing during the copy" "0" "$(load_count writer fail)"
check "our donor: reads and writes were served (more than 10 each)" "yes yes" \
  "$([ "$(load_count reader ok)" -gt 10 ] && echo yes || echo no) $([ "$(load_count writer ok)" -gt 10 ] && echo yes || echo no)"
check "our donor: the error log says the clone is staged" "1" "$(grep -c 'Staged in-place clone: the clone goes to' "$(rdir)/error.log")"
wait_until 60 0.1 -- restarted_since "$before_restarts"
SOFT_WAIT=1 server_wait $R "$RECIPIENT"
check "our donor: the donor's checksums after the restart" "$DONOR_SUMS" "$(checksums "$RECIPIENT")"
check "our donor: the donor's GTIDs" "$DONOR_GTIDS" "$(sql "$RECIPIENT" "SELECT @@GLOBAL.gtid_executed")"
check "our donor: none of the old instance's files is left" "" "$(old_files_left $R)"
check "our donor: one binary log, begun afresh" "./binlog.000001" "$(cat "$(rdir)/data/binlog.index")"
check "our donor: clone_status Completed, with the donor's binary log position" "Completed 0 1" \
  "$(sql "$RECIPIENT" "SELECT STATE, ERROR_NO, BINLOG_POSITION > 0 FROM performance_schema.clone_status" | tr '\t' ' ')"
check "our donor: the error log says the swap was committed" "1" "$(grep -c 'Staged in-place clone: committed' "$(rdir)/error.log")"

# --- From a stock donor -------------------------------------------------------
log "staged clone from a stock donor"
server_stop $D
server_start $D "$DONOR" "$STOCK_PLUGIN_DIR" $OPTS --clone-donor-timeout-after-network-failure=0
with_data "$RECIPIENT"
before_restarts=$(restarts)
out=$(clone_in_place "$RECIPIENT")
check "stock donor: the clone returns success" "" "$(grep '^ERROR' <<<"$out")"
wait_until 60 0.1 -- restarted_since "$before_restarts"
SOFT_WAIT=1 server_wait $R "$RECIPIENT"
check "stock donor: the donor's checksums and GTIDs" "yes" "$(is_new "$RECIPIENT" && echo yes || echo no)"
check "stock donor: none of the old instance's files is left" "" "$(old_files_left $R)"
server_stop $D
server_start $D "$DONOR" "$OUR_PLUGIN_DIR" $OPTS --clone-donor-timeout-after-network-failure=0

# --- Failures before the swap -------------------------------------------------
# kept TAG BEFORE: the recipient answers with all its data, and its
# clone_status says the clone failed and the data was kept.
kept() {
  check "$1: every recipient table keeps its checksum" "$2" "$(checksums "$RECIPIENT")"
  check "$1: clone_status Failed, saying the data was kept" "Failed yes" \
    "$(status_row "$RECIPIENT" | cut -f1) $(status_message "$RECIPIENT" | grep -q 'data was kept' && echo yes || echo no)"
  check "$1: the staging directory is gone" "absent" "$([ -e "$(rdir)/data/.clone_staging" ] && echo present || echo absent)"
}
# clone_mid_copy [DONOR_PORT]: data of its own on the recipient (their
# checksums in `before`), then an in-place clone throttled to 8 MiB/s in
# the background (`clone_pid`, its output in staged-clone.out), once it has
# copied 8 MiB.
clone_mid_copy() {
  with_data "$RECIPIENT"
  before=$(checksums "$RECIPIENT")
  wait_donor_idle "$DONOR" >/dev/null
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 8;
    CLONE INSTANCE FROM donor_user@127.0.0.1:${1:-$DONOR} IDENTIFIED BY 'Pass-1234'" >"$CACHE/staged-clone.out" 2>&1 &
  clone_pid=$!
  wait_until 60 0.1 -- copied_at_least "$RECIPIENT" 8
}
# copied_at_least PORT MIB: the running clone has copied MIB MiB.
copied_at_least() {
  [ "$(sql "$1" "SELECT COALESCE(MAX(p.data), 0) >= $2 * 1048576 FROM performance_schema.clone_progress p, performance_schema.clone_status s
    WHERE s.state = 'In Progress' AND p.stage = 'FILE COPY' AND p.state = 'In Progress'" 2>/dev/null)" = 1 ]
}

log "failure: the donor killed mid-copy"
clone_mid_copy
kill -9 "$(cat "$(rdir $D)/mysqld.pid")"
wait "$clone_pid"
check "donor killed: the clone fails" "1" "$(grep -c '^ERROR' "$CACHE/staged-clone.out")"
kept "donor killed" "$before"
rm -f "$(rdir $D)/mysqld.pid"
server_start $D "$DONOR" "$OUR_PLUGIN_DIR" $OPTS --clone-donor-timeout-after-network-failure=0

log "failure: KILL QUERY mid-copy"
clone_mid_copy
sql "$RECIPIENT" "KILL QUERY $(sql "$RECIPIENT" "SELECT PID FROM performance_schema.clone_status")"
wait "$clone_pid"
check "KILL QUERY: the clone is interrupted (1317)" "1" "$(grep -c '^ERROR 1317' "$CACHE/staged-clone.out")"
kept "KILL QUERY" "$before"

log "failure: the connections cut beyond the donor's window"
python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" &
proxy=$!
HELPERS+=("$proxy")
proxy_listening "$PROXY" || fail "the proxy does not listen"
clone_mid_copy "$PROXY"
# The proxy goes: every connection is cut and none can be made again
# within the donor's window (0 minutes here).
kill "$proxy"
wait "$clone_pid"
check "connections cut: the clone fails" "1" "$(grep -c '^ERROR' "$CACHE/staged-clone.out")"
kept "connections cut" "$before"

log "failure: the recipient killed -9 mid-copy"
clone_mid_copy
kill_recipient
wait "$clone_pid"
start_recipient || fail "recipient restart"
check "recipient killed: it boots on its own data" "yes" "$(server_answers "$RECIPIENT" && echo yes || echo no)"
kept "recipient killed" "$before"

# --- kill -9 at points of the swap ------------------------------------------
# swap_kill TAG PATTERN: an in-place clone; the recipient is killed as soon
# as its error log shows PATTERN, then started again: it must come up
# entirely old or entirely new, with clean tables.
swap_kill() {
  local tag=$1 pattern=$2 since state before
  with_data "$RECIPIENT"
  before=$(checksums "$RECIPIENT")
  since=$(log_size)
  clone_in_place "$RECIPIENT" >"$CACHE/staged-clone.out" &
  clone_pid=$!
  wait_log_line "$since" "$pattern" 120 || log "$tag: the pattern never showed"
  kill_recipient
  wait "$clone_pid"
  start_recipient || { check "$tag: the server comes back" "yes" "no"; return; }
  state=$(state_of "$RECIPIENT" "$before")
  log "$tag: the server came up $state"
  check "$tag: entirely old or entirely new" "yes" "$([ "$state" != mixed ] && echo yes || echo no)"
  check "$tag: CHECK TABLE finds nothing" "" \
    "$(sql "$RECIPIENT" "CHECK TABLE mysql.user, mysql.db${3:+, $3}" | awk '$3 != "status" || $4 != "OK"')"
  check "$tag: nothing of the swap is left" "" "$( (cd "$(rdir)/data" && ls -d .clone_staging *.#clone '#innodb_redo.#clone' '#clone/#status_error' 2>/dev/null) | paste -sd' ')"
  [ "$4" = "" ] || check "$tag: the server is $4" "$4" "$state"
}
if [ "$PLUGIN" = ours ]; then
  log "kill -9 at points of the swap"
  swap_kill "killed while the files are placed" "are retired at the restart" "" ""
  swap_kill "killed after the commit" "Staged in-place clone: committed" "bench.t1" new
  swap_kill "killed in the restart's roll forward" "Clone File Roll Forward" "bench.t1" new
  swap_kill "killed in the restart's fix-up" "Clone Fixup" "bench.t1" new
fi

# --- Dry run ------------------------------------------------------------------
if [ "$PLUGIN" = ours ]; then
  log "the dry run says which way"
  with_data "$RECIPIENT"
  out=$(dry "$RECIPIENT" "SET SESSION clone_dry_run = ON; $CLONE_FROM; SHOW WARNINGS")
  check "dry run: says the clone would be staged" "1" "$(grep -c 'Staged in-place clone' <<<"$out")"
  own_uuid=$(sql "$RECIPIENT" "SELECT @@server_uuid")
  check "dry run: lists this server's transactions the donor lacks (its own uuid's)" "1" \
    "$(grep -c "transactions the donor does not have, which the clone discards: $own_uuid:" <<<"$out")"
  out=$(dry "$RECIPIENT" "SET GLOBAL clone_stage_in_place = NEVER; SET SESSION clone_dry_run = ON; $CLONE_FROM; SHOW WARNINGS")
  sql "$RECIPIENT" "SET GLOBAL clone_stage_in_place = AUTO"
  check "dry run, NEVER: says the data would be dropped first" "1" "$(grep -c 'stock order.*clone_stage_in_place is NEVER' <<<"$out")"
fi

# --- A small file system --------------------------------------------------
# The recipient's data directory on an ext4 file system of its own; the
# dry run's note gives the clone's size, and a filler file leaves the room
# each case needs.
if [ "$PLUGIN" = ours ]; then
  log "a small file system"
  mkdir -p "$SMALL_MNT"
  mountpoint -q "$SMALL_MNT" && umount "$SMALL_MNT"
  truncate -s 0 "$SMALL_FS" && truncate -s 900M "$SMALL_FS"
  mkfs.ext4 -q -F -m 0 "$SMALL_FS" || fail "mkfs.ext4"
  mount -o loop "$SMALL_FS" "$SMALL_MNT" || fail "mount the small file system"
  server_init $S
  start_recipient $S "$SMALLR" || fail "small recipient start"
  with_data "$SMALLR"
  sdata=$(rdir $S)/data
  clone_bytes=$(dry "$SMALLR" "SET SESSION clone_dry_run = ON; $CLONE_FROM; SHOW WARNINGS" |
    sed -n 's/.*The clone will write \([0-9.]*\) MiB.*/\1/p' | head -1)
  log "the clone writes $clone_bytes MiB"
  # leave_free MIB: a filler file so that MIB MiB stay free.
  leave_free() {
    rm -f "$SMALL_MNT/filler"
    local free; free=$(df -m --output=avail "$SMALL_MNT" | tail -1)
    fallocate -l "$((free - $1))M" "$SMALL_MNT/filler"
  }
  need=${clone_bytes%.*}
  before=$(mine "$SMALLR")
  leave_free $((need + 40))
  out=$(sql "$SMALLR" "SET GLOBAL clone_stage_in_place = ALWAYS; $CLONE_FROM" 2>&1)
  check "no room for both, ALWAYS: refused before anything (3869)" "1" "$(grep -c '^ERROR 3869.*cannot be staged' <<<"$out")"
  check "no room for both, ALWAYS: the data is untouched" "$before" "$(mine "$SMALLR")"
  leave_free $((need + 200))
  since=$(log_size $S)
  clone_in_place "$SMALLR" "$(throttled 8)" >"$CACHE/staged-clone.out" &
  clone_pid=$!
  wait_until 60 0.1 -- copied_at_least "$SMALLR" 4
  fallocate -l "$(( $(df -m --output=avail "$SMALL_MNT" | tail -1) - 1 ))M" "$SMALL_MNT/filler2"
  wait "$clone_pid"
  rm -f "$SMALL_MNT/filler2"
  check "staging file system filled mid-copy: the clone fails" "1" "$(grep -c '^ERROR' "$CACHE/staged-clone.out")"
  check "staging file system filled: every table keeps its checksum" "$before" "$(mine "$SMALLR")"
  check "staging file system filled: the staging directory is gone" "absent" "$([ -e "$sdata/.clone_staging" ] && echo present || echo absent)"
  leave_free $((need + 40))
  before_restarts=$(restarts $S)
  out=$(sql "$SMALLR" "SET GLOBAL clone_stage_in_place = AUTO; $CLONE_FROM" 2>&1)
  check "no room for both, AUTO: the clone returns success" "" "$(grep '^ERROR' <<<"$out")"
  check "no room for both, AUTO: the error log says the stock order, and why" "1" \
    "$(grep -c "In-place clone in the stock order, this server's data dropped first: the data directory's file system has" "$(rdir $S)/error.log")"
  wait_until 60 0.1 -- restarted_since "$before_restarts" $S
  SOFT_WAIT=1 server_wait $S "$SMALLR"
  check "no room for both, AUTO: the clone (stock order) has the donor's data" "yes" "$(is_new "$SMALLR" && echo yes || echo no)"
  server_stop $S
  rm -f "$SMALL_MNT/filler"
fi

report "staged in-place clone ($PLUGIN recipient)"
