#!/usr/bin/env bash
# A hostile peer cannot crash a server nor make the recipient write outside
# the target directory. Honest servers talk through ci/proxy.py, which
# rewrites one InnoDB descriptor on the way: from the donor, file names with
# `..` or absolute, a file index or chunk number out of range, an absurd file
# count; from the recipient, an acknowledgement that is not one. Each clone
# must fail with a clear error, write nothing outside, and both servers must
# go on answering. Closes with "N passed, N failed".
#
#   ci/test-hostile-peers.sh [--stock]
#
# ONLY=<regex> runs the scenarios it matches (hostile_donor, kill,
# hostile_recipient, second_account); an honest clone closes every run.
#
# With --stock the stock plugin takes the place of ours on the side under
# attack, for comparison: on MySQL 9.7.4 the stock recipient dies on the
# file index (signal 11), chunk number (InnoDB assertion) and file count
# (std::bad_alloc) cases.
set -uo pipefail
LOG_TAG=test-hostile-peers
. "$(dirname "$0")/common.sh"
SERVERS=hostile

UNDER_TEST=ours
[ "${1:-}" = --stock ] && UNDER_TEST=stock
PORT=${PORT_BASE:-14000}
DONOR=$PORT RECIPIENT=$((PORT + 1)) INTRUDER=$((PORT + 2)) PROXY=$((PORT + 5)) PROXY2=$((PORT + 6))
SCRIPT_SERVERS=(donor recipient intruder victimcopy)
trap stop_script_servers EXIT

build_plugin
install_our_plugin

# start NAME PORT PLUGIN: (re)starts a server; the recipient reaches the
# donor only through the proxy.
start() {
  local options=()
  # Workers from the start (no auto-tuning), so a worker has a stream to tamper with.
  [ "$1" = recipient ] && options=(--loose-clone-autotune-concurrency=OFF --loose-clone-max-concurrency=4)
  server_start "$1" "$2" "$(plugin_dir "$3")" --plugin-load-add=mysql_clone.so "${options[@]}"
  if [ "$1" = recipient ]; then
    sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY'"
  fi
}
server_init donor
start donor "$DONOR" ours
echo ours >"$ROOTFS$(server_dir donor)/plugin"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user;
  CREATE DATABASE app; CREATE TABLE app.victim (id INT PRIMARY KEY, v TEXT);
  INSERT INTO app.victim VALUES (1, 'a'), (2, 'b')"
server_init recipient

