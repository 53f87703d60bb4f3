#!/usr/bin/env bash
# Benchmark: the same generated data cloned with the stock plugin and with
# ours, alternating in the same run, every figure the median of the rounds
# with its ratio. Prints one table:
#
#   local                CLONE LOCAL
#   remote               CLONE INSTANCE ... DATA DIRECTORY on loopback, compression off
#   remote-compressed    the same with clone_enable_compression=ON on the recipient
#   remote-inplace       in place, timed until the restarted recipient answers;
#                        and how long the recipient could not answer a query
#                        on user data (a probe every 0.1 s: stock drops its
#                        data first, ours stages the clone: only the restart)
#   link                 donor and recipient in a network namespace whose
#                        loopback a tbf qdisc limits to each of --links Mbit/s:
#                        stock in its best mode (compression on or off, both
#                        are run) against ours with compression on
#   incompressible       remote on loopback, rows of random bytes (gen-data.sh
#                        random): each plugin with compression off and on,
#                        alternating, and what compression costs each (time
#                        on / off); with PREV_PLUGIN, that build's clone with
#                        compression on beside
#   tables               remote on loopback, compression off, a donor of
#                        --tables "500 5000 20000" small tables (200 rows
#                        each; one donor grown from each count to the
#                        next): time and time per table of each plugin, and
#                        a raw copy of the same files beside (ci/raw-copy.py:
#                        O_DIRECT writes, made durable once)
#   sysbench             oltp_read_write on the donor: transactions per second
#                        and 95th-percentile latency before and during a clone
#   resume               ours only, on a --resume-link Mbit/s link, compression
#                        on: a full clone into a DATA DIRECTORY; the donor
#                        killed -9 at 60 % of the file copy (and started
#                        again), then the same statement; the same with the
#                        recipient killed; an in-place re-clone after the
#                        donor changed 5 % of its rows; bytes on the wire and
#                        time of each attempt against the full clone. With
#                        PREV_PLUGIN=path/to/libmysql_clone.so (an earlier
#                        build), its full clones alternate with ours: what a
#                        clone with nothing to reuse costs now.
#
# PREV_PLUGIN also adds that build to every series (its row: "earlier
# build", with the ratio earlier / now).
#
# Speed-up = stock's median time / ours (above 1: ours is faster). Peak RSS
# is each mysqld's VmHWM (servers start fresh for every clone); CPU is the
# user+system seconds of both mysqld during the clone, per GB cloned.
#
#   ci/bench.sh [--mb 512] [--link-mb 256] [--rounds 3] [--cold | --memory | --xfs | --btrfs]
#               [--links "200 400 1000"] [--resume-link 200] [--tables "500 5000 20000"]
#               [--modes "local remote remote-compressed remote-inplace link sysbench
#                         incompressible tables resume"]
#
# --memory puts both servers' directories on a tmpfs, which takes the disk
# out of the comparison (InnoDB then finds no O_DIRECT and uses the page
# cache): what is left is CPU, the plugins' own work and the copies into
# the tmpfs.
#
# --xfs puts both servers' directories on a loop-mounted XFS with reflink,
# --btrfs on a loop-mounted btrfs: CLONE LOCAL can then share extents, and
# the table adds the new space each plugin's copy took (df).
#
# KEEP_LOGS=DIR keeps each clone's server error logs there (named by the
# time the clone ended), for where the time went. INPLACE_MIB_S=N throttles
# the in-place clones to N MiB/s (clone_max_data_bandwidth), as a slower
# disk or link would.
set -euo pipefail
LOG_TAG=bench
. "$(dirname "$0")/common.sh"

MB=512 LINK_MB=256 ROUNDS=3 COLD=0 MEMORY=0 COW="" LINKS="200 400 1000" RESUME_LINK=200 TABLES="500 5000 20000"
MODES="local remote remote-compressed remote-inplace link sysbench"
PORT=13600 RPORT=13601 NS=clone-rs-bench
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=$2; shift 2 ;;
    --link-mb) LINK_MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --links) LINKS=$2; shift 2 ;;
    --resume-link) RESUME_LINK=$2; shift 2 ;;
    --tables) TABLES=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    --memory) MEMORY=1; shift ;;
    --xfs) COW=xfs; shift ;;
    --btrfs) COW=btrfs; shift ;;
    --modes) MODES=$2; shift 2 ;;
    *) fail "unknown option $1" ;;
  esac
done

