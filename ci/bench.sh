#!/usr/bin/env bash
# Benchmark: the same generated data cloned with the stock plugin and with
# ours, alternating, in the same run. For each mode it prints seconds,
# MiB/s, the speed-up (stock time / our time: above 1 means ours is faster)
# and the peak RSS of the mysqld doing the work (VmHWM of servers started
# fresh for each clone; for remote clones, donor and recipient added).
#
#   ci/bench.sh [--mb 2048] [--rounds 3] [--cold]
#               [--modes "local remote remote-compressed remote-inplace"]
#
# remote-inplace replaces the recipient's data and is timed until the
# restarted recipient answers again; its RSS is the donor's only.
# --cold drops the OS page cache before each clone.
set -euo pipefail
LOG_TAG=bench
. "$(dirname "$0")/common.sh"

MB=2048 ROUNDS=3 PORT=13600 COLD=0 MODES="local remote remote-compressed remote-inplace"
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    --modes) MODES=$2; shift 2 ;;
    *) fail "unknown option $1" ;;
  esac
done
RPORT=$((PORT + 1))

bash "$REPO/ci/setup-env.sh" >/dev/null
build_plugin
install_our_plugin
trap 'server_stop bench; server_stop bench-rcpt' EXIT

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
hwm_kb() { awk '/VmHWM/ {print $2}' /proc/"$(cat "$ROOTFS$(server_dir "$1")/mysqld.pid")"/status; }

log "generating ~$MB MB of data"
server_init bench
server_start bench "$PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin
bash "$REPO/ci/gen-data.sh" "$PORT" "$MB"
sql "$PORT" "CREATE USER bench IDENTIFIED BY 'Bench-1234'; GRANT BACKUP_ADMIN ON *.* TO bench"
server_stop bench
server_init bench-rcpt

# one_clone MODE PLUGIN DEST: runs one clone, prints "seconds peak_kb".
one_clone() {
  local mode=$1 plugin=$2 dest=$3 t0 t1 hwm
  server_start bench "$PORT" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so --disable-log-bin
  if [ "$mode" = remote-inplace ]; then
    server_start_supervised bench-rcpt "$RPORT" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so --disable-log-bin
    sql "$RPORT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PORT'"
  elif [ "$mode" != local ]; then
    server_start bench-rcpt "$RPORT" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so --disable-log-bin
    local compress=OFF; [ "$mode" = remote-compressed ] && compress=ON
    sql "$RPORT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PORT', clone_enable_compression=$compress"
  fi
  sync
  [ "$COLD" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
  t0=$(date +%s.%N)
  if [ "$mode" = local ]; then
    sql "$PORT" "CLONE LOCAL DATA DIRECTORY = '$dest'"
  elif [ "$mode" = remote-inplace ]; then
    sql "$RPORT" "CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234'"
    sleep 0.2
    server_wait bench-rcpt "$RPORT"
  else
    sql "$RPORT" "CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234' DATA DIRECTORY = '$dest'"
  fi
  t1=$(date +%s.%N)
  hwm=$(hwm_kb bench)
  if [ "$mode" = remote-inplace ]; then
    # The bytes cloned, as the restarted recipient reports them.
    sql "$RPORT" "SELECT SUM(data) FROM performance_schema.clone_progress" >"$ROOTFS$(server_dir bench)/inplace-bytes"
    server_stop bench-rcpt
  elif [ "$mode" != local ]; then
    hwm=$((hwm + $(hwm_kb bench-rcpt))); server_stop bench-rcpt
  fi
  server_stop bench
  echo "$(calc "$t1 - $t0") $hwm"
}

summary=()
for mode in $MODES; do
  declare -A total_s=([stock]=0 [ours]=0) peak_kb=([stock]=0 [ours]=0)
  bytes=0
  echo "== $mode"
  printf '%-6s %-5s %9s %10s %12s\n' round plugin seconds MiB/s peak_rss_MiB
  for round in $(seq 1 "$ROUNDS"); do
    for plugin in stock ours; do
      dest=$(server_dir bench)/files/clone
      [ "$mode" != local ] && dest=$(server_dir bench-rcpt)/files/clone
      rm -rf "$ROOTFS$dest"
      read -r s hwm < <(one_clone "$mode" "$plugin" "$dest")
      if [ "$mode" = remote-inplace ]; then
        bytes=$(cat "$ROOTFS$(server_dir bench)/inplace-bytes")
      else
        bytes=$(du -sb "$ROOTFS$dest" | cut -f1)
      fi
      rm -rf "$ROOTFS$dest"
      total_s[$plugin]=$(calc "${total_s[$plugin]} + $s")
      [ "$hwm" -gt "${peak_kb[$plugin]}" ] && peak_kb[$plugin]=$hwm
      printf '%-6s %-5s %9.2f %10.1f %12.1f\n' "$round" "$plugin" "$s" "$(calc "$bytes / 1048576 / $s")" "$(calc "$hwm / 1024")"
    done
  done
  stock_s=$(calc "${total_s[stock]} / $ROUNDS"); ours_s=$(calc "${total_s[ours]} / $ROUNDS"); mib=$(calc "$bytes / 1048576")
  summary+=("$(printf '%-18s %6.0f MiB  stock %6.2f s %7.1f MiB/s %7.1f MiB RSS | ours %6.2f s %7.1f MiB/s %7.1f MiB RSS | speed-up %.2f' \
    "$mode" "$mib" "$stock_s" "$(calc "$mib / $stock_s")" "$(calc "${peak_kb[stock]} / 1024")" \
    "$ours_s" "$(calc "$mib / $ours_s")" "$(calc "${peak_kb[ours]} / 1024")" "$(calc "$stock_s / $ours_s")")")
  unset total_s peak_kb
done
echo "--- mean of $ROUNDS rounds, $([ "$COLD" = 1 ] && echo cold || echo warm) cache; speed-up = stock time / our time"
printf '%s\n' "${summary[@]}"