ESCAPE=/tmp/clone-rs-escape.ibd
# through VICTIM NAME TAMPERING...: runs the plugin under test on VICTIM
# (donor or recipient), ours on the other side, and one clone through the
# tampering proxy into $dest (after the statements in CLONE_PRE, if set);
# sets CLONE_ERRNO to the clone's error number.
# Checks that the proxy did rewrite a descriptor and that both servers
# still answer.
dest=$(server_dir recipient)/hostile
# What a failed clone into dest keeps for a resume (ours): removed with
# dest, so that every case's clone sends its data and the proxy sees it.
kept=$(server_dir recipient)/.hostile.clone_partial
# serve VICTIM: the plugin under test runs on VICTIM, ours on the other
# side; a server is (re)started when it runs the other plugin, or none.
serve() {
  local server port want
  for server in donor recipient; do
    port=$DONOR; [ $server = recipient ] && port=$RECIPIENT
    want=ours; [ $server = "$1" ] && want=$UNDER_TEST
    if [ "$(cat "$ROOTFS$(server_dir $server)/plugin" 2>/dev/null)" != $want ]; then
      server_stop $server; start $server $port $want; echo $want >"$ROOTFS$(server_dir $server)/plugin"
    fi
  done
}
through() {
  local victim=$1 name=$2 proxy log server port; shift 2
  serve "$victim"
  wait_donor_idle "$DONOR" >/dev/null
  log="$ROOTFS$(server_dir recipient)/tamper.log"
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" "$@" 2>"$log" &
  proxy=$!
  proxy_listening "$PROXY"
  touch "$ROOTFS$(server_dir before-clone)"
  CLONE_ERRNO=$(errno_of "$RECIPIENT" "${CLONE_PRE:-} CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY
    IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL")
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "$name: the proxy rewrote a descriptor" "tampered" "$(head -1 "$log")"
  for server in donor recipient; do
    port=$DONOR; [ $server = recipient ] && port=$RECIPIENT
    if ! check "$name: the $server still answers" "1" "$(sql $port "SELECT 1" 2>&1)"; then
      log "the $server died (see $ROOTFS$(server_dir $server)/error.log); starting it again"
      rm -f "$ROOTFS$(server_dir $server)/plugin"
    fi
  done
}

# refused NAME EXPECTED_ERRNO EXPECTED_MESSAGE_PART TAMPERING...: a hostile
# donor; the recipient must refuse the clone and write nothing outside.
refused() {
  local name=$1 errno=$2 message=$3; shift 3
  through recipient "$name" "$@"
  check "$name: clone fails with $errno" "$errno" "$CLONE_ERRNO"
  check "$name: clone_status tells why" "1" \
    "$(sql "$RECIPIENT" "SELECT error_message LIKE '%$message%' FROM performance_schema.clone_status" 2>&1)"
  check "$name: nothing written outside (the escape path, or any file of the root file system outside the servers' folders)" "" \
    "$( { [ -e "$ROOTFS$ESCAPE" ] && echo "$ESCAPE"
          find "$ROOTFS" -xdev -path "$ROOTFS/clone-rs" -prune -o -path "$ROOTFS/proc" -prune -o -type f -newer "$ROOTFS$(server_dir before-clone)" -print; } | head -3)"
  # The recipient told the donor, which ended its side at once (it does not
  # wait for a reconnection, as after a network failure).
  check "$name: the donor's clone sessions ended (within 5 s)" "0" "$(wait_donor_idle "$DONOR" 5)"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept" "${ROOTFS:?}$ESCAPE"
}

# Scenario hostile_donor: descriptors a donor must not send.
if scenario hostile_donor; then
  log "a hostile donor, a $UNDER_TEST recipient"
  refused "file name with parent steps" 1525 "file path" rename app/victim.ibd "../../../../../../../..$ESCAPE"
  refused "absolute file name outside" 1525 "file path" rename app/victim.ibd "$ESCAPE"
  refused "file index out of range" 3863 "Invalid File Index" index app/victim.ibd 4000000000
  refused "chunk number out of range" 3863 "Invalid Chunk Number" chunk 4000000000
  refused "absurd file count" 3863 "Invalid State Descriptor" files 4000000000
  refused "worker's START with larger counts, then a chunk past the master's" 3863 "Invalid State Descriptor" worker-start
  refused "data block shorter than its descriptor" 3863 "data length differs" data-short
  if [ "$UNDER_TEST" = ours ]; then
    # Between our plugins with clone_enable_compression=ON, data blocks are
    # zstd frames: a block's announced length and its frame are checked.
    CLONE_PRE="SET GLOBAL clone_enable_compression=ON;" refused "zstd block announced at 2 GiB" 3863 "data length differs" zstd-length 2147483647
    CLONE_PRE="SET GLOBAL clone_enable_compression=ON;" refused "zstd frame damaged" 3863 "does not expand" zstd-frame
    sql "$RECIPIENT" "SET GLOBAL clone_enable_compression=OFF"
    refused "one bit flipped in a data block" 3863 "fails its checksum" flip
    check "bit flip: the error names the file and the offset" 1 \
      "$(sql "$RECIPIENT" "SELECT error_message REGEXP 'Data of .+ at offset [0-9]+ fails its checksum' FROM performance_schema.clone_status" 2>&1)"
  else
    # What the stock recipient does with the same bit flip: it applies it.
    through recipient "one bit flipped in a data block" flip
    check "bit flip: the stock recipient reports success over the damaged block" 0 "$CLONE_ERRNO"
    rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept"
  fi
  rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$(cat "$ROOTFS$(server_dir recipient)/mysqld.pid")/status"; }
  rss_before=$(rss_kib)
  refused "answer to INIT flooded with 256 MiB of collations" 3863 "too long" init-flood 4096
  grown=$(( ($(rss_kib) - rss_before) / 1024 ))
  check "INIT flood: the recipient grew by less than 64 MiB (grew $grown MiB)" 1 "$([ "$grown" -lt 64 ] && echo 1)"
  refused "donor error text with line breaks" 3862 "Hostile donor binlog.999999" error-lines
  check "donor error text: clone_status holds it on one line, invents no binlog file" "0:" \
    "$(sql "$RECIPIENT" "SELECT CONCAT(LOCATE(CHAR(10), error_message), ':', binlog_file) FROM performance_schema.clone_status" 2>&1)"