bash "$REPO/ci/setup-env.sh" >/dev/null
build_plugin
install_our_plugin
SCRIPT_SERVERS=(bench bench-rcpt bench-inplace)
cleanup() {
  stop_script_servers
  ip netns del "$NS" 2>/dev/null || true
  servers_on_cow_end
}
trap cleanup EXIT
# PREV_PLUGIN: an earlier build, in a plugin directory of its own.
PREV_PLUGIN_DIR=/opt/clone-rs/plugin-prev
if [ -n "${PREV_PLUGIN:-}" ]; then
  mkdir -p "$ROOTFS$PREV_PLUGIN_DIR"
  cp -a "$ROOTFS$OUR_PLUGIN_DIR"/. "$ROOTFS$PREV_PLUGIN_DIR"/
  cp "$PREV_PLUGIN" "$ROOTFS$PREV_PLUGIN_DIR/mysql_clone.so"
fi
if [ "$MEMORY" = 1 ]; then
  [ "$COLD" = 1 ] || [ -n "$COW" ] && fail "--memory excludes --cold, --xfs and --btrfs"
  servers_in_memory
fi
[ -n "$COW" ] && servers_on_cow "$COW"

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# median_of "LIST": the median of a space-separated list of figures.
median_of() { tr ' ' '\n' <<<"$1" | grep . | median; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$(server_pid "$1")/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$(server_pid "$1")/stat"; }
TICKS=$(getconf CLK_TCK)

# probe PORT OUT: every 0.1 s, whether server PORT answers a query on user
# data ("<time> 1" or "<time> 0" lines in OUT), until killed.
probe() {
  while :; do
    local n
    n=$(sql "$1" "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema IN ('mine', 'bench')" 2>/dev/null) || n=0
    echo "$(date +%s.%N) $([ "${n:-0}" -gt 0 ] && echo 1 || echo 0)"
    sleep 0.1
  done >>"$2"
}
# unanswered OUT: the seconds from each failed probe to the next probe.
unanswered() { awk 'NR > 1 && !ok { gap += $1 - t } { t = $1; ok = $2 } END { printf "%.2f", gap + 0 }' "$1"; }
probe_answered() { [ "$(tail -1 "$1" 2>/dev/null | cut -d' ' -f2)" = 1 ]; }

# one_clone MODE PLUGIN COMPRESS: one clone on fresh servers; prints
# "seconds bytes donor_rss_kb recipient_rss_kb cpu_seconds returned
# unanswered new_kib", returned the seconds until the CLONE statement
# returned (in place, the rest is the server's restart), unanswered (in
# place) how long the recipient did not answer a query on user data,
# new_kib (local) the new space the copy took on the file system.
one_clone() {
  local mode=$1 plugin=$2 compress=$3 t0 t1 t_ret dest bytes c0 c1 dh rh=0 gone=0
  local pdir; pdir=$(plugin_dir "$plugin"); [ "$plugin" = prev ] && pdir=$PREV_PLUGIN_DIR
  server_start bench "$PORT" "$pdir" --plugin-load-add=mysql_clone.so --disable-log-bin
  dest=$(server_dir bench-rcpt)/files/clone
  if [ "$mode" = local ]; then
    dest=$(server_dir bench)/files/clone
  else
    server_init bench-rcpt
    if [ "$mode" = remote-inplace ]; then
      server_start_supervised bench-rcpt "$RPORT" "$pdir" --plugin-load-add=mysql_clone.so --disable-log-bin
    else
      server_start bench-rcpt "$RPORT" "$pdir" --plugin-load-add=mysql_clone.so --disable-log-bin
    fi
    sql "$RPORT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PORT', clone_enable_compression=$compress"
    # In place, the recipient serves data of its own until the clone;
    # INPLACE_MIB_S (MiB/s) stands for a slower disk or link there.
    [ "$mode" = remote-inplace ] && sql "$RPORT" "CREATE DATABASE mine; CREATE TABLE mine.t (id INT PRIMARY KEY); INSERT INTO mine.t VALUES (1);
      SET GLOBAL clone_max_data_bandwidth = ${INPLACE_MIB_S:-0}"
  fi
  rm -rf "$ROOTFS$dest"
  sync
  [ "$COLD" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
  local used0; used0=$(df -k --output=used "$ROOTFS$(server_dir bench)" | tail -1)
  # The CPU of the servers doing the clone (a restarted recipient's is not).
  local both=0; [ "$mode" = remote ] && both=1
  c0=$(cpu_ticks bench); [ "$both" = 1 ] && c0=$((c0 + $(cpu_ticks bench-rcpt)))
  t0=$(date +%s.%N)
  case $mode in
    local) sql "$PORT" "CLONE LOCAL DATA DIRECTORY = '$dest'" ;;
    remote-inplace)
      local before probe_out probe_pid; before=$(server_pid bench-rcpt)
      probe_out=$ROOTFS$(server_dir bench)/files/probe.out
      rm -f "$probe_out"
      probe "$RPORT" "$probe_out" >/dev/null &
      probe_pid=$!
      sql "$RPORT" "CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234'"
      t_ret=$(date +%s.%N)
      # The old server exits, then the new one answers.
      while kill -0 "$before" 2>/dev/null; do sleep 0.05; done
      server_wait bench-rcpt "$RPORT"
      wait_until 60 0.05 -- probe_answered "$probe_out" || true
      kill "$probe_pid" 2>/dev/null || true
      wait "$probe_pid" 2>/dev/null || true
      gone=$(unanswered "$probe_out") ;;
    *) sql "$RPORT" "CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234' DATA DIRECTORY = '$dest'" ;;
  esac
  t1=$(date +%s.%N)
  t_ret=${t_ret:-$t1}
  c1=$(cpu_ticks bench)
  dh=$(hwm_kb bench)
  local new_kib=0
  case $mode in
    local)
      bytes=$(du -sb "$ROOTFS$dest" | cut -f1)
      sync
      new_kib=$(($(df -k --output=used "$ROOTFS$(server_dir bench)" | tail -1) - used0)) ;;
    remote-inplace)
      # The restarted recipient's CPU and memory are not the clone's.
      bytes=$(sql "$RPORT" "SELECT SUM(data) FROM performance_schema.clone_progress") ;;
    *) bytes=$(du -sb "$ROOTFS$dest" | cut -f1); c1=$((c1 + $(cpu_ticks bench-rcpt))); rh=$(hwm_kb bench-rcpt) ;;
  esac
  [ "$mode" != local ] && server_stop bench-rcpt
  server_stop bench
  if [ -n "${KEEP_LOGS:-}" ]; then
    local at; at=$(date +%H%M%S.%N | cut -c1-10); mkdir -p "$KEEP_LOGS"
    cp "$ROOTFS$(server_dir bench)/error.log" "$KEEP_LOGS/$at-$mode-$plugin-donor.log"
    if [ "$mode" != local ]; then
      cp "$ROOTFS$(server_dir bench-rcpt)/error.log" "$KEEP_LOGS/$at-$mode-$plugin-recipient.log"
    fi
  fi
  rm -rf "$ROOTFS$dest"
  echo "$(calc "$t1 - $t0") $bytes $dh $rh $(calc "($c1 - $c0) / $TICKS") $(calc "$t_ret - $t0") $gone $new_kib"
}

