#!/usr/bin/env bash
# Crash tests on real mysqld 9.7.4 servers: a recipient killed (SIGKILL) at
# any moment around an in-place clone, or a donor killed mid-copy, must come
# back clean, say in clone_status what happened, and clone again.
#
#   ci/test-crash.sh [--stock] [--repeat N] [--only after-restart|in-copy]
#
# after-restart: a recipient provisioned in place before is cloned in place
#   again (once with a clone killed mid-copy in between) and killed 0, 0.5,
#   1, 2 and 5 s after the clone's restart, and during the restart's
#   recovery; each time it must boot with no page "in the future", no page
#   copied from the doublewrite buffer over the clone, clean CHECK TABLEs,
#   the donor's checksums and gtid_executed, a Completed clone_status; at the
#   end it replicates from the donor.
# in-copy: the recipient killed in each copy stage of an in-place clone and
#   mid DATA DIRECTORY clone, the donor killed mid-copy; each time the status
#   says what happened and a new clone succeeds (checksums).
# With --stock both servers run the stock plugin instead, for comparison
# (its failures are what it does, not a fault of this test).
set -uo pipefail
LOG_TAG=test-crash
. "$(dirname "$0")/common.sh"

PLUGIN=ours REPEAT=1 ONLY=""
while [ $# -gt 0 ]; do
  case $1 in
    --stock) PLUGIN=stock ;;
    --repeat) REPEAT=$2; shift ;;
    --only) ONLY=$2; shift ;;
    *) fail "unknown option $1" ;;
  esac
  shift
done
PLUGDIR=$OUR_PLUGIN_DIR
[ "$PLUGIN" = stock ] && PLUGDIR=$STOCK_PLUGIN_DIR

PORT=${PORT_BASE:-14200}
DONOR=$PORT RECIPIENT=$((PORT + 1)) CLONED=$((PORT + 2))
D=crash-donor R=crash-recipient C=crash-cloned
OPTS="--plugin-load-add=mysql_clone.so --gtid-mode=ON --enforce-gtid-consistency=ON"
# The donor drops a clone whose recipient was killed as soon as it notices
# (it would wait 5 minutes for a reconnection): the next clone waits for that.
DONOR_OPTS="$OPTS --clone-donor-timeout-after-network-failure=0"
SCRIPT_SERVERS=("$D" "$R" "$C")
trap stop_script_servers EXIT

rdir() { echo "$ROOTFS$(server_dir $R)"; }
restarts() { grep -c '^16$' "$(rdir)/exit-codes" 2>/dev/null || echo 0; }
log_size() { stat -c %s "$(rdir)/error.log" 2>/dev/null || echo 0; }
log_since() { tail -c +$(($1 + 1)) "$(rdir)/error.log"; }
start_recipient() { SOFT_WAIT=1 server_start_supervised $R "$RECIPIENT" "$PLUGDIR" $OPTS; }

# The running mysqld of the recipient's supervisor (chroot execs mysqld).
recipient_pid() {
  local sup; sup=$(cat "$(rdir)/supervisor.pid" 2>/dev/null) || return 1
  pgrep -P "$sup" | head -1
}

# kill_recipient: SIGKILL, then waits for the supervisor to give up.
kill_recipient() {
  local pid sup
  pid=$(recipient_pid) && kill -9 "$pid"
  sup=$(cat "$(rdir)/supervisor.pid" 2>/dev/null)
  wait_until 10 0.1 -- pid_gone "$sup"
  rm -f "$(rdir)/mysqld.pid" "$(rdir)/supervised.pid" "$(rdir)/supervisor.pid"
}

# wait_copied MIB: until the recipient's clone has written MIB MiB of its
# FILE COPY (clone_progress), so that a kill lands mid-copy; at most 60 s.
wait_copied() { wait_until 60 0.1 -- copied_at_least "$1"; }
copied_at_least() {
  [ "$(sql "$RECIPIENT" "SELECT COALESCE(MAX(data), 0) >= $1 * 1048576 FROM performance_schema.clone_progress WHERE stage = 'FILE COPY'" 2>/dev/null)" = 1 ]
}

# wait_log_line SINCE PATTERN [SECONDS]: until the recipient's error log
# shows PATTERN after byte SINCE.
wait_log_line() { wait_until "${3:-60}" 0.01 -- logged_since "$1" "$2"; }
logged_since() { log_since "$1" | grep -q "$2"; }

# clone_in_place [SQL before CLONE]: prints the statement's error, if any.
# A donor that has not yet seen its last recipient die still holds that
# clone (3634 through 3862): the clone starts once the donor let it go.
clone_in_place() {
  wait_donor_idle "$DONOR" >/dev/null
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; SET GLOBAL clone_max_data_bandwidth=0; ${1:-}
    CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'" 2>&1
}

