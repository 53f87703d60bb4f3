#!/usr/bin/env bash
# MySQL Shell's clone sequence for a ReplicaSet or read replica, in a loop
# on the same two running servers, with our plugin and then the stock one.
# Each round is what Shell runs (Instance::install_plugin, the clone
# provisioning of a replica): INSTALL PLUGIN clone SONAME 'mysql_clone.so'
# on both, clone_valid_donor_list on the recipient, an account with
# BACKUP_ADMIN on the donor, the clone, the account dropped, the list reset,
# UNINSTALL PLUGIN on both. Shell clones in place and restarts the
# recipient; here the clone goes into a DATA DIRECTORY, so that the
# recipient keeps running and what the plugin leaves behind shows (the
# in-place clone and its restart are test-remote's and test-crash's).
# Every KILL_EVERY-th clone is killed midway; every VERIFY_EVERY-th clone
# is started as a server and its checksums compared with the donor's.
# After the loop, no thread of the plugin is left, and both servers have
# no more threads, open files, performance_schema tables or clone_*
# variables than after WARMUP rounds (mysqld opens files and caches
# threads as it goes: the first rounds differ for both plugins), and their
# RSS grew by at most RSS_SLACK_MIB since then: a leak of a few hundred KiB
# a round fails it. The footprint every 10 rounds goes to the log, and the
# stock plugin's figures beside ours (not checked).
set -uo pipefail
LOG_TAG=test-shell-loop
. "$(dirname "$0")/common.sh"
SERVERS=shell-loop

PORT=${PORT_BASE:-13750}
DONOR_PORT=$PORT RECIPIENT_PORT=$((PORT + 1)) CLONED_PORT=$((PORT + 2))
ROUNDS=${ROUNDS:-50}
KILL_EVERY=${KILL_EVERY:-5}
VERIFY_EVERY=${VERIFY_EVERY:-10}
RSS_SLACK_MIB=${RSS_SLACK_MIB:-8}
WARMUP=${WARMUP:-$((ROUNDS * 3 / 5))}
ACCOUNT=mysql_innodb_rs_1001
PASSWORD='Shell-Clone-9'

SCRIPT_SERVERS=(cloned recipient donor)
trap stop_script_servers EXIT

build_plugin
install_our_plugin

# footprint PORT NAME: "threads fds pfs_tables clone_variables rss_kib" of
# server NAME (on PORT), as the OS and the server count them.
footprint() {
  local pid; pid=$(server_pid "$2")
  local threads fds rss
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  echo "$threads $fds $(sql "$1" "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'performance_schema'),
    (SELECT COUNT(*) FROM performance_schema.global_variables WHERE variable_name LIKE 'clone\_%')" | tr '\t' ' ') $rss"
}

# own_threads NAME: the threads of server NAME that this plugin started
# (named clone_*: writers, senders, the status writer, workers, watchers).
own_threads() {
  local pid; pid=$(server_pid "$1")
  cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^clone_'
}

# clone_under_way: whether the recipient's clone has reached its file copy.
clone_under_way() {
  [ "$(sql "$RECIPIENT_PORT" "SELECT COUNT(*) FROM performance_schema.clone_progress WHERE stage = 'FILE COPY' AND state = 'In Progress'" 2>/dev/null)" = 1 ]
}

# clone_session: the processlist id of the recipient's running CLONE.
clone_session() { sql "$RECIPIENT_PORT" "SELECT id FROM information_schema.processlist WHERE info LIKE 'CLONE INSTANCE%'" 2>/dev/null | head -1; }

# verify_clone DIR: starts a server on the clone in DIR (of the chroot) and
# compares its checksums with the donor's; stops it again.
verify_clone() {
  local d; d=$(server_dir cloned)
  rm -rf "$ROOTFS$d"; mkdir -p "$ROOTFS$d"/{files,tmp}
  mv "$ROOTFS$1" "$ROOTFS$d/data"
  server_start cloned "$CLONED_PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin
  local ok=1
  [ "$(checksums "$CLONED_PORT" app.t1,app.t2)" = "$(checksums "$DONOR_PORT" app.t1,app.t2)" ] || ok=0
  server_stop cloned
  rm -rf "$ROOTFS$d"
  [ "$ok" = 1 ]
}

