#!/usr/bin/env bash
# Integration tests of remote clone (CLONE INSTANCE FROM) on real mysqld
# 9.7.4 servers on 127.0.0.1: our recipient from our donor, interoperation
# with the stock plugin both ways, in-place provisioning with restart and
# replication set up on the clone, and the stock errors. Data is verified by
# CHECKSUM TABLE on a server started on each clone. Closes with
# "N passed, N failed".
set -uo pipefail
LOG_TAG=test-remote
. "$(dirname "$0")/common.sh"
SERVERS=remote

PORT=${PORT_BASE:-13800}
DONOR=$PORT RECIPIENT=$((PORT + 1)) CLONED=$((PORT + 2))
SCRIPT_SERVERS=(donor recipient cloned)
trap stop_script_servers EXIT

GTID="--gtid-mode=ON --enforce-gtid-consistency=ON"
build_plugin
install_our_plugin

log "donor with data, GTID mode on"
server_init donor
server_start donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID
bash "$REPO/ci/gen-data.sh" "$DONOR" "${TEST_DATA_MB:-200}" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user;
  CREATE USER repl IDENTIFIED BY 'Repl-1234'; GRANT REPLICATION SLAVE ON *.* TO repl;
  CREATE TABLE bench.live (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))"
server_stop donor