# wait_restarted BEFORE: until the recipient's supervisor has seen more than
# BEFORE restarts and the new server answers.
wait_restarted() {
  wait_until 60 0.1 -- restarted_since "$1"
  SOFT_WAIT=1 server_wait $R "$RECIPIENT"
}
# restarted_since BEFORE: the supervisor has seen more than BEFORE restarts.
restarted_since() { [ "$(restarts)" -gt "$1" ]; }

# reclone TAG: an in-place clone that must succeed, and the server back on it.
reclone() {
  local before; before=$(restarts)
  check "$1: a new clone returns" "" "$(clone_in_place)"
  wait_restarted "$before"
  check "$1: a new clone: checksums" "$(checksums "$DONOR")" "$(checksums "$RECIPIENT")"
}

# Work of the recipient's own between clones: its LSN runs past the donor's
# and its pages (DD, undo, tables) reach the doublewrite files.
own_work() {
  sql "$RECIPIENT" "CREATE DATABASE IF NOT EXISTS mine" || return
  local t
  for t in $(seq 20); do
    sql "$RECIPIENT" "CREATE TABLE mine.t$t (id INT PRIMARY KEY, v TEXT); INSERT INTO mine.t$t VALUES (1, REPEAT('x', 2000))"
  done
  sql "$RECIPIENT" "UPDATE bench.t1 SET k = k + 1 WHERE id <= 20000; DELETE FROM bench.t2 WHERE id <= 5000" 2>/dev/null
}

# verify_clean TAG SINCE [CLONE_SINCE]: the recipient after a crash, against the
# donor (the error log from CLONE_SINCE is shown if the status is wrong).
verify_clean() {
  local tag=$1 since=$2 out
  out=$(log_since "$since")
  check "$tag: no page in the future, no corruption, no assertion" "" \
    "$(grep -E 'in the future|Clustered record for sec rec not found|[Cc]orrupt|Assertion failure' <<<"$out" | head -3)"
  check "$tag: no page restored from the doublewrite buffer over the clone" "0" "$(grep -c 'Recovered page' <<<"$out")"
  check "$tag: CHECK TABLE of every table" "" \
    "$(in_root mysqlcheck -uroot -h127.0.0.1 -P"$RECIPIENT" --all-databases 2>&1 | grep -vE '[[:space:]]OK$|^note|doesn.t support check|^(mysql|sys)\.[a-z_]*$' | head -5)"
  check "$tag: the data dictionary lists the donor's tables" \
    "$(sql "$DONOR" "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema='bench'")" \
    "$(sql "$RECIPIENT" "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema='bench'" 2>&1)"
  check "$tag: checksums" "$(checksums "$DONOR")" "$(checksums "$RECIPIENT" 2>&1)"
  check "$tag: gtid_executed is the donor's" "$(sql "$DONOR" "SELECT @@global.gtid_executed")" "$(sql "$RECIPIENT" "SELECT @@global.gtid_executed" 2>&1)"
  local report; report=$(cat "$(rdir)/data/#clone/#status_recovery" 2>&1)
  check "$tag: clone_status" "Completed	0" "$(sql "$RECIPIENT" "SELECT state, error_no FROM performance_schema.clone_status" 2>&1)" || {
    echo "     InnoDB's recovery report before the read: ${report//$'\n'/ | }"
    echo "     the error log's clone lines since the clone:"
    log_since "${3:-$since}" | grep -iE 'clone|ready for connections|starting as process' | tail -40 | sed 's/^/       /'
  }
}

# A recipient that did not come back is started afresh for the next case.
fresh_recipient() {
  server_stop $R
  server_init $R
  start_recipient || fail "a fresh recipient does not start"
  [ "$(clone_in_place)" = "" ] || fail "first in-place clone"
  wait_restarted 0
}

# restarted_and_running BEFORE: more than BEFORE restarts, and a mysqld
# runs under the supervisor.
restarted_and_running() { restarted_since "$1" && recipient_pid >/dev/null; }