# one_round N: Shell's sequence; prints what went wrong, if anything.
one_round() {
  local n=$1 dest problems=()
  dest=$(server_dir recipient)/clone-$n
  sql "$DONOR_PORT" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'" || problems+=("INSTALL PLUGIN on the donor")
  sql "$RECIPIENT_PORT" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'" || problems+=("INSTALL PLUGIN on the recipient")
  # Not Shell's: a donor whose recipient was killed lets go at once instead
  # of holding the clone for a reconnection (5 minutes by default).
  sql "$DONOR_PORT" "SET GLOBAL clone_donor_timeout_after_network_failure = 0"
  sql "$RECIPIENT_PORT" "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$DONOR_PORT'" || problems+=("clone_valid_donor_list")
  sql "$DONOR_PORT" "CREATE USER IF NOT EXISTS '$ACCOUNT'@'%' IDENTIFIED BY '$PASSWORD'; GRANT BACKUP_ADMIN ON *.* TO '$ACCOUNT'@'%'" ||
    problems+=("the clone account")
  local clone="CLONE INSTANCE FROM '$ACCOUNT'@'127.0.0.1':$DONOR_PORT IDENTIFIED BY '$PASSWORD' DATA DIRECTORY = '$dest'"
  if [ $((n % KILL_EVERY)) = 0 ]; then
    local out
    out=$ROOTFS$(server_dir recipient)/kill-$n.out
    # Paced so that the kill lands during the file copy.
    sql "$RECIPIENT_PORT" "SET GLOBAL clone_max_data_bandwidth = 8; $clone" >"$out" 2>&1 &
    local client=$!
    wait_until 30 0.05 -- clone_under_way || problems+=("round $n: the clone never reached its file copy")
    local id; id=$(clone_session)
    [ -n "$id" ] && sql "$RECIPIENT_PORT" "KILL QUERY $id"
    wait "$client"
    grep -q "ERROR 1317" "$out" || problems+=("round $n: the killed clone did not end with 1317: $(head -c 200 "$out")")
    sql "$RECIPIENT_PORT" "SET GLOBAL clone_max_data_bandwidth = DEFAULT"
    # The partial copy our plugin keeps beside the target for a resume is
    # discarded, as an operator would.
    rm -rf "${ROOTFS:?}$dest" "$ROOTFS$(dirname "$dest")/.clone-$n.clone_partial" "$out"
    # UNINSTALL on the donor waits for no session of it to hold the plugin.
    [ "$(wait_donor_idle "$DONOR_PORT" 60)" = 0 ] || problems+=("round $n: the donor still serves the killed clone")
  else
    local err; err=$(sql "$RECIPIENT_PORT" "$clone" 2>&1) || problems+=("round $n: $err")
    if [ $((n % VERIFY_EVERY)) = 0 ] || [ "$n" = "$ROUNDS" ]; then
      verify_clone "$dest" || problems+=("round $n: the clone's checksums differ from the donor's")
    fi
    rm -rf "${ROOTFS:?}$dest"
    [ "$(wait_donor_idle "$DONOR_PORT" 60)" = 0 ] || problems+=("round $n: the donor still serves a clone")
  fi
  sql "$DONOR_PORT" "DROP USER IF EXISTS '$ACCOUNT'@'%'" || problems+=("DROP USER")
  sql "$RECIPIENT_PORT" "SET GLOBAL clone_valid_donor_list = DEFAULT" || problems+=("resetting clone_valid_donor_list")
  sql "$RECIPIENT_PORT" "UNINSTALL PLUGIN clone" || problems+=("round $n: UNINSTALL PLUGIN on the recipient")
  sql "$DONOR_PORT" "UNINSTALL PLUGIN clone" || problems+=("round $n: UNINSTALL PLUGIN on the donor")
  printf '%s\n' ${problems[@]+"${problems[@]}"}
}