fi

# Scenario kill: a KILL ends every wait of the recipient.
if scenario kill; then
  log "a KILL wakes every wait of the recipient"
  serve recipient
  # Each case ends with the recipient gone: the donor drops that clone as
  # soon as it notices, and the next case waits for that.
  sql "$DONOR" "SET GLOBAL clone_donor_timeout_after_network_failure = 0"
  # tampered_clone_in_background ERRNO_FILE MODE...: a clone through the
  # proxy in MODE, in the background ($clone, writing its error number to
  # ERRNO_FILE; the proxy is $proxy), once the proxy has tampered.
  proxy_log="$ROOTFS$(server_dir recipient)/proxy.log"
  tampered_clone_in_background() {
    local errno_file=$1; shift
    python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" "$@" 2>"$proxy_log" &
    proxy=$!
    proxy_listening "$PROXY"
    errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY IDENTIFIED BY 'Pass-1234'
      DATA DIRECTORY = '$dest' REQUIRE NO SSL" >"$errno_file" &
    clone=$!
    wait_until 30 0.1 -- grep -q tampered "$proxy_log" 2>/dev/null
  }
  # kill_clone NAME ERRNO_FILE: KILL QUERY of the running CLONE INSTANCE (the
  # background job $clone, which writes its error number to ERRNO_FILE) must
  # end it with 1317 within 10 s.
  kill_clone() {
    local session killed_at took
    session=$(sql "$RECIPIENT" "SELECT id FROM information_schema.processlist WHERE info LIKE 'CLONE INSTANCE%'")
    killed_at=$(date +%s)
    sql "$RECIPIENT" "KILL QUERY $session"
    wait "$clone"
    took=$(( $(date +%s) - killed_at ))
    check "$1: KILL QUERY ends the clone with 1317" 1317 "$(cat "$2")"
    check "$1: within 10 s of the KILL (took $took s)" 1 "$([ "$took" -le 10 ] && echo 1)"
  }
  # copied: the bytes the recipient's FILE COPY stage has taken so far.
  copied() { sql "$RECIPIENT" "SELECT data FROM performance_schema.clone_progress WHERE stage = 'FILE COPY'"; }
  # wait_stalled: until the copy stands still for half a second (10 s at most).
  wait_stalled() {
    local last=-1
    wait_until 10 0.5 -- copy_stands_still
  }
  # copy_stands_still: whether the copy is where it was at the last try
  # (last, of wait_stalled), which it then moves to where it is now.
  copy_stands_still() {
    local now; now=$(copied)
    [ "$now" = "$last" ] && return 0
    last=$now
    return 1
  }
  # The donor never answers the first acknowledgement: the recipient waits on
  # its auxiliary connection, which the server's KILL does not wake.
  tampered_clone_in_background "$ROOTFS/tmp/stall-errno" stall-ack
  check "stalled acknowledgement: the proxy holds the answer back" "tampered" "$(head -1 "$proxy_log")"
  wait_stalled
  kill_clone "stalled acknowledgement" "$ROOTFS/tmp/stall-errno"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "stalled acknowledgement: the donor let the clone go" "0" "$(wait_donor_idle "$DONOR")"
  check "stalled acknowledgement: the recipient still answers" 1 "$(sql "$RECIPIENT" "SELECT 1" 2>&1)"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept" "$ROOTFS/tmp/stall-errno"

  # A worker's stream stops: the master finishes its share and waits for the
  # worker, which waits for data. The copy is paced (64 MiB/s allows the
  # master and one worker) so that the worker has joined before the master
  # has taken every chunk of this small donor.
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 64"
  tampered_clone_in_background "$ROOTFS/tmp/worker-errno" stall-worker
  check "stalled worker: the proxy holds its stream back" "tampered" "$(head -1 "$proxy_log")"
  wait_stalled
  kill_clone "stalled worker" "$ROOTFS/tmp/worker-errno"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  check "stalled worker: the donor let the clone go" "0" "$(wait_donor_idle "$DONOR")"
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept" "$ROOTFS/tmp/worker-errno"

  # A donor that announces it keeps a clone for 2^32-1 minutes after a
  # network failure, then goes away: the recipient reconnects for 30 minutes
  # at most, and KILL ends that wait. (The donor itself drops the clone at once.)
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 4"
  recipient_log=$ROOTFS$(server_dir recipient)/error.log
  logged_before=$(grep -c 'Source re-connect for at most' "$recipient_log")
  tampered_clone_in_background "$ROOTFS/tmp/window-errno" reconnect-window 4294967295
  check "reconnect window: the donor announced 2^32-1 minutes" "tampered" "$(head -1 "$proxy_log")"
  # The network fails in the middle of the copy.
  copy_started() { [ "$(copied)" -gt 0 ] 2>/dev/null; }
  wait_until 10 0.1 -- copy_started
  # The proxy goes away with every connection: nothing to reconnect to.
  kill "$proxy"; wait "$proxy" 2>/dev/null
  reconnect_logged() { [ "$(grep -c 'Source re-connect for at most' "$recipient_log")" -gt "$logged_before" ]; }
  wait_until 15 0.1 -- reconnect_logged
  check "reconnect window: the recipient reconnects for 30 minutes at most" \
    "Source re-connect for at most 30 minutes" "$(grep -o 'Source re-connect for at most [0-9]* minutes' "$recipient_log" | tail -1)"
  kill_clone "reconnecting" "$ROOTFS/tmp/window-errno"
  check "reconnect window: the donor let the clone go" "0" "$(wait_donor_idle "$DONOR")"
  # Only once it has: a donor reads the setting when it notices.
  sql "$DONOR" "SET GLOBAL clone_donor_timeout_after_network_failure = DEFAULT"
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept" "$ROOTFS/tmp/window-errno"
fi

