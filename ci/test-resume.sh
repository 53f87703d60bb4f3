#!/usr/bin/env bash
# The resumable clone on real mysqld 9.7.4 servers: a CLONE INSTANCE ...
# DATA DIRECTORY that fails after part of the data arrived leaves a kept
# copy beside its target, and the same statement again sends only what the
# recipient does not hold.
#
#   ci/test-resume.sh
#
# - interrupted by the donor killed -9 (and started again), by the
#   recipient killed -9 (and started again), by KILL QUERY: the copy is
#   kept (clone_status says where), the same statement resumes it, the
#   wire carries less than the data, and the clone has the donor's
#   checksums and GTIDs on a server started on it, innochecksum clean;
# - a kept copy damaged on purpose (a flipped byte in a block, a truncated
#   file): those blocks are sent again, the result is still the donor's;
# - a kept copy from another donor is never used (and goes when the clone
#   succeeds);
# - a stock donor: no copy is kept, the target is left as the stock
#   plugin leaves it (a stock recipient of our donor is in test-remote);
# - in place, staged: the donor killed mid-copy keeps the staging
#   directory (and this server its data), the same statement resumes it;
#   a re-clone after the donor changed 5 % of its rows takes the rest from
#   this server's own files; a block this server changes during the copy
#   is fetched from the donor again. Each ends with the donor's checksums
#   and GTIDs.
set -uo pipefail
LOG_TAG=test-resume
. "$(dirname "$0")/common.sh"

PORT=${PORT_BASE:-15000}
DONOR=$PORT RECIPIENT=$((PORT + 1)) OTHER=$((PORT + 2)) CHECKER=$((PORT + 3))
INPLACE=$((PORT + 4))
D=resume-donor R=resume-recipient O=resume-other C=resume-checker I=resume-inplace
OPTS="--plugin-load-add=mysql_clone.so --gtid-mode=ON --enforce-gtid-consistency=ON --innodb-redo-log-capacity=16M"
SCRIPT_SERVERS=("$D" "$R" "$O" "$C" "$I")
trap stop_script_servers EXIT

build_plugin
install_our_plugin

rdir() { echo "$ROOTFS$(server_dir "$1")"; }
TARGET=$(server_dir resume-target)/data
KEPT=$(dirname "$TARGET")/.data.clone_partial
kept_exists() { [ -d "$ROOTFS$KEPT" ] && echo kept || echo none; }
status_message() { sql "$RECIPIENT" "SELECT error_message FROM performance_schema.clone_status"; }
file_copy() { sql "$RECIPIENT" "SELECT $1 FROM performance_schema.clone_progress WHERE stage = 'FILE COPY'"; }

start_donor() { server_start $D "$DONOR" "$(plugin_dir "${1:-ours}")" $OPTS --clone-donor-timeout-after-network-failure=0; }
start_recipient() { server_start $R "$RECIPIENT" "$OUR_PLUGIN_DIR" $OPTS; }

log "donor with data, recipient"
server_init $D
start_donor
bash "$REPO/ci/gen-data.sh" "$DONOR" "${TEST_DATA_MB:-64}" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user"
DONOR_SUMS=$(checksums "$DONOR")
DONOR_GTIDS=$(sql "$DONOR" "SELECT @@GLOBAL.gtid_executed")
server_init $R
start_recipient