# clone_into DONOR_PLUGIN RECIPIENT_PLUGIN [SQL before CLONE]: a DATA
# DIRECTORY clone under concurrent inserts, verified on a server started on it.
clone_into() {
  local dp=$1 rp=$2 pre=${3:-} dest writer out
  server_start donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so $GTID
  server_init recipient
  server_start recipient "$RECIPIENT" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  local gtids_before rows_before donor_log_from
  donor_log_from=$(( $(wc -l <"$ROOTFS$(server_dir donor)/error.log") + 1 ))
  gtids_before=$(sql "$DONOR" "SELECT @@global.gtid_executed")
  rows_before=$(sql "$DONOR" "SELECT COUNT(*) FROM bench.live")
  ( for i in $(seq 1 100000); do
      sql "$DONOR" "INSERT INTO bench.live(v) VALUES (UUID()),(UUID())" 2>/dev/null || break
      [ -e "$ROOTFS$(server_dir donor)/stop-writer" ] && break
    done ) &
  writer=$!
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  out=$(sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; $pre
    CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'" 2>&1)
  touch "$ROOTFS$(server_dir donor)/stop-writer"; wait "$writer"; rm -f "$ROOTFS$(server_dir donor)/stop-writer"
  check "$rp recipient <- $dp donor: CLONE INSTANCE succeeds" "" "$out"
  check "$rp <- $dp: clone_status" "Completed	0	127.0.0.1:$DONOR" \
    "$(sql "$RECIPIENT" "SELECT state, error_no, source FROM performance_schema.clone_status")"
  [ "$rp" = ours ] && check "$rp <- $dp: buffers counted under memory/clone/data, all freed" "1	0" \
    "$(sql "$RECIPIENT" "SELECT count_alloc > 0 AND count_alloc = count_free, current_number_of_bytes_used
      FROM performance_schema.memory_summary_global_by_event_name WHERE event_name = 'memory/clone/data'")"
  check "$rp <- $dp: stages" "Completed,Completed,Completed,Completed,Completed,Not Started,Not Started" \
    "$(sql "$RECIPIENT" "SELECT state FROM performance_schema.clone_progress" | paste -sd, -)"
  # Compression makes the wire bytes fewer than the data bytes.
  local wire="network >= data"
  [[ "$pre" == *compression=ON* ]] && wire="network < data / 2"
  check "$rp <- $dp: network bytes counted ($wire)" "1" "$(sql "$RECIPIENT" "SELECT $wire AND data > 0 FROM performance_schema.clone_progress WHERE stage='FILE COPY'")"
  # The capability exchange: only our two plugins agree on extensions; a
  # stock peer sees the stock protocol (a stock recipient would refuse the
  # first zstd message), and our recipient starts over with zlib for it.
  local rlog="$ROOTFS$(server_dir recipient)/error.log" found
  if [ "$rp" = ours ]; then
    found=$(grep -c 'The donor is this plugin' "$rlog")
    check "$rp <- $dp: the recipient knows its donor is $dp" "$([ "$dp" = ours ] && echo 1 || echo 0)" "$found"
    if [[ "$pre" == *compression=ON* ]]; then
      if [ "$dp" = ours ]; then
        check "$rp <- $dp: zstd agreed" "1" "$(grep -c 'agreed: zstd' "$rlog")"
      else
        check "$rp <- $dp: zlib with a stock donor" "1" "$(grep -c 'connecting again with the server.s compression' "$rlog")"
      fi
    fi
  fi
  if [ "$dp" = ours ]; then
    found=$(tail -n +"$donor_log_from" "$ROOTFS$(server_dir donor)/error.log" | grep -c 'The recipient is this plugin')
    check "$rp <- $dp: the donor knows its recipient is $rp" "$([ "$rp" = ours ] && echo 1 || echo 0)" "$([ "$found" -gt 0 ] && echo 1 || echo 0)"
  fi
  # InnoDB (innodb_extend_and_initialize ON) writes the zeros of the files
  # it extends; so does our recipient: no extent left for a later write to
  # convert, a change O_DIRECT_NO_FSYNC would not sync.
  [ "$rp" = ours ] && check "$rp <- $dp: no unwritten extents in the cloned files" "" \
    "$(unwritten_extents "$ROOTFS$dest" | paste -sd' ' -)"
  server_start cloned "$CLONED" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  check "$rp <- $dp: checksums of static tables" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$CLONED" "$STATIC_TABLES")"
  local max q
  max=$(sql "$CLONED" "SELECT COALESCE(MAX(id),0) FROM bench.live")
  q="SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id,v))),0) FROM bench.live WHERE id <= $max"
  check "$rp <- $dp: live table is a consistent snapshot" "$(sql "$DONOR" "$q")" "$(sql "$CLONED" "$q")"
  # The clone's GTIDs are the donor's up to the snapshot: all of those before
  # the clone, and one per writer transaction (two rows each) in the clone.
  local cloned_gtids new
  cloned_gtids=$(sql "$CLONED" "SELECT @@global.gtid_executed")
  check "$rp <- $dp: clone's gtid_executed holds the donor's from before the clone, within the donor's" "1	1" \
    "$(sql "$DONOR" "SELECT GTID_SUBSET('$gtids_before', '$cloned_gtids'), GTID_SUBSET('$cloned_gtids', @@global.gtid_executed)")"
  new=$(sql "$DONOR" "SELECT GTID_SUBTRACT('$cloned_gtids', '$gtids_before')")
  check "$rp <- $dp: one GTID per transaction written during the clone (and some were)" \
    "$(( ($(sql "$CLONED" "SELECT COUNT(*) FROM bench.live") - rows_before) / 2 )) 1" \
    "$(gtid_count "$new") $(( $(gtid_count "$new") > 0 ))"
  server_stop cloned; server_stop recipient; server_stop donor
}

scenario clone_into && clone_into ours ours "SET GLOBAL clone_autotune_concurrency=OFF, clone_max_concurrency=4;"
scenario clone_into && clone_into ours stock "SET GLOBAL clone_autotune_concurrency=OFF, clone_max_concurrency=4;"
scenario clone_into && clone_into stock ours "SET GLOBAL clone_autotune_concurrency=OFF, clone_max_concurrency=4;"
scenario clone_into && clone_into ours ours "SET GLOBAL clone_enable_compression=ON;"
scenario clone_into && clone_into ours stock "SET GLOBAL clone_enable_compression=ON;"
scenario clone_into && clone_into stock ours "SET GLOBAL clone_enable_compression=ON;"

# ddl_tables_off PORT ROWS: the tables of schema ddl on the server at PORT
# that hold neither ROWS rows nor none, or cannot be read ("table:count").
# Each statement of the DDL loops commits on its own: a table holds all its
# rows, or none if the snapshot fell between its CREATE (or TRUNCATE) and
# its INSERT.
ddl_tables_off() {
  local t rows bad=""
  for t in $(sql "$1" "SELECT table_name FROM information_schema.tables WHERE table_schema='ddl'"); do
    rows=$(sql "$1" "SELECT COUNT(*) FROM ddl.$t" 2>&1)
    [ "$rows" = "$2" ] || [ "$rows" = 0 ] || bad+=" $t:$rows"
  done
  echo "$bad"
}

# clone_under_ddl DONOR_PLUGIN RECIPIENT_PLUGIN: with clone_block_ddl=OFF, a
# throttled clone while the donor creates, alters, renames, truncates and
# drops tables; the files DDL adds, renames and deletes mid-clone travel as
# extra file descriptors. Verified on a server started on the clone.
clone_under_ddl() {
  local dp=$1 rp=$2 dest writer out stop=$ROOTFS$(server_dir donor)/stop-ddl
  server_start donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so $GTID
  server_init recipient
  server_start recipient "$RECIPIENT" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  sql "$DONOR" "CREATE DATABASE ddl"
  ( i=0
    while [ ! -e "$stop" ]; do
      i=$((i + 1))
      sql "$DONOR" "CREATE TABLE ddl.t$i (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO ddl.t$i VALUES (1, 'a'), (2, 'b');
        ALTER TABLE ddl.t$i ADD COLUMN w INT; RENAME TABLE ddl.t$i TO ddl.r$i;
        $([ $((i % 3)) = 0 ] && echo "DROP TABLE ddl.r$i;") $([ $((i % 3)) = 1 ] && echo "TRUNCATE TABLE ddl.r$i; INSERT INTO ddl.r$i VALUES (1, 'a', 1), (2, 'b', 2);")" || break
    done ) &
  writer=$!
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  out=$(sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR', clone_block_ddl=OFF, clone_max_data_bandwidth=40;
    CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'" 2>&1)
  touch "$stop"; wait "$writer"; rm -f "$stop"
  check "$rp <- $dp under concurrent DDL: CLONE INSTANCE succeeds" "" "$out"
  check "$rp <- $dp under concurrent DDL: DDL reached the recipient mid-clone" "1" \
    "$(grep -c 'Clone DDL APPLY' "$ROOTFS$(server_dir recipient)/error.log" | awk '{print ($1 > 0)}')"
  server_start cloned "$CLONED" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  check "$rp <- $dp under concurrent DDL: checksums of static tables" \
    "$(checksums "$DONOR" "bench.t1, bench.t2, bench.wide")" "$(checksums "$CLONED" "bench.t1, bench.t2, bench.wide")"
  check "$rp <- $dp under concurrent DDL: every cloned DDL table is readable" "" "$(ddl_tables_off "$CLONED" 2)"
  sql "$DONOR" "DROP DATABASE ddl"
  server_stop cloned; server_stop recipient; server_stop donor
}

scenario clone_under_ddl && clone_under_ddl ours ours
scenario clone_under_ddl && clone_under_ddl stock ours
scenario clone_under_ddl && clone_under_ddl ours stock

# resumes_after_ddl DONOR_PLUGIN RECIPIENT_PLUGIN: with clone_block_ddl=OFF
# the donor creates tables through the file copy; the proxy cuts every
# connection right after the first file descriptor of those tables (sent
# before PAGE COPY's START). The donor's restart sends that metadata again,
# which InnoDB applies as known files: the clone resumes and completes.
resumes_after_ddl() {
  local dp=$1 rp=$2 dest writer out proxy plog stop=$ROOTFS$(server_dir donor)/stop-ddl
  local PROXY=$((PORT + 5))
  server_start donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so $GTID
  server_init recipient
  server_start recipient "$RECIPIENT" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  plog=$ROOTFS$(server_dir recipient)/proxy.log
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" cut-after-ddl 2>"$plog" &
  proxy=$!
  proxy_listening "$PROXY"
  sql "$DONOR" "CREATE DATABASE ddl"
  ( i=0
    while [ ! -e "$stop" ]; do
      i=$((i + 1))
      sql "$DONOR" "CREATE TABLE ddl.t$i (id INT PRIMARY KEY); INSERT INTO ddl.t$i VALUES (1)" || break
    done ) &
  writer=$!
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  out=$(sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY', clone_block_ddl=OFF, clone_max_data_bandwidth=40;
    CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL" 2>&1)
  touch "$stop"; wait "$writer"; rm -f "$stop"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "$rp <- $dp cut after DDL metadata: the proxy cut there" "tampered" "$(head -1 "$plog")"
  check "$rp <- $dp cut after DDL metadata: the clone resumes and succeeds" "" "$out"
  check "$rp <- $dp cut after DDL metadata: the donor restarted the clone" "1" \
    "$(grep -c 'Clone Begin Master Task: Restart' "$ROOTFS$(server_dir donor)/error.log" | awk '{print ($1 > 0)}')"
  server_start cloned "$CLONED" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  check "$rp <- $dp cut after DDL metadata: checksums of static tables" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$CLONED" "$STATIC_TABLES")"
  check "$rp <- $dp cut after DDL metadata: every cloned DDL table is readable" "" "$(ddl_tables_off "$CLONED" 1)"
  sql "$DONOR" "DROP DATABASE ddl"
  server_stop cloned; server_stop recipient; server_stop donor
}

scenario resumes_after_ddl && resumes_after_ddl ours ours
scenario resumes_after_ddl && resumes_after_ddl stock ours
scenario resumes_after_ddl && resumes_after_ddl stock stock

if scenario errors; then
log "errors"
server_start donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID
server_init recipient
server_start recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID
d=$(server_dir recipient)/files/x
check "donor not in clone_valid_donor_list (3869)" "3869" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$d'")"
check "status untouched by a donor-list refusal" "0" "$(sql "$RECIPIENT" "SELECT COUNT(*) FROM performance_schema.clone_status")"
sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
check "wrong password (3862)" "3862" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'nope' DATA DIRECTORY = '$d'")"
check "user without BACKUP_ADMIN on the donor (3862)" "3862" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM repl@127.0.0.1:$DONOR IDENTIFIED BY 'Repl-1234' DATA DIRECTORY = '$d'")"
check "clone refused before copying creates no directory" "absent" "$([ -e "$ROOTFS$d" ] && echo present || echo absent)"
sql "$DONOR" "SET GLOBAL max_allowed_packet=1048576"
check "donor max_allowed_packet too small (3862)" "3862" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$d'")"
sql "$DONOR" "SET GLOBAL max_allowed_packet=DEFAULT"

log "KILL QUERY of a throttled clone stops the donor's side too"
sql "$RECIPIENT" "SET GLOBAL clone_max_network_bandwidth=4, clone_autotune_concurrency=OFF, clone_max_concurrency=2"
( sql "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$d'" \
    >"$ROOTFS$(server_dir recipient)/killed.out" 2>&1 ) &
cl=$!
# copying_from_donor: the recipient is in FILE COPY and the donor serves it.
copying_from_donor() {
  [ "$(sql "$RECIPIENT" "SELECT stage FROM performance_schema.clone_progress WHERE state='In Progress'")" = "FILE COPY" ] &&
    [ "$(donor_clones "$DONOR")" -gt 0 ]
}
wait_until 10 0.1 -- copying_from_donor
check "donor serves the clone while it runs" "1" "$([ "$(donor_clones "$DONOR")" -gt 0 ] && echo 1)"
sql "$RECIPIENT" "KILL QUERY $(sql "$RECIPIENT" "SELECT pid FROM performance_schema.clone_status")"
wait "$cl"
check "killed remote clone fails with 1317" "1" "$(grep -c '^ERROR 1317' "$ROOTFS$(server_dir recipient)/killed.out")"
# Stock leaves the partial directory at its path; between our plugins it
# is kept beside it for a resume (ci/test-resume.sh), here discarded.
check "killed remote clone keeps its partial copy beside its path" "absent kept" \
  "$([ -e "$ROOTFS$d" ] && echo present || echo absent) $([ -f "$ROOTFS$(dirname "$d")/.x.clone_partial/#clone_kept" ] && echo kept || echo none)"
rm -rf "${ROOTFS:?}$d" "$ROOTFS$(dirname "$d")/.x.clone_partial"
check "no clone session left on the donor (within 20 s)" "0" "$(wait_donor_idle "$DONOR" 20)"
check "donor can be cloned again right away" "0" "$(errno_of "$RECIPIENT" "SET GLOBAL clone_max_network_bandwidth=DEFAULT; CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$d'")"
rm -rf "$ROOTFS$d"
server_stop recipient
server_init recipient
server_start recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID --character-set-server=latin1 --collation-server=latin1_swedish_ci
sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
check "configuration mismatch (3868)" "3868" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$d'")"
server_stop recipient
fi

# recipient_copied MIB: waits (10 s at most) until the recipient's FILE
# COPY has taken more than MIB MiB, so that what comes next lands mid-copy.
recipient_copied() { wait_until 10 0.2 -- copied_more_than "$1"; }
copied_more_than() {
  [ "$(sql "$RECIPIENT" "SELECT data > $1 * 1048576 FROM performance_schema.clone_progress WHERE stage='FILE COPY'")" = 1 ]
}

# resumes DONOR_PLUGIN RECIPIENT_PLUGIN: a clone through a TCP proxy whose
# connections are all cut mid-copy; the recipient reconnects and resumes
# with COM_REINIT (which our donor lets in only for the clone's own account,
# once it waits for its recipient), verified by checksums.
resumes() {
  local dp=$1 rp=$2 dest cl proxy
  local PROXY=$((PORT + 5))
  server_stop donor
  server_start donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so $GTID
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" &
  proxy=$!
  proxy_listening "$PROXY"
  server_init recipient
  server_start recipient "$RECIPIENT" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY', clone_max_data_bandwidth=40"
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  ( sql "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest'" \
      >"$ROOTFS$(server_dir recipient)/resume.out" 2>&1 ) &
  cl=$!
  recipient_copied 20
  kill -USR1 "$proxy"
  wait "$cl"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "$rp <- $dp: clone resumed after the connections were cut" "" "$(cat "$ROOTFS$(server_dir recipient)/resume.out")"
  check "$rp <- $dp: the recipient saw the network failure" "1" \
    "$(grep -c 'Source Network issue' "$ROOTFS$(server_dir recipient)/error.log" | awk '{print ($1 > 0)}')"
  check "$rp <- $dp: the donor resumed with COM_REINIT" "1" \
    "$(grep -c 'Clone Begin Master Task: Restart' "$ROOTFS$(server_dir donor)/error.log" | awk '{print ($1 > 0)}')"
  check "$rp <- $dp: resumed clone's status" "Completed	0" "$(sql "$RECIPIENT" "SELECT state, error_no FROM performance_schema.clone_status")"
  server_stop recipient
  server_start cloned "$CLONED" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so $GTID
  check "$rp <- $dp: resumed clone: checksums" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$CLONED" "$STATIC_TABLES")"
  server_stop cloned
}

log "a network failure in the middle of a clone: the recipient reconnects and resumes"
scenario resumes && resumes ours ours
scenario resumes && resumes ours stock
scenario resumes && resumes stock ours
server_stop donor

# thread_sleeping PID TID: whether thread TID of process PID is asleep (S).
thread_sleeping() {
  [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$1"/task/"$2"/status 2>/dev/null)" = S ]
}

# lost_write DONOR_PLUGIN: a write of the recipient's writer thread fails
# while the network fails. The proxy holds the donor's stream until the
# recipient has written all it got, then passes one more data block and
# cuts every connection; strace holds the writer's write of that block for
# 3 s and fails it with ENOSPC, so the recipient meets the cut connection
# with the failure still behind it. InnoDB counted the block done when it
# was handed over, so a resume would skip it: the clone must fail with the
# write's error, never resume past it and complete.
lost_write() {
  local dp=$1 dest cl proxy tracer pid tid out
  local PROXY=$((PORT + 5)) trace=$ROOTFS$(server_dir recipient)/strace.out
  server_start donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so $GTID
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" hold-cut &
  proxy=$!
  proxy_listening "$PROXY"
  server_init recipient
  server_start recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY', clone_max_data_bandwidth=40,
    clone_autotune_concurrency=OFF, clone_max_concurrency=1"
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  ( sql "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL" \
      >"$ROOTFS$(server_dir recipient)/lost.out" 2>&1 ) &
  cl=$!
  recipient_copied 20
  kill -USR2 "$proxy"
  # The recipient writes what it got; then its writer has nothing queued.
  pid=$(server_pid recipient)
  tid=$(grep -lx clone_write /proc/"$pid"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
  wait_until 5 0.1 -- thread_sleeping "$pid" "$tid"
  sleep 1
  strace -qq -p "$tid" -e trace=pwrite64 -e inject=pwrite64:error=ENOSPC:delay_enter=3000000:when=1 -o "$trace" &
  tracer=$!
  sleep 0.5
  kill -USR2 "$proxy"
  wait_until 10 0.1 -- grep -q INJECTED "$trace" 2>/dev/null
  kill "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null
  check "lost write <- $dp: the failure was injected into the writer" "1" "$(grep -c 'ENOSPC.*INJECTED' "$trace")"
  wait "$cl"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  out=$(cat "$ROOTFS$(server_dir recipient)/lost.out")
  check "lost write <- $dp: the clone fails with the write's error, ENOSPC on a named file" "1026 1" \
    "$(sed -n 's/^ERROR \([0-9]*\).*/\1/p' <<<"$out") $(grep -c "Error writing file '.*' (errno: 28" <<<"$out")"
  check "lost write <- $dp: clone_status says so" "Failed	1026" "$(sql "$RECIPIENT" "SELECT state, error_no FROM performance_schema.clone_status")"
  check "lost write <- $dp: no resume past it" "0" "$(grep -c 'Source re-connect' "$ROOTFS$(server_dir recipient)/error.log")"
  server_stop recipient
  # The donor keeps the clone for a reconnection that never comes.
  server_stop donor
}

log "a write fails behind the stream while the network fails: no resume past it"
scenario lost_write && lost_write ours
scenario lost_write && lost_write stock

if scenario in_place; then
server_start donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID

log "in-place clone under a supervisor, then replication from the donor"
server_init recipient
server_start_supervised recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so $GTID
sql "$RECIPIENT" "CREATE DATABASE old_data; SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
out=$(sql "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'" 2>&1)
check "in-place CLONE INSTANCE returns" "" "$out"
# The old server exits (status 16) before the new one answers.
wait_until 30 0.1 -- [ -s "$ROOTFS$(server_dir recipient)/exit-codes" ]
server_wait recipient "$RECIPIENT"
check "server restarted with status 16" "16" "$(head -1 "$ROOTFS$(server_dir recipient)/exit-codes")"
check "in-place: all stages completed after restart" "Completed,Completed,Completed,Completed,Completed,Completed,Completed" \
  "$(sql "$RECIPIENT" "SELECT state FROM performance_schema.clone_progress" | paste -sd, -)"
check "in-place: status Completed with donor coordinates" "Completed	0	1" \
  "$(sql "$RECIPIENT" "SELECT state, error_no, binlog_file LIKE 'binlog.%' FROM performance_schema.clone_status")"
check "in-place: every doublewrite file fully allocated" "" "$(unallocated_doublewrite recipient)"
check "in-place: old data is gone" "0" "$(sql "$RECIPIENT" "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name='old_data'")"
check "in-place: checksums" "$(checksums "$DONOR")" "$(checksums "$RECIPIENT")"
check "in-place: gtid_executed equals the donor's" "$(sql "$DONOR" "SELECT @@global.gtid_executed")" "$(sql "$RECIPIENT" "SELECT @@global.gtid_executed")"
sql "$RECIPIENT" "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=$DONOR, SOURCE_USER='repl',
  SOURCE_PASSWORD='Repl-1234', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1; START REPLICA"
sql "$DONOR" "INSERT INTO bench.live(v) VALUES ('after clone 1'), ('after clone 2'); CREATE TABLE bench.after_clone (id INT PRIMARY KEY); INSERT INTO bench.after_clone VALUES (1)"
# caught_up: the recipient has applied every transaction the donor has.
caught_up() { has_gtids "$RECIPIENT" "$(sql "$DONOR" "SELECT @@global.gtid_executed")"; }
wait_until 30 0.5 -- caught_up
check "replica caught up with writes made after the clone" "$(checksums "$DONOR")" "$(checksums "$RECIPIENT")"
check "replication threads running" "ON	ON" "$(sql "$RECIPIENT" "SELECT c.service_state, a.service_state FROM performance_schema.replication_connection_status c JOIN performance_schema.replication_applier_status a USING (channel_name)")"
server_stop recipient
fi

report test-remote