# loop PLUGIN: the rounds on fresh servers loading PLUGIN (ours or stock);
# checks ours, shows both.
loop() {
  local plugin=$1 dir; dir=$(plugin_dir "$1")
  log "$plugin: $ROUNDS rounds of MySQL Shell's clone sequence (a clone killed every $KILL_EVERY)"
  server_init donor
  server_init recipient
  server_start donor "$DONOR_PORT" "$dir"
  server_start recipient "$RECIPIENT_PORT" "$dir"
  sql "$DONOR_PORT" "CREATE DATABASE app; CREATE TABLE app.t1 (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(200));
    CREATE TABLE app.t2 (id INT PRIMARY KEY, n BIGINT);
    INSERT INTO app.t1 (v) VALUES (REPEAT('a', 200)), (REPEAT('b', 200)), (REPEAT('c', 200)), (REPEAT('d', 200));
    INSERT INTO app.t2 VALUES (1, 1), (2, 4), (3, 9)"
  for _ in $(seq 13); do
    sql "$DONOR_PORT" "INSERT INTO app.t1 (v) SELECT v FROM app.t1"
  done
  local donor_before recipient_before problems="" n out
  for n in $(seq 1 "$ROUNDS"); do
    out=$(one_round "$n")
    [ -n "$out" ] && problems+="$out"$'\n'
    if [ "$n" = "$WARMUP" ]; then
      donor_before=$(footprint "$DONOR_PORT" donor)
      recipient_before=$(footprint "$RECIPIENT_PORT" recipient)
    fi
    if [ "$n" = 1 ] || [ $((n % 10)) = 0 ]; then
      log "$plugin: after round $n: donor $(footprint "$DONOR_PORT" donor), recipient $(footprint "$RECIPIENT_PORT" recipient); threads of the plugin: $(own_threads donor) $(own_threads recipient)"
    fi
  done
  local donor_after recipient_after
  donor_after=$(footprint "$DONOR_PORT" donor)
  recipient_after=$(footprint "$RECIPIENT_PORT" recipient)
  log "$plugin: donor     (threads fds pfs-tables clone-vars rss-KiB) after round $WARMUP: $donor_before, after round $ROUNDS: $donor_after"
  log "$plugin: recipient (threads fds pfs-tables clone-vars rss-KiB) after round $WARMUP: $recipient_before, after round $ROUNDS: $recipient_after"
  if [ "$plugin" = ours ]; then
    check "ours: every round of Shell's sequence succeeds (the killed ones end with 1317)" "" "$(printf '%s' "$problems" | head -5)"
    local who before after
    for who in donor recipient; do
      before=${who}_before after=${who}_after
      read -r t0 f0 p0 v0 r0 <<<"${!before}"
      read -r t1 f1 p1 v1 r1 <<<"${!after}"
      check "ours: no thread of the plugin is left in the $who" "0" "$(own_threads "$who")"
      check "ours: the $who has no more threads than after round $WARMUP" "yes" "$([ "$t1" -le "$t0" ] && echo yes || echo "$t0 -> $t1")"
      check "ours: the $who has no more open files than after round $WARMUP" "yes" "$([ "$f1" -le "$f0" ] && echo yes || echo "$f0 -> $f1")"
      check "ours: the $who has the performance_schema tables it had" "$p0" "$p1"
      check "ours: the $who has no clone_* variable once the plugin is uninstalled" "0 0" "$v0 $v1"
      check "ours: the $who's RSS grew by at most $RSS_SLACK_MIB MiB in rounds $WARMUP-$ROUNDS" "yes" \
        "$([ $((r1 - r0)) -le $((RSS_SLACK_MIB * 1024)) ] && echo yes || echo "$((r0 / 1024)) -> $((r1 / 1024)) MiB")"
    done
  elif [ -n "$problems" ]; then
    log "stock: rounds that went wrong: $(printf '%s' "$problems" | head -5 | paste -sd';' -)"
  fi
  server_stop recipient
  server_stop donor
}

loop ours
[ "${NO_STOCK:-0}" = 1 ] || loop stock
report test-shell-loop
