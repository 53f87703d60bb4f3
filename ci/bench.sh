#!/usr/bin/env bash
# Benchmark: CLONE LOCAL of the same generated data with the stock plugin
# and with ours, alternating, in the same run. Prints seconds, MiB/s, the
# speed-up (stock time / our time: above 1 means ours is faster) and the
# peak RSS of mysqld (VmHWM of a server started fresh for each clone).
#
#   ci/bench.sh [--mb 2048] [--rounds 3] [--cold]
#
# --cold drops the OS page cache before each clone.
set -euo pipefail
LOG_TAG=bench
. "$(dirname "$0")/common.sh"

MB=2048 ROUNDS=3 PORT=13600 COLD=0
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    *) fail "unknown option $1" ;;
  esac
done

bash "$REPO/ci/setup-env.sh" >/dev/null
build_plugin
install_our_plugin
trap 'server_stop bench' EXIT

plugin_dir() { [ "$1" = stock ] && echo "$STOCK_PLUGIN_DIR" || echo "$OUR_PLUGIN_DIR"; }

log "generating ~$MB MB of data"
server_init bench
server_start bench "$PORT" "$STOCK_PLUGIN_DIR" --disable-log-bin
bash "$REPO/ci/gen-data.sh" "$PORT" "$MB"
server_stop bench

calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
bytes=0
declare -A total_s peak_kb
total_s=([stock]=0 [ours]=0); peak_kb=([stock]=0 [ours]=0)
printf '%-6s %-5s %9s %10s %12s\n' round plugin seconds MiB/s peak_rss_MiB
for round in $(seq 1 "$ROUNDS"); do
  for plugin in stock ours; do
    server_start bench "$PORT" "$(plugin_dir $plugin)" --plugin-load-add=mysql_clone.so --disable-log-bin
    pid=$(cat "$ROOTFS$(server_dir bench)/mysqld.pid")
    dest=$(server_dir bench)/files/clone
    rm -rf "$ROOTFS$dest"
    sync
    [ "$COLD" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s.%N)
    sql "$PORT" "CLONE LOCAL DATA DIRECTORY = '$dest'"
    t1=$(date +%s.%N)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/"$pid"/status)
    server_stop bench
    bytes=$(du -sb "$ROOTFS$dest" | cut -f1)
    rm -rf "$ROOTFS$dest"
    s=$(calc "$t1 - $t0")
    total_s[$plugin]=$(calc "${total_s[$plugin]} + $s")
    [ "$hwm" -gt "${peak_kb[$plugin]}" ] && peak_kb[$plugin]=$hwm
    printf '%-6s %-5s %9.2f %10.1f %12.1f\n' "$round" "$plugin" "$s" "$(calc "$bytes / 1048576 / $s")" "$(calc "$hwm / 1024")"
  done
done
stock_s=$(calc "${total_s[stock]} / $ROUNDS")
ours_s=$(calc "${total_s[ours]} / $ROUNDS")
mib=$(calc "$bytes / 1048576")
echo "---"
printf 'CLONE LOCAL of %.0f MiB (%s cache), mean of %d rounds:\n' "$mib" "$([ "$COLD" = 1 ] && echo cold || echo warm)" "$ROUNDS"
printf '  stock: %.2f s  %.1f MiB/s  peak RSS %.1f MiB\n' "$stock_s" "$(calc "$mib / $stock_s")" "$(calc "${peak_kb[stock]} / 1024")"
printf '  ours:  %.2f s  %.1f MiB/s  peak RSS %.1f MiB\n' "$ours_s" "$(calc "$mib / $ours_s")" "$(calc "${peak_kb[ours]} / 1024")"
printf '  speed-up (stock time / our time): %.2f\n' "$(calc "$stock_s / $ours_s")"