# Scenario hostile_recipient: commands a recipient must not send.
if scenario hostile_recipient; then
  log "a hostile recipient, a $UNDER_TEST donor"
  # The donor refuses the acknowledgement as a protocol error and drops the
  # connection, as the stock donor does with protocol errors; the recipient
  # takes it for a network failure and resumes on new connections, where the
  # proxy tampers no more.
  name="acknowledgement that is a file descriptor"
  resumes() { grep -c 'Source Network issue' "$ROOTFS$(server_dir recipient)/error.log"; }
  before=$(resumes)
  through donor "$name" ack
  check "$name: clone resumes and succeeds" "0" "$CLONE_ERRNO"
  check "$name: the donor refused it" "1" \
    "$(grep -c 'Refused an acknowledgement from the recipient' "$ROOTFS$(server_dir donor)/error.log")"
  check "$name: the recipient resumed" "1" "$(($(resumes) - before))"
  rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept"

  # A command packet with no bytes, or out of sequence: the stock donor ends
  # the clone and closes the connection at once; so must ours (the peer would
  # wait otherwise).
  for kind in empty sequence; do
    name="command packet: $kind"
    through donor "$name" bad-command "$kind"
    check "$name: the clone still succeeds (the master goes on)" "0" "$CLONE_ERRNO"
    ended=$(sed -n 's/^connection ended after \([0-9.]*\) s$/\1/p' "$ROOTFS$(server_dir recipient)/tamper.log" | head -1)
    check "$name: the donor closed that connection within 5 s (after ${ended:-never} s)" 1 \
      "$(awk -v t="${ended:-999}" 'BEGIN {print (t < 5) ? 1 : 0}')"
    rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept"
  done