rows=()
# row NAME "stock figures" "our figures" RATIO
row() { rows+=("$(printf '%-34s | %-38s | %-38s | %s' "$@")"); }

# pairs "STOCK TIMES" "OUR TIMES": the spread of the per-round ratios (the
# rounds alternate, so round i of each ran in the same state of the machine)
# and in how many rounds ours was faster.
pairs() {
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{ r = $1 / ($2 > 0 ? $2 : 0.01); if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r; if (r > 1) ahead++ }
      END { printf "rounds %.2f-%.2f, ours ahead in %d of %d", lo, hi, ahead, NR }'
}

# clone_series LABEL MODE STOCK_COMPRESS OUR_COMPRESS: ROUNDS alternating
# pairs; adds a table row of medians. STOCK_COMPRESS "best" runs stock
# with compression off and on and keeps the faster median.
clone_series() {
  local label=$1 mode=$2 scomp=$3 ocomp=$4 round plugin comp s bytes dh rh cpu ret gone new
  declare -A times=() rss_d=() rss_r=() cpus=() returned=() unanswered=() space=()
  local variants="stock:$scomp ours:$ocomp"
  [ "$scomp" = best ] && variants="stock:OFF stock:ON ours:$ocomp"
  [ -n "${PREV_PLUGIN:-}" ] && variants+=" prev:$ocomp"
  for round in $(seq 1 "$ROUNDS"); do
    for v in $variants; do
      plugin=${v%%:*} comp=${v#*:}
      read -r s bytes dh rh cpu ret gone new < <(one_clone "$mode" "$plugin" "$comp")
      printf '  %-28s round %d %-5s compression %-3s %7.2f s %8.1f MiB/s\n' "$label" "$round" "$plugin" "$comp" "$s" "$(calc "$bytes / 1048576 / $s")" >&2
      times[$v]+="$s "
      returned[$v]+="$ret "
      unanswered[$v]+="$gone "
      space[$v]+="$new "
      cpus[$v]+="$(calc "$cpu / ($bytes / 1e9)") "
      [ "$dh" -gt "${rss_d[$v]:-0}" ] && rss_d[$v]=$dh
      [ "$rh" -gt "${rss_r[$v]:-0}" ] && rss_r[$v]=$rh
    done
  done
  local stock_v=stock:$scomp
  if [ "$scomp" = best ]; then
    stock_v=stock:OFF
    [ "$(calc "$(median_of "${times[stock:ON]}") < $(median_of "${times[stock:OFF]}")")" = 1.000000 ] && stock_v=stock:ON
  fi
  local mib; mib=$(calc "$bytes / 1048576")
  figures() {
    local t; t=$(median_of "${times[$1]}")
    printf '%6.2f s %6.1f MiB/s %4.1f CPU-s/GB' "$t" "$(calc "$mib / $t")" "$(median_of "${cpus[$1]}")"
  }
  local st ot; st=$(median_of "${times[$stock_v]}"); ot=$(median_of "${times[ours:$ocomp]}")
  local name="$label"; [ "$scomp" = best ] && name="$label (stock comp. ${stock_v#*:})"
  row "$name" "$(figures "$stock_v")" "$(figures "ours:$ocomp")" "$(printf '%.2f' "$(calc "$st / $ot")")  ($(pairs "${times[$stock_v]}" "${times[ours:$ocomp]}"))"
  if [ "$mode" = local ] && [ -n "$COW" ]; then
    st=$(median_of "${space[$stock_v]}"); ot=$(median_of "${space[ours:$ocomp]}")
    row "local: new space the copy took" "$(printf '%6.0f MiB (%.0f %% of the data)' "$(calc "$st / 1024")" "$(calc "$st * 1024 * 100 / $bytes")")" \
      "$(printf '%6.0f MiB (%.0f %% of the data)' "$(calc "$ot / 1024")" "$(calc "$ot * 1024 * 100 / $bytes")")" ""
  fi
  if [ "$mode" = remote-inplace ]; then
    # The clone itself; after it the server shuts down and starts on the clone.
    st=$(median_of "${returned[$stock_v]}"); ot=$(median_of "${returned[ours:$ocomp]}")
    row "in place, until CLONE returns" "$(printf '%6.2f s %6.1f MiB/s' "$st" "$(calc "$mib / $st")")" \
      "$(printf '%6.2f s %6.1f MiB/s' "$ot" "$(calc "$mib / $ot")")" \
      "$(printf '%.2f' "$(calc "$st / $ot")")  ($(pairs "${returned[$stock_v]}" "${returned[ours:$ocomp]}"))"
    # Stock: from the drop to the restarted server; ours: the restart.
    st=$(median_of "${unanswered[$stock_v]}"); ot=$(median_of "${unanswered[ours:$ocomp]}")
    row "in place, recipient unanswered" "$(printf '%6.2f s' "$st")" "$(printf '%6.2f s' "$ot")" \
      "$(printf '%.2f' "$(calc "$st / ($ot > 0 ? $ot : 0.01)")")  ($(pairs "${unanswered[$stock_v]}" "${unanswered[ours:$ocomp]}"))"
  fi
  if [ -n "${PREV_PLUGIN:-}" ]; then
    st=$(median_of "${times[prev:$ocomp]}")
    row "$label: earlier build" "" "$(figures "prev:$ocomp")" \
      "earlier / now $(printf '%.2f' "$(calc "$st / $ot")")  ($(pairs "${times[prev:$ocomp]}" "${times[ours:$ocomp]}"))"
  fi
  rss+=("$(printf '%-34s | donor %5.0f recipient %5.0f MiB     | donor %5.0f recipient %5.0f MiB     |' "$label" \
    "$(calc "${rss_d[$stock_v]} / 1024")" "$(calc "${rss_r[$stock_v]:-0} / 1024")" "$(calc "${rss_d[ours:$ocomp]} / 1024")" "$(calc "${rss_r[ours:$ocomp]:-0} / 1024")")")
}
rss=()

# A namespace whose loopback carries at most $1 Mbit/s; the servers and the
# client run inside it (common.sh's in_root follows NETNS).
link_up() {
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" tc qdisc add dev lo root tbf rate "$1mbit" burst 1mb latency 200ms
}

# commits: the donor's Com_commit (one per oltp_read_write transaction).
# (Com_ counters are not in performance_schema.global_status.)
commits() { sql "$PORT" "SHOW GLOBAL STATUS LIKE 'Com_commit'" | awk '{ print $2 }'; }

# sysbench_series: the donor's oltp_read_write throughput and latency
# before and during a clone (remote, default settings), stock and ours.
sysbench_series() {
  local round plugin before during
  declare -A tps=() p95=()
  local sb=(sysbench oltp_read_write --mysql-host=127.0.0.1 --mysql-port="$PORT" --mysql-user=root --mysql-db=sbtest --tables=4 --table-size=100000 --threads=2)
  for round in $(seq 1 "$ROUNDS"); do
    for plugin in stock ours; do
      server_start bench "$PORT" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so --disable-log-bin
      server_init bench-rcpt
      server_start bench-rcpt "$RPORT" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so --disable-log-bin
      sql "$RPORT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PORT'"
      local out=$ROOTFS$(server_dir bench)/files/sysbench.out dest; dest=$(server_dir bench-rcpt)/files/clone
      in_root "${sb[@]}" --time=0 --report-interval=1 run >"$out" 2>&1 &
      local sbpid=$! t0 t1 start
      start=$(date +%s.%N)
      sleep 2
      local w0 c0 c1; w0=$(commits)
      sleep 6
      t0=$(calc "$(date +%s.%N) - $start"); c0=$(commits)
      sql "$RPORT" "CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234' DATA DIRECTORY = '$dest'"
      t1=$(calc "$(date +%s.%N) - $start"); c1=$(commits)
      kill "$sbpid" 2>/dev/null; wait "$sbpid" 2>/dev/null || true
      # TPS: the donor's commits over the 6 s before the clone and over the
      # clone itself. p95: sysbench's "[ 5s ] ... lat (ms,95%): 12.34" lines
      # of those seconds (one a second: few during a short clone).
      before="$(calc "($c0 - $w0) / ($t0 - 2)") $(awk -v a=2 -v b="$t0" '/^\[ [0-9]+s \]/ { t = $2 + 0; if (t > a && t <= b) { l += $14; n++ } } END { if (n) printf "%.2f", l / n; else print 0 }' "$out")"
      during="$(calc "($c1 - $c0) / ($t1 - $t0)") $(awk -v a="$t0" -v b="$t1" '/^\[ [0-9]+s \]/ { t = $2 + 0; if (t > a + 1 && t <= b + 0.999) { l += $14; n++ } } END { if (n) printf "%.2f", l / n; else print 0 }' "$out")"
      printf '  sysbench round %d %-5s before: %s tps/p95 ms, during the clone (%.1f s): %s\n' "$round" "$plugin" "$before" "$(calc "$t1 - $t0")" "$during" >&2
      tps[$plugin-before]+="${before% *} "; p95[$plugin-before]+="${before#* } "
      tps[$plugin-during]+="${during% *} "; p95[$plugin-during]+="${during#* } "
      server_stop bench-rcpt; server_stop bench
      rm -rf "$ROOTFS$dest"
    done
  done
  row "donor tps before the clone" "$(median_of "${tps[stock-before]}")" "$(median_of "${tps[ours-before]}")" ""
  row "donor tps during the clone" "$(median_of "${tps[stock-during]}")" "$(median_of "${tps[ours-during]}")" \
    "$(printf '%.2f' "$(calc "$(median_of "${tps[ours-during]}") / $(median_of "${tps[stock-during]}")")")"
  row "donor p95 ms before the clone" "$(median_of "${p95[stock-before]}")" "$(median_of "${p95[ours-before]}")" ""
  row "donor p95 ms during the clone" "$(median_of "${p95[stock-during]}")" "$(median_of "${p95[ours-during]}")" \
    "$(printf '%.2f' "$(calc "$(median_of "${p95[stock-during]}") / $(median_of "${p95[ours-during]}")")")"
}

# incompressible_series: see `incompressible` above.
incompressible_series() {
  local round v plugin comp s bytes dh rh cpu ret gone new
  declare -A times=() cpus=()
  local variants="stock:OFF ours:OFF stock:ON ours:ON${PREV_PLUGIN:+ prev:ON}"
  for round in $(seq 1 "$ROUNDS"); do
    for v in $variants; do
      plugin=${v%%:*} comp=${v#*:}
      read -r s bytes dh rh cpu ret gone new < <(one_clone remote "$plugin" "$comp")
      printf '  incompressible round %d %-5s compression %-3s %7.2f s %8.1f MiB/s\n' "$round" "$plugin" "$comp" "$s" "$(calc "$bytes / 1048576 / $s")" >&2
      times[$v]+="$s "
      cpus[$v]+="$(calc "$cpu / ($bytes / 1e9)") "
    done
  done
  local mib; mib=$(calc "$bytes / 1048576")
  fig() { printf '%6.2f s %6.1f MiB/s %4.1f CPU-s/GB' "$(median_of "${times[$1]}")" "$(calc "$mib / $(median_of "${times[$1]}")")" "$(median_of "${cpus[$1]}")"; }
  ratio() { printf '%.2f  (%s)' "$(calc "$(median_of "${times[$1]}") / $(median_of "${times[$2]}")")" "$(pairs "${times[$1]}" "${times[$2]}")"; }
  row "incompressible, compression off" "$(fig stock:OFF)" "$(fig ours:OFF)" "$(ratio stock:OFF ours:OFF)"
  row "incompressible, compression on" "$(fig stock:ON)" "$(fig ours:ON)" "$(ratio stock:ON ours:ON)"
  row "incompressible: time on / off" "$(printf '%.3f' "$(calc "$(median_of "${times[stock:ON]}") / $(median_of "${times[stock:OFF]}")")")" \
    "$(printf '%.3f' "$(calc "$(median_of "${times[ours:ON]}") / $(median_of "${times[ours:OFF]}")")")" ""
  if [ -n "${PREV_PLUGIN:-}" ]; then
    row "incompressible, on: earlier build" "" "$(fig prev:ON)" "earlier / now $(ratio prev:ON ours:ON)"
  fi
}

# tables_series: see `tables` above.
tables_series() {
  local count have=0 round v s bytes dh rh cpu ret gone new t0 raw
  raw=$(server_dir bench)/files/raw
  log "a donor of small tables"
  server_init bench
  server_start bench "$PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin
  sql "$PORT" "CREATE USER bench IDENTIFIED BY 'Bench-1234'; GRANT BACKUP_ADMIN ON *.* TO bench; CREATE DATABASE tbl"
  in_root mysql -uroot -h127.0.0.1 -P"$PORT" <<'SQL'
DELIMITER //
CREATE PROCEDURE tbl.make_tables(first INT, last INT)
BEGIN
  DECLARE i INT DEFAULT first;
  WHILE i < last DO
    SET @s = CONCAT('CREATE TABLE tbl.t', i, ' (id INT PRIMARY KEY, v CHAR(64) NOT NULL)');
    PREPARE st FROM @s; EXECUTE st; DEALLOCATE PREPARE st;
    SET @s = CONCAT('INSERT INTO tbl.t', i, ' WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200) SELECT n, SHA2(n + ', i, ', 256) FROM seq');
    PREPARE st FROM @s; EXECUTE st; DEALLOCATE PREPARE st;
    SET i = i + 1;
  END WHILE;
END //
SQL
  server_stop bench
  for count in $TABLES; do
    log "growing the donor to $count tables"
    server_start bench "$PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin --innodb-flush-log-at-trx-commit=2
    sql "$PORT" "CALL tbl.make_tables($have, $count)"
    server_stop bench
    have=$count
    declare -A times=()
    for round in $(seq 1 "$ROUNDS"); do
      for v in stock ours raw; do
        if [ "$v" = raw ]; then
          rm -rf "$ROOTFS$raw"; sync
          t0=$(date +%s.%N)
          read -r _ bytes < <(python3 "$REPO/ci/raw-copy.py" "$ROOTFS$(server_dir bench)/data" "$ROOTFS$raw")
          s=$(calc "$(date +%s.%N) - $t0")
          rm -rf "$ROOTFS$raw"
        else
          read -r s bytes dh rh cpu ret gone new < <(one_clone remote "$v" OFF)
        fi
        printf '  %d tables round %d %-5s %7.2f s %8.1f MiB\n' "$count" "$round" "$v" "$s" "$(calc "$bytes / 1048576")" >&2
        times[$v]+="$s "
      done
    done
    fig() { printf '%6.2f s %6.3f ms/table' "$(median_of "${times[$1]}")" "$(calc "$(median_of "${times[$1]}") * 1000 / $count")"; }
    row "$count tables" "$(fig stock)" "$(fig ours)" "$(printf '%.2f  (%s)' "$(calc "$(median_of "${times[stock]}") / $(median_of "${times[ours]}")")" "$(pairs "${times[stock]}" "${times[ours]}")")"
    row "$count tables: raw copy of the files" "" "$(fig raw)" "$(printf 'ours / raw %.2f' "$(calc "$(median_of "${times[ours]}") / $(median_of "${times[raw]}")")")"
    unset times
  done
}

# resume_series: see `resume` above. Every figure is one run's (the
# interruptions are not repeated); the full clone's are medians.
resume_series() {
  # GTIDs and binary logs on (without a binary log a server assigns its
  # own transactions no GTID): the in-place recipient, a clone of the
  # donor, shares the donor's transactions as a replica would.
  local gtid="--gtid-mode=ON --enforce-gtid-consistency=ON" dest round p s w
  local donor_opts="--plugin-load-add=mysql_clone.so $gtid --clone-donor-timeout-after-network-failure=0"
  local rcpt_opts="--plugin-load-add=mysql_clone.so $gtid"
  dest=$(server_dir bench-rcpt)/files/clone
  link_up "$RESUME_LINK"
  export NETNS=$NS
  servers() { # PLUGIN_DIR: donor and a fresh recipient on it
    server_stop bench-rcpt; server_stop bench
    server_start bench "$PORT" "$1" $donor_opts
    server_init bench-rcpt
    server_start bench-rcpt "$RPORT" "$1" $rcpt_opts
  }
  wire() { sql "$1" "SELECT SUM(network) FROM performance_schema.clone_progress"; }
  statement() { sql "$RPORT" "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$PORT', clone_enable_compression = ON;
    CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234' DATA DIRECTORY = '$dest'"; }
  # into_dir: the clone, "seconds wire_bytes" (it may fail).
  into_dir() { local t0; t0=$(date +%s.%N); statement >/dev/null 2>&1 || true; echo "$(calc "$(date +%s.%N) - $t0") $(wire "$RPORT")"; }
  # at_60: waits until the running clone has copied 60 % of its estimate.
  at_60() { [ "$(sql "$RPORT" "SELECT COALESCE(MAX(data >= estimate * 0.6 AND estimate > 0), 0) FROM performance_schema.clone_progress WHERE stage = 'FILE COPY'" 2>/dev/null)" = 1 ]; }
  declare -A times=() wires=()
  for round in $(seq 1 "$ROUNDS"); do
    for p in ${PREV_PLUGIN:+prev} ours; do
      servers "$([ "$p" = prev ] && echo "$PREV_PLUGIN_DIR" || echo "$OUR_PLUGIN_DIR")"
      rm -rf "$ROOTFS$dest"
      read -r s w < <(into_dir)
      printf '  resume: full clone round %d %-5s %7.2f s %8.1f MiB on the wire\n' "$round" "$p" "$s" "$(calc "$w / 1048576")" >&2
      times[$p]+="$s "; wires[$p]+="$w "
    done
  done
  local full_t full_w; full_t=$(median_of "${times[ours]}"); full_w=$(median_of "${wires[ours]}")
  local mib; mib=$(calc "$full_w / 1048576")
  row "resume: full clone (ours)" "" "$(printf '%6.2f s %8.1f MiB on the wire' "$full_t" "$mib")" ""
  if [ -n "${PREV_PLUGIN:-}" ]; then
    local prev_t; prev_t=$(median_of "${times[prev]}")
    row "resume: full clone, nothing to reuse" "$(printf 'before %6.2f s' "$prev_t")" "$(printf 'now %6.2f s' "$full_t")" \
      "$(printf '%.3f  (%s)' "$(calc "$prev_t / $full_t")" "$(pairs "${times[prev]}" "${times[ours]}")")"
  fi
  # interrupted WHO: an attempt killed at 60 % by WHO (donor, recipient)
  # going down, WHO started again, then the same statement.
  interrupted() {
    local t0 t1 w1 s2 w2 pid
    servers "$OUR_PLUGIN_DIR"
    rm -rf "$ROOTFS$dest"
    t0=$(date +%s.%N)
    statement >/dev/null 2>&1 &
    pid=$!
    wait_until 600 0.1 -- at_60 || fail "resume: the clone did not reach 60 %"
    if [ "$1" = donor ]; then kill -9 "$(server_pid bench)"; else kill -9 "$(server_pid bench-rcpt)"; fi
    wait "$pid" || true
    t1=$(calc "$(date +%s.%N) - $t0")
    if [ "$1" = donor ]; then
      w1=$(wire "$RPORT")
      rm -f "$ROOTFS$(server_dir bench)/mysqld.pid"; server_start bench "$PORT" "$OUR_PLUGIN_DIR" $donor_opts
    else
      rm -f "$ROOTFS$(server_dir bench-rcpt)/mysqld.pid"; server_start bench-rcpt "$RPORT" "$OUR_PLUGIN_DIR" $rcpt_opts
      w1=$(wire "$RPORT")
    fi
    read -r s2 w2 < <(into_dir)
    [ "$(checksums "$PORT" "$STATIC_TABLES" | wc -l)" = 5 ] || fail "resume: the donor lost its tables"
    printf '  resume: %s killed: first attempt %.2f s %.1f MiB, second %.2f s %.1f MiB (%s; per stage, data/network MiB: %s)\n' "$1" "$t1" "$(calc "$w1 / 1048576")" "$s2" "$(calc "$w2 / 1048576")" \
      "$(sql "$RPORT" "SELECT error_message FROM performance_schema.clone_status")" \
      "$(sql "$RPORT" "SELECT CONCAT(stage, ' ', ROUND(data / 1048576), '/', ROUND(network / 1048576)) FROM performance_schema.clone_progress WHERE data > 0" | paste -sd, -)" >&2
    row "resume: $1 killed at 60 %, again" "$(printf '1st %5.1f s %7.1f MiB' "$t1" "$(calc "$w1 / 1048576")")" \
      "$(printf '2nd %5.1f s %7.1f MiB' "$s2" "$(calc "$w2 / 1048576")")" \
      "$(printf 'wire 2nd %.0f %%, both %.2fx; time both %.2fx' "$(calc "$w2 * 100 / $full_w")" "$(calc "($w1 + $w2) / $full_w")" "$(calc "($t1 + $s2) / $full_t")")"
  }
  interrupted donor
  interrupted recipient
  # In place: a recipient that is a clone of the donor (and shares its
  # transactions), then a re-clone after the donor changed 5 % of its rows.
  server_stop bench-rcpt
  server_init bench-inplace
  server_start_supervised bench-inplace "$RPORT" "$OUR_PLUGIN_DIR" $rcpt_opts
  sql "$PORT" "CREATE TABLE IF NOT EXISTS bench.marker (id INT PRIMARY KEY)"
  restarts() { cat "$ROOTFS$(server_dir bench-inplace)/exit-codes" 2>/dev/null | grep -c '^16$' || true; }
  restarted_after() { [ "$(restarts)" -gt "$1" ]; }
  # in_place: "seconds wire_bytes" of an in-place clone (the seconds until
  # the statement returns), read once the server restarted on it.
  in_place() {
    local before t0 s; before=$(restarts)
    t0=$(date +%s.%N)
    sql "$RPORT" "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$PORT', clone_enable_compression = ON;
      CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234'" >/dev/null
    s=$(calc "$(date +%s.%N) - $t0")
    wait_until 120 0.2 -- restarted_after "${before:-0}" || fail "resume: the in-place recipient did not restart"
    server_wait bench-inplace "$RPORT"
    echo "$s $(wire "$RPORT")"
  }
  local s1 w1 s2 w2
  read -r s1 w1 < <(in_place)
  sql "$PORT" "UPDATE bench.t1 SET h = REVERSE(h) WHERE id <= $(( $(sql "$PORT" "SELECT MAX(id) FROM bench.t1") / 4 ))"
  read -r s2 w2 < <(in_place)
  [ "$(checksums "$RPORT" "$STATIC_TABLES")" = "$(checksums "$PORT" "$STATIC_TABLES")" ] || fail "resume: the re-clone differs from the donor"
  printf '  resume: in place, first %.2f s %.1f MiB, re-clone %.2f s %.1f MiB\n' "$s1" "$(calc "$w1 / 1048576")" "$s2" "$(calc "$w2 / 1048576")" >&2
  row "resume: in place, 5 % changed, re-clone" "$(printf 'first %5.1f s %7.1f MiB' "$s1" "$(calc "$w1 / 1048576")")" \
    "$(printf 're-clone %5.1f s %7.1f MiB' "$s2" "$(calc "$w2 / 1048576")")" \
    "$(printf 'wire %.0f %% of the first, time %.2fx' "$(calc "$w2 * 100 / $w1")" "$(calc "$s2 / $s1")")"
  server_stop bench-inplace
  server_stop bench
  unset NETNS
  ip netns del "$NS"
}

made=0
for mode in $MODES; do
  case $mode in
    local|remote|remote-compressed|remote-inplace)
      [ "$made" = "$MB" ] || { make_bench_donor "$PORT" "$MB"; made=$MB; }
      case $mode in
        local) clone_series "local" local OFF OFF ;;
        remote) clone_series "remote, compression off" remote OFF OFF ;;
        remote-compressed) clone_series "remote, compression on" remote ON ON ;;
        remote-inplace) clone_series "in place, until it answers" remote-inplace OFF OFF ;;
      esac ;;
    link)
      [ "$made" = "$LINK_MB" ] || { make_bench_donor "$PORT" "$LINK_MB"; made=$LINK_MB; }
      for rate in $LINKS; do
        link_up "$rate"
        NETNS=$NS clone_series "link $rate Mbit/s" remote best ON
        ip netns del "$NS"
      done ;;
    resume)
      [ "$made" = "$LINK_MB" ] || { make_bench_donor "$PORT" "$LINK_MB"; made=$LINK_MB; }
      resume_series ;;
    tables)
      tables_series
      made=tables ;;
    incompressible)
      [ "$made" = "$MB random" ] || { make_bench_donor "$PORT" "$MB" random; made="$MB random"; }
      incompressible_series ;;
    sysbench)
      [ -x "$ROOTFS/usr/bin/sysbench" ] || { log "no sysbench in the root filesystem (see ci/setup-env.sh): skipped"; continue; }
      [ "$made" = "$MB" ] || { make_bench_donor "$PORT" "$MB"; made=$MB; }
      server_start bench "$PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin
      sql "$PORT" "CREATE DATABASE IF NOT EXISTS sbtest"
      in_root sysbench oltp_read_write --mysql-host=127.0.0.1 --mysql-port="$PORT" --mysql-user=root --mysql-db=sbtest \
        --tables=4 --table-size=100000 prepare >/dev/null
      server_stop bench
      made=sysbench
      sysbench_series ;;
    *) fail "unknown mode $mode" ;;
  esac
done

where="warm page cache"; [ "$COLD" = 1 ] && where="cold page cache"; [ "$MEMORY" = 1 ] && where="servers on tmpfs"
[ "$COW" = xfs ] && where="servers on XFS with reflink"
[ "$COW" = btrfs ] && where="servers on btrfs"
echo "--- median of $ROUNDS rounds, $where, $MB MB of data ($LINK_MB MB on the links); ratio = stock / ours (above 1: ours is better)"
printf '%-34s | %-38s | %-38s | %s\n' "" "stock" "ours" "ratio"
printf '%s\n' "${rows[@]}"
echo "--- peak RSS (VmHWM) of each mysqld"
printf '%s\n' "${rss[@]}"