# after_restart DELAY: clones in place, kills the recipient DELAY seconds
# after the clone's restart (or "recovery": during the restart's recovery),
# starts it again and checks it.
after_restart() {
  local delay=$1 tag="killed $1 s after the in-place clone's restart" before since
  [ "$delay" = recovery ] && tag="killed during the in-place clone's recovery"
  [ -n "${2:-}" ] && tag="$tag ($2)"
  own_work
  before=$(restarts) since=$(log_size)
  local clone_since=$since
  check "$tag: CLONE INSTANCE returns" "" "$(clone_in_place)"
  wait_until 30 0.01 -- restarted_and_running "$before"
  if [ "$delay" = recovery ]; then
    wait_log_line "$since" "Clone Fixup" 60
  else
    sleep "$delay"
  fi
  kill_recipient
  since=$(log_size)
  if ! start_recipient; then
    check "$tag: the recipient starts again" "up" "down"
    fresh_recipient
    return
  fi
  verify_clean "$tag" "$since" "$clone_since"
}

# throttled_clone_killed STAGE WHO SINCE: an in-place clone at 4 MiB/s under
# writes on the donor; once the recipient's log (after byte SINCE) shows
# InnoDB applying STAGE, kills WHO (recipient, or donor: then started again
# without the clone). Prints 1 if the stage was reached.
throttled_clone_killed() {
  local stage=$1 who=$2 since=$3 writer
  ( while [ ! -e "$(rdir)/stop-writer" ]; do
      sql "$DONOR" "UPDATE bench.t3 SET k = k + 1 WHERE id % 97 = 0" 2>/dev/null || sleep 0.2
    done ) &
  writer=$!
  (clone_in_place "SET GLOBAL clone_max_data_bandwidth=4;" >"$(rdir)/clone.out" 2>&1) &
  local clone=$!
  local hit=0
  wait_log_line "$since" "Clone Apply State $stage" 120 && hit=1
  [ "$stage" = "FILE COPY" ] && wait_copied 4
  if [ "$who" = donor ]; then
    # Back at once, without the clone: the recipient's reconnection fails.
    server_stop_hard $D
    server_start $D "$DONOR" "$PLUGDIR" $DONOR_OPTS
  else
    kill_recipient
  fi
  touch "$(rdir)/stop-writer"; wait "$writer"; rm -f "$(rdir)/stop-writer"
  wait "$clone"
  echo $hit
}

server_stop_hard() {
  local pidf pid; pidf=$ROOTFS$(server_dir "$1")/mysqld.pid
  pid=$(cat "$pidf" 2>/dev/null) && kill -9 "$pid" 2>/dev/null
  wait_until 5 0.05 -- pid_gone "$pid"
  rm -f "$pidf" "$ROOTFS$(server_dir "$1")/supervised.pid"
}

build_plugin
install_our_plugin

log "donor with ${TEST_DATA_MB:-60} MB, GTID mode on ($PLUGIN plugin)"
server_init $D
server_start $D "$DONOR" "$PLUGDIR" $DONOR_OPTS
bash "$REPO/ci/gen-data.sh" "$DONOR" "${TEST_DATA_MB:-60}" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user;
  CREATE USER repl IDENTIFIED BY 'Repl-1234'; GRANT REPLICATION SLAVE ON *.* TO repl"

if [ "$ONLY" != in-copy ]; then
  log "a recipient provisioned in place, then cloned in place again and killed after the restart"
  fresh_recipient
  for round in $(seq "$REPEAT"); do
    for delay in 0 0.5 1 2 5 recovery; do
      after_restart "$delay"
    done
    log "with a clone killed mid-copy in between (round $round)"
    since=$(log_size)
    throttled_clone_killed "FILE COPY" recipient "$since" >/dev/null
    start_recipient || fail "recipient after a kill mid-copy"
    after_restart 1 "after a clone killed mid-copy"
  done
  sql "$RECIPIENT" "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$DONOR, SOURCE_USER='repl',
    SOURCE_PASSWORD='Repl-1234', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA"
  sql "$DONOR" "CREATE TABLE bench.after_crash (id INT PRIMARY KEY); INSERT INTO bench.after_crash VALUES (1), (2); UPDATE bench.t4 SET k = k + 1 WHERE id < 100"
  target=$(sql "$DONOR" "SELECT @@global.gtid_executed")
  wait_until 60 0.5 -- has_gtids "$RECIPIENT" "$target"
  check "after the crashes the recipient replicates the donor's new writes" "$(checksums "$DONOR")" "$(checksums "$RECIPIENT")"
  sql "$RECIPIENT" "STOP REPLICA; RESET REPLICA ALL"
fi