# clone_stmt [PORT]: the clone from the donor on PORT into the target.
clone_stmt() {
  echo "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$DONOR,127.0.0.1:$OTHER';
    CLONE INSTANCE FROM donor_user@127.0.0.1:${1:-$DONOR} IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$TARGET'"
}
fresh_target() { rm -rf "$(rdir resume-target)" "$ROOTFS$KEPT"; mkdir -p "$(rdir resume-target)"; }
# copied_at_least MIB: the running clone has copied MIB MiB.
copied_at_least() {
  [ "$(sql "$RECIPIENT" "SELECT COALESCE(MAX(p.data), 0) >= $1 * 1048576 FROM performance_schema.clone_progress p, performance_schema.clone_status s
    WHERE s.state = 'In Progress' AND p.stage = 'FILE COPY' AND p.state = 'In Progress'" 2>/dev/null)" = 1 ]
}
# clone_mid_copy [PORT]: the clone throttled to 8 MiB/s in the background
# (`clone_pid`, its output in resume-clone.out), once it has copied 60 %
# of the donor's data.
clone_mid_copy() {
  wait_donor_idle "${1:-$DONOR}" >/dev/null
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 8; $(clone_stmt "${1:-$DONOR}")" >"$CACHE/resume-clone.out" 2>&1 &
  clone_pid=$!
  wait_until 60 0.1 -- copied_at_least "$(( ${TEST_DATA_MB:-64} * 6 / 10 ))" || fail "the clone did not reach 60 %"
}
# killed_mid_copy: the clone of clone_mid_copy, KILL QUERY'd (1317).
killed_mid_copy() {
  clone_mid_copy "$@"
  sql "$RECIPIENT" "KILL QUERY $(sql "$RECIPIENT" "SELECT PID FROM performance_schema.clone_status")"
  wait "$clone_pid"
}
# kill_server NAME: SIGKILL of that mysqld, by its PID file (which goes).
kill_server() { kill -9 "$(cat "$(rdir "$1")/mysqld.pid")" && rm -f "$(rdir "$1")/mysqld.pid"; }
# resume NAME [PORT]: the same statement again, at full speed; checks that
# it resumed (reusing at least MIN MiB) and what it made.
resume() {
  local name=$1 min=${2:-1} out reused
  wait_donor_idle "$DONOR" >/dev/null
  out=$(sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0; $(clone_stmt)" 2>&1)
  check "$name: the same statement succeeds" "" "$out"
  reused=$(status_message | sed -n 's/^Resumed: \([0-9]*\) MiB.*/\1/p')
  check "$name: clone_status says it resumed, reusing at least $min MiB" "yes" "$([ "${reused:-0}" -ge "$min" ] && echo yes || echo "no: $(status_message)")"
  check "$name: fewer bytes on the wire than the data" "1" "$(file_copy "network < data - $min * 1048576")"
  check "$name: the kept copy is gone" "none" "$(kept_exists)"
  verify_target "$name"
}
# verify_target NAME: innochecksum on every tablespace of the clone, then
# a server on it has the donor's checksums and GTIDs.
verify_target() {
  local bad
  bad=$(cd "$(rdir resume-target)/data" && find . -name '*.ibd' -o -name ibdata1 -o -name 'undo_*' | while read -r f; do
    in_root innochecksum "$TARGET/${f#./}" >/dev/null 2>&1 || echo "$f"; done | paste -sd' ')
  check "$1: innochecksum is clean on every tablespace" "" "$bad"
  check "$1: no marker left in the clone" "absent" "$([ -e "$(rdir resume-target)/data/#clone_kept" ] && echo present || echo absent)"
  rm -rf "$(rdir $C)"; mkdir -p "$(rdir $C)"/{files,tmp}
  mv "$(rdir resume-target)/data" "$(rdir $C)/data"
  server_start $C "$CHECKER" "$OUR_PLUGIN_DIR" $OPTS
  check "$1: the clone has the donor's checksums" "$DONOR_SUMS" "$(checksums "$CHECKER")"
  check "$1: and its GTIDs" "$DONOR_GTIDS" "$(sql "$CHECKER" "SELECT @@GLOBAL.gtid_executed")"
  server_stop $C
}

if scenario donor_killed; then
  log "the donor killed -9 at 60 %, started again, the same statement"
  fresh_target
  clone_mid_copy
  kill_server $D
  wait "$clone_pid"
  check "donor killed: the clone fails" "1" "$(grep -c '^ERROR' "$CACHE/resume-clone.out")"
  check "donor killed: the partial copy is kept beside the target" "kept" "$(kept_exists)"
  check "donor killed: clone_status says where" "1" "$(status_message | grep -c "kept in $KEPT for a resume")"
  start_donor
  resume "donor killed" "$(( ${TEST_DATA_MB:-64} / 3 ))"
fi

if scenario recipient_killed; then
  log "the recipient killed -9 at 60 %, started again, the same statement"
  fresh_target
  clone_mid_copy
  kill_server $R
  wait "$clone_pid"
  start_recipient
  check "recipient killed: the partial copy is kept beside the target" "kept" "$(kept_exists)"
  check "recipient killed: clone_status says it failed, and where the copy is" "Failed 1" \
    "$(sql "$RECIPIENT" "SELECT state FROM performance_schema.clone_status") $(status_message | grep -c "kept in $KEPT for a resume")"
  resume "recipient killed" "$(( ${TEST_DATA_MB:-64} / 3 ))"
fi

if scenario damaged; then
  log "a kept copy damaged on purpose: a flipped byte, a truncated file"
  fresh_target
  killed_mid_copy
  check "KILL QUERY: the clone is interrupted (1317), the copy kept" "1 kept" "$(grep -c '^ERROR 1317' "$CACHE/resume-clone.out") $(kept_exists)"
  # The two largest table files: one gets a byte flipped in its second
  # page, the other is cut to half.
  mapfile -t largest < <(cd "$ROOTFS$KEPT" && find . -name '*.ibd' -size +1M -printf '%s %p\n' | sort -rn | head -2 | cut -d' ' -f2)
  [ "${#largest[@]}" = 2 ] || fail "no two table files of 1 MiB in the kept copy"
  flip=$ROOTFS$KEPT/${largest[0]#./}
  byte=$(od -An -tu1 -j 20000 -N1 "$flip" | tr -d ' ')
  printf "$(printf '\\%03o' $(( byte ^ 1 )))" | dd of="$flip" bs=1 seek=20000 conv=notrunc status=none
  cut=$ROOTFS$KEPT/${largest[1]#./}
  truncate -s $(( $(stat -c %s "$cut") / 2 + 12345 )) "$cut"
  resume "damaged copy"
fi

if scenario other_donor; then
  log "a kept copy from another donor is not used"
  fresh_target
  killed_mid_copy
  check "other donor: the copy is kept" "kept" "$(kept_exists)"
  # A second donor, its own server_uuid, the same data as a clone of the first.
  rm -rf "$(rdir $O)"; mkdir -p "$(rdir $O)"/{files,tmp}
  wait_donor_idle "$DONOR" >/dev/null
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0; $(clone_stmt)" || fail "a copy for the second donor"
  mv "$(rdir resume-target)/data" "$(rdir $O)/data"
  rm -f "$(rdir $O)/data/auto.cnf"
  server_start $O "$OTHER" "$OUR_PLUGIN_DIR" $OPTS
  sql "$OTHER" "SELECT 1" >/dev/null || fail "the second donor"
  # A copy of the first donor's is kept again, then cloned from the second.
  fresh_target
  killed_mid_copy
  rlog=$(rdir $R)/error.log
  seen=$(grep -c 'is from another donor' "$rlog")
  out=$(sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0; $(clone_stmt "$OTHER")" 2>&1)
  check "other donor: the clone succeeds" "" "$out"
  check "other donor: the error log says the copy is another donor's" "$((seen + 1))" "$(grep -c 'is from another donor' "$rlog")"
  check "other donor: nothing reused (clone_status)" "" "$(status_message)"
  check "other donor: the wire carried all the data" "1" "$(file_copy "network >= data")"
  check "other donor: the kept copy is gone" "none" "$(kept_exists)"
  verify_target "other donor"
  server_stop $O
fi

if scenario stock_donor; then
  log "a stock donor: nothing kept, nothing else changes"
  server_stop $D
  start_donor stock
  fresh_target
  killed_mid_copy
  check "stock donor: the clone is interrupted (1317)" "1" "$(grep -c '^ERROR 1317' "$CACHE/resume-clone.out")"
  check "stock donor: no copy kept, no marker in the target" "none absent" \
    "$(kept_exists) $([ -e "$(rdir resume-target)/data/#clone_kept" ] && echo present || echo absent)"
  check "stock donor: clone_status has the stock error alone" "0" "$(status_message | grep -c 'kept in')"
  server_stop $D
  start_donor
fi

if scenario in_place; then
  log "in place, staged: the donor killed mid-copy, the same statement"
  server_init $I
  server_start_supervised $I "$INPLACE" "$OUR_PLUGIN_DIR" $OPTS
  restarts() { cat "$(rdir $I)/exit-codes" 2>/dev/null | grep -c '^16$'; }
  restarted_since() { [ "$(restarts)" -gt "$1" ]; }
  inplace_copied() {
    [ "$(sql "$INPLACE" "SELECT COALESCE(MAX(data), 0) >= $1 * 1048576 FROM performance_schema.clone_progress WHERE stage = 'FILE COPY'" 2>/dev/null)" = 1 ]
  }
  ilog=$(rdir $I)/error.log
  in_place() {
    wait_donor_idle "$DONOR" >/dev/null
    sql "$INPLACE" "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$DONOR', clone_max_data_bandwidth = ${1:-0};
      CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'" >"$CACHE/resume-inplace.out" 2>&1
  }
  # restarted_on_clone NAME BEFORE: the statement succeeded, the server
  # restarted on the clone: the donor's checksums and GTIDs.
  restarted_on_clone() {
    check "$1: the statement succeeds" "" "$(cat "$CACHE/resume-inplace.out")"
    wait_until 60 0.5 -- restarted_since "$2" && server_wait $I "$INPLACE"
    check "$1: the donor's checksums" "$DONOR_SUMS" "$(checksums "$INPLACE")"
    check "$1: the donor's GTIDs" "$DONOR_GTIDS" "$(sql "$INPLACE" "SELECT @@GLOBAL.gtid_executed")"
    check "$1: no kept copy, no staging left" "" "$(cd "$(rdir $I)/data" && ls -d .clone_staging* 2>/dev/null)"
  }
  sql "$INPLACE" "CREATE DATABASE mine; CREATE TABLE mine.t (id INT PRIMARY KEY); INSERT INTO mine.t VALUES (1), (2)"
  mine=$(checksums "$INPLACE")
  in_place 8 &
  clone_pid=$!
  wait_until 60 0.1 -- inplace_copied $(( ${TEST_DATA_MB:-64} * 6 / 10 )) ||
    fail "the in-place clone did not reach 60 %"
  kill_server $D
  wait "$clone_pid"
  check "in place, donor killed: the clone fails, this server keeps its data" "1 $mine" "$(grep -c '^ERROR' "$CACHE/resume-inplace.out") $(checksums "$INPLACE")"
  check "in place, donor killed: the staging directory is kept for a resume" "yes" \
    "$([ -f "$(rdir $I)/data/.clone_staging.clone_partial/#clone_kept" ] && echo yes || echo no)"
  check "in place, donor killed: clone_status says where" "1" \
    "$(sql "$INPLACE" "SELECT error_message FROM performance_schema.clone_status" | grep -c 'clone_staging.clone_partial for a resume')"
  start_donor
  before=$(restarts)
  in_place
  restarted_on_clone "in place, resumed" "$before"
  reused=$(sed -n 's/.*Resumed: \([0-9]*\) MiB taken from the partial copy.*/\1/p' "$ilog" | tail -1)
  check "in place, resumed: clone_status Completed, saying it resumed" "Completed 1" \
    "$(sql "$INPLACE" "SELECT state, error_message LIKE 'Resumed: % MiB taken from the partial copy kept in %' FROM performance_schema.clone_status" | tr '\t' ' ')"
  check "in place, resumed: at least a third of the data taken from the kept copy" "yes" \
    "$([ "${reused:-0}" -ge $(( ${TEST_DATA_MB:-64} / 3 )) ] && echo yes || echo "no (${reused:-none})")"

  log "in place, staged: a re-clone after the donor changed 5 % of its rows"
  # A quarter of one of five tables of equal size: 5 % of the rows.
  sql "$DONOR" "UPDATE bench.t1 SET h = REVERSE(h) WHERE id <= $(( $(sql "$DONOR" "SELECT MAX(id) FROM bench.t1") / 4 ))" ||
    fail "changing 5 % of the donor's rows"
  DONOR_SUMS=$(checksums "$DONOR")
  DONOR_GTIDS=$(sql "$DONOR" "SELECT @@GLOBAL.gtid_executed")
  before=$(restarts)
  in_place
  restarted_on_clone "re-clone" "$before"
  reused=$(sed -n "s/.*Re-cloned: \([0-9]*\) MiB taken from this server's own files.*/\1/p" "$ilog" | tail -1)
  check "re-clone: clone_status Completed, saying what it took from this server's files" "Completed 1" \
    "$(sql "$INPLACE" "SELECT state, error_message LIKE 'Re-cloned: % MiB taken from this server''s own files%' FROM performance_schema.clone_status" | tr '\t' ' ')"
  check "re-clone: at least half of the data taken from this server's own files" "yes" \
    "$([ "${reused:-0}" -ge $(( ${TEST_DATA_MB:-64} / 2 )) ] && echo yes || echo "no (${reused:-none})")"

  log "in place, staged: a block this server changes during the copy is sent again"
  sql "$DONOR" "UPDATE bench.t1 SET h = REVERSE(h) WHERE id <= 10"
  DONOR_SUMS=$(checksums "$DONOR")
  DONOR_GTIDS=$(sql "$DONOR" "SELECT @@GLOBAL.gtid_executed")
  last=$(sql "$INPLACE" "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE table_schema = 'bench' ORDER BY table_name DESC LIMIT 1")
  before=$(restarts)
  fetched=$(grep -c 'changed here since it was digested' "$ilog")
  in_place 8 &
  clone_pid=$!
  wait_until 60 0.1 -- inplace_copied 4 ||
    fail "the in-place clone did not start copying"
  # Every page of the last table changes here, and is written to its file.
  sql "$INPLACE" "SET SESSION sql_log_bin = 0; UPDATE $last SET h = REVERSE(h); FLUSH TABLES $last FOR EXPORT; UNLOCK TABLES"
  wait "$clone_pid"
  restarted_on_clone "changed during the copy" "$before"
  check "changed during the copy: blocks sent again" "yes" \
    "$([ "$(grep -c 'changed here since it was digested' "$ilog")" -gt "$fetched" ] && echo yes || echo no)"
  server_stop $I
fi

report "resumable clone"