fi

# Scenario second_account: one account cannot touch another's clone.
if scenario second_account; then
  log "a second account cannot touch another's running clone on a $UNDER_TEST donor"
  serve donor
  wait_donor_idle "$DONOR" >/dev/null
  # The victim: an honest clone, slowed down so that it runs for a while,
  # through a proxy that notes the locator naming it (and has each of its
  # connections ask the donor for a year of idle time first). The intruder, another
  # account with BACKUP_ADMIN on the donor, then names that clone from its
  # own recipient: ATTACH (to take chunks), REINIT (to take it over) and an
  # ACK carrying an error (to abort it).
  sql "$DONOR" "CREATE USER intruder IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO intruder"
  server_init intruder
  server_start intruder "$INTRUDER" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  sql "$INTRUDER" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PROXY2'"
  locator_file=$ROOTFS/tmp/clone-rs-victim-locator
  rm -f "$locator_file"
  victim_log=$ROOTFS/tmp/clone-rs-victim.log
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" victim "$locator_file" 2>"$victim_log" &
  proxy=$!
  proxy_listening "$PROXY"
  victim_dest=$(server_dir victimcopy)/data
  rm -rf "${ROOTFS:?}$(server_dir victimcopy)"; mkdir -p "$ROOTFS$(server_dir victimcopy)/files" "$ROOTFS$(server_dir victimcopy)/tmp"
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 4"
  errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$PROXY IDENTIFIED BY 'Pass-1234'
    DATA DIRECTORY = '$victim_dest' REQUIRE NO SSL" >"$ROOTFS/tmp/victim-errno" &
  victim=$!
  wait_until 10 0.1 -- [ -s "$locator_file" ]
  check "victim clone: its locator is known" 1 "$([ -s "$locator_file" ] && echo 1)"
  # However long a recipient asked to idle, the donor waits at most 8 hours
  # for its next command while it holds the clone slot and the backup lock.
  idle=$(sql "$DONOR" "SELECT COUNT(*) >= 2, MAX(CAST(v.variable_value AS UNSIGNED))
    FROM performance_schema.variables_by_thread v JOIN performance_schema.threads t USING (thread_id)
    WHERE v.variable_name = 'wait_timeout' AND t.processlist_command LIKE 'Clone%'")
  check "the victim's connections asked for a year of idle time" 1 "$(grep -c 'slipped-in statement answered: 00' "$victim_log" | awk '{print ($1 >= 2)}')"
  check "a recipient's year of idle time is cut to 8 hours on the donor" "1	28800" "$idle"
  refusals() { grep -c 'Refused a command from intruder@%: Wrong Clone RPC: the clone belongs to another account' "$ROOTFS$(server_dir donor)/error.log"; }
  for kind in attach reinit ack; do
    hijack_log=$ROOTFS/tmp/clone-rs-hijack.log
    python3 "$REPO/ci/proxy.py" "$PROXY2" "$DONOR" hijack "$kind" "$locator_file" 2>"$hijack_log" &
    proxy2=$!
    proxy_listening "$PROXY2"
    refusals_before=$(refusals)
    intruder_errno=$(errno_of "$INTRUDER" "CLONE INSTANCE FROM intruder@127.0.0.1:$PROXY2 IDENTIFIED BY 'Pass-1234'
      DATA DIRECTORY = '$(server_dir intruder)/stolen-$kind' REQUIRE NO SSL")
    kill "$proxy2"; wait "$proxy2" 2>/dev/null
    answered=$(sed -n 's/^answered after \([0-9.]*\) s.*/\1/p' "$hijack_log" | head -1)
    check "intruder's $kind: refused (clone fails)" 1 "$([ "$intruder_errno" != 0 ] && echo 1)"
    check "intruder's $kind: the donor refused it for its account" 1 "$(($(refusals) - refusals_before))"
    check "intruder's $kind: answered within 5 s (after ${answered:-never} s)" 1 "$(awk -v t="${answered:-999}" 'BEGIN {print (t < 5) ? 1 : 0}')"
  done
  # The victim's network fails and stays down: its clone waits on the donor
  # for the recipient to come back. InnoDB would abort a waiting clone for
  # any new one; another account's new clone must not take its place.
  donor_log=$ROOTFS$(server_dir donor)/error.log
  waiting() { grep -c 'Clone Master wait [0-9]* minutes for restart' "$donor_log"; }
  waits_before=$(waiting)
  kill "$proxy"; wait "$proxy" 2>/dev/null
  victim_waits() { [ "$(waiting)" -gt "$waits_before" ]; }
  wait_until 10 0.1 -- victim_waits
  check "victim's network down: its clone waits on the donor for its recipient" 1 "$(($(waiting) - waits_before))"
  python3 "$REPO/ci/proxy.py" "$PROXY2" "$DONOR" &
  proxy2=$!
  proxy_listening "$PROXY2"
  intruder_errno=$(errno_of "$INTRUDER" "CLONE INSTANCE FROM intruder@127.0.0.1:$PROXY2 IDENTIFIED BY 'Pass-1234'
    DATA DIRECTORY = '$(server_dir intruder)/instead'")
  kill "$proxy2"; wait "$proxy2" 2>/dev/null
  check "intruder's new clone while the victim's waits: refused by the donor (3634)" "3862 1" \
    "$intruder_errno $(grep -c "Refused a clone of intruder@%: another account's clone waits for its recipient" "$donor_log")"
  # The victim's network comes back: its recipient reconnects and resumes.
  python3 "$REPO/ci/proxy.py" "$PROXY" "$DONOR" victim "$locator_file" 2>>"$victim_log" &
  proxy=$!
  wait "$victim"
  kill "$proxy"; wait "$proxy" 2>/dev/null
  sql "$RECIPIENT" "SET GLOBAL clone_max_data_bandwidth = 0"
  check "victim clone: succeeds" 0 "$(cat "$ROOTFS/tmp/victim-errno")"
  server_start victimcopy "$((PORT + 3))" "$OUR_PLUGIN_DIR"
  check "victim clone: its data equals the donor's" "$(checksums "$DONOR" app.victim)" \
    "$(checksums "$((PORT + 3))" app.victim 2>&1)"
  server_stop victimcopy
  server_stop intruder
  rm -rf "${ROOTFS:?}$(server_dir victimcopy)" "$locator_file" "$victim_log" "$ROOTFS/tmp/victim-errno"
fi

log "the same servers, without tampering, still clone"
# (A recipient no scenario started, or one that died, is started here.)
[ -f "$ROOTFS$(server_dir recipient)/plugin" ] || serve recipient
dest=$(server_dir recipient)/honest
sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
wait_donor_idle "$DONOR" >/dev/null
check "honest clone succeeds" "0" "$(errno_of "$RECIPIENT" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR
  IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$dest' REQUIRE NO SSL")"
check "honest clone holds the table" "1" "$([ -f "$ROOTFS$dest/app/victim.ibd" ] && echo 1)"
rm -rf "${ROOTFS:?}$dest" "${ROOTFS:?}$kept"

report test-hostile-peers