if [ "$ONLY" != after-restart ]; then
  log "the recipient killed in each copy stage of an in-place clone"
  [ -n "$(recipient_pid 2>/dev/null)" ] || fresh_recipient
  for stage in "FILE COPY" "PAGE COPY" "REDO COPY"; do
    since=$(log_size)
    hit=$(throttled_clone_killed "$stage" recipient "$since")
    check "killed in $stage: the kill came in that stage" "1" "$hit"
    since=$(log_size)
    if ! start_recipient; then
      check "killed in $stage: the recipient starts again" "up" "down"
      fresh_recipient
      continue
    fi
    check "killed in $stage: clone_status says the server stopped during the clone" "Failed	1317	1	1" \
      "$(sql "$RECIPIENT" "SELECT state, error_no, end_time IS NOT NULL, error_message LIKE '%server stopped before the clone finished%' FROM performance_schema.clone_status" 2>&1)"
    check "killed in $stage: the stage it was in reads Failed" "1" \
      "$(sql "$RECIPIENT" "SELECT COUNT(*) FROM performance_schema.clone_progress WHERE state = 'Failed' AND end_time IS NOT NULL")"
    check "killed in $stage: no corruption at the restart" "" \
      "$(log_since "$since" | grep -E 'in the future|[Cc]orrupt|Assertion failure' | head -3)"
    reclone "killed in $stage"
  done

  log "the donor killed mid-copy"
  since=$(log_size)
  throttled_clone_killed "FILE COPY" donor "$since" >/dev/null
  check "donor killed: the clone failed" "1" "$(grep -c ERROR "$(rdir)/clone.out")"
  check "donor killed: the recipient is up, its status Failed" "Failed" "$(sql "$RECIPIENT" "SELECT state FROM performance_schema.clone_status" 2>&1)"
  reclone "donor killed"

  log "the recipient killed mid DATA DIRECTORY clone"
  dest=$(server_dir $C)/data
  rm -rf "$ROOTFS$(server_dir $C)"; mkdir -p "$ROOTFS$(server_dir $C)"/{files,tmp}
  since=$(log_size)
  ( sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; SET GLOBAL clone_max_data_bandwidth=4;
      CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'" >/dev/null 2>&1 ) &
  clone=$!
  wait_log_line "$since" "Clone Apply State FILE COPY" 60
  wait_copied 4
  kill_recipient; wait "$clone"
  start_recipient || fail "recipient after a kill mid DATA DIRECTORY clone"
  if [ "$PLUGIN" = ours ]; then
    # Between our plugins the partial copy is kept for a resume (ci/test-resume.sh).
    kept=$(dirname "$dest")/.data.clone_partial
    check "killed mid DATA DIRECTORY clone: clone_status remembers it, Failed, the copy kept" "Failed	1317	$dest/	1" \
      "$(sql "$RECIPIENT" "SELECT state, error_no, destination, error_message LIKE '%kept in $kept for a resume' FROM performance_schema.clone_status" 2>&1)"
    check "killed mid DATA DIRECTORY clone: the partial copy moved beside the path" "kept" \
      "$([ -f "$ROOTFS$kept/#clone_kept" ] && [ ! -e "$ROOTFS$dest" ] && echo kept || echo "not kept")"
    check "killed mid DATA DIRECTORY clone: the donor let the clone go" "0" "$(wait_donor_idle "$DONOR")"
    check "the same statement resumes it" "0" \
      "$(errno_of "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR', clone_max_data_bandwidth=0; CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'")"
    check "resumed: clone_status says so, the kept copy is gone" "1 gone" \
      "$(sql "$RECIPIENT" "SELECT error_message LIKE 'Resumed: %' FROM performance_schema.clone_status") $([ -e "$ROOTFS$kept" ] && echo left || echo gone)"
  else
    check "killed mid DATA DIRECTORY clone: clone_status remembers it, Failed" "Failed	1317	$dest/	1" \
      "$(sql "$RECIPIENT" "SELECT state, error_no, destination, error_message LIKE '%is incomplete%' FROM performance_schema.clone_status" 2>&1)"
    check "killed mid DATA DIRECTORY clone: the directory is marked incomplete" "1" \
      "$(grep -c 'not a usable data directory' "$ROOTFS$dest/CLONE_INCOMPLETE" 2>/dev/null)"
    check "killed mid DATA DIRECTORY clone: a clone into the same path is refused while it is there" "1007" \
      "$(errno_of "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'")"
    rm -rf "${ROOTFS:?}$dest"
    check "killed mid DATA DIRECTORY clone: the donor let the clone go" "0" "$(wait_donor_idle "$DONOR")"
    check "after the operator removed it, a clone into the same path succeeds" "0" \
      "$(errno_of "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth=0; CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'")"
  fi
  server_start $C "$CLONED" "$PLUGDIR" $OPTS
  check "the new clone: checksums" "$(checksums "$DONOR")" "$(checksums "$CLONED")"
  server_stop $C
fi

report "test-crash ($PLUGIN)"
