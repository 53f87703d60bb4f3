#!/usr/bin/env bash
# Where a clone's CPU time goes: one clone per plugin (stock, then ours) on
# the benchmark's generated data, under `perf record -a` (cpu-clock, 999 Hz),
# then a table per plugin of the threads of both servers that ran, each with
# its CPU seconds, its share of the clone's wall time, and the libraries its
# samples fell in. What no thread used is idle CPU: time the clone waited.
#
#   ci/profile.sh [--mode remote|local] [--mb 512] [--memory] [--rounds 1]
#
# --memory puts both servers on a tmpfs (see ci/bench.sh). Needs perf
# (Debian: linux-perf) on the host; perf data stays in $CACHE/profile/.
set -euo pipefail
LOG_TAG=profile
. "$(dirname "$0")/common.sh"

MODE=remote MB=512 MEMORY=0 ROUNDS=1 PORT=13600 RPORT=13601 HZ=999
while [ $# -gt 0 ]; do
  case $1 in
    --mode) MODE=$2; shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    --memory) MEMORY=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) fail "unknown option $1" ;;
  esac
done
case $MODE in remote | local) ;; *) fail "--mode is remote or local" ;; esac
command -v perf >/dev/null || fail "no perf on this machine (apt-get install linux-perf)"

bash "$REPO/ci/setup-env.sh" >/dev/null
build_plugin
install_our_plugin
OUT=$CACHE/profile
mkdir -p "$OUT"
SCRIPT_SERVERS=(bench bench-rcpt)
cleanup() {
  stop_script_servers
  servers_in_memory_end
}
trap cleanup EXIT
if [ "$MEMORY" = 1 ]; then
  servers_in_memory
fi

make_bench_donor "$PORT" "$MB"

# summarize DATA WALL DONOR_PID RECIPIENT_PID: the per-thread table.
summarize() {
  local data=$1 wall=$2 donor=$3 recipient=$4
  perf script -i "$data" -F pid,tid,comm,ip,dso 2>/dev/null | awk -v hz="$HZ" -v wall="$wall" -v donor="$donor" -v rcpt="$recipient" -v cpus="$(nproc)" '
    {
      # "comm pid/tid ip (dso)": comm may hold spaces; the dso is the last field.
      dso = $NF; gsub(/[()]/, "", dso); n = split(dso, p, "/"); lib = p[n]; sub(/\.so.*/, "", lib)
      if (lib == "[kernel.kallsyms]") lib = "kernel"
      for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, id, "/"); comm = $1; for (j = 2; j < i; j++) comm = comm " " $j; break }
      total++
      if (id[1] == 0) { idle++; next }
      who = id[1] == donor ? "donor" : id[1] == rcpt ? "recipient" : "other"
      if (who == "other") { other++; next }
      key = who " " comm " (" id[2] ")"
      samples[key]++; libs[key, lib]++; seen[lib] = 1
    }
    END {
      for (k in samples) if (samples[k] / hz >= 0.02) {
        line = ""
        for (l in seen) if ((k, l) in libs) {
          share = 100 * libs[k, l] / samples[k]
          if (share >= 5) line = line sprintf("%s %d%%, ", l, share)
        }
        sub(/, $/, "", line)
        printf "%d\t  %-38s %6.2f %5.0f%%  %s\n", samples[k], k, samples[k] / hz, 100 * samples[k] / hz / wall, line
      }
      # An idle CPU may take no samples at all, so idle is what the others left.
      idle = cpus * wall - (total - idle) / hz
      printf "0\t  %-38s %6.2f %5.0f%%  (of %d cores)\n", "idle", idle, 100 * idle / wall / cpus, cpus
      printf "0\t  %-38s %6.2f\n", "other processes and threads", other / hz
    }' | sort -t"$(printf '\t')" -k1,1rn -s | cut -f2-
}

for round in $(seq "$ROUNDS"); do
  for plugin in stock ours; do
    pdir=$(plugin_dir "$plugin")
    server_start bench "$PORT" "$pdir" --plugin-load-add=mysql_clone.so --disable-log-bin
    recipient=none
    if [ "$MODE" = remote ]; then
      server_init bench-rcpt
      server_start bench-rcpt "$RPORT" "$pdir" --plugin-load-add=mysql_clone.so --disable-log-bin
      sql "$RPORT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$PORT'"
      recipient=$(server_pid bench-rcpt)
      dest=$(server_dir bench-rcpt)/files/clone
      stmt="CLONE INSTANCE FROM bench@127.0.0.1:$PORT IDENTIFIED BY 'Bench-1234' DATA DIRECTORY = '$dest'"
      port=$RPORT
    else
      dest=$(server_dir bench)/files/clone
      stmt="CLONE LOCAL DATA DIRECTORY = '$dest'"
      port=$PORT
    fi
    rm -rf "$ROOTFS$dest"
    sync
    data=$OUT/$MODE-$plugin-$round.data
    rm -f "$OUT/wall"
    # The clone's own time, measured inside what perf runs (not perf's start).
    perf record -a -F "$HZ" -e cpu-clock -o "$data" -q -- bash -c '
      t0=$(date +%s.%N); chroot "$1" mysql -uroot -h127.0.0.1 -P"$2" -N -B -e "$3" >/dev/null || exit
      awk "BEGIN { printf \"%.3f\", $(date +%s.%N) - $t0 }" >"$4"' _ "$ROOTFS" "$port" "$stmt" "$OUT/wall" 2>"$OUT/perf.err" ||
      fail "the clone or perf failed: $(cat "$OUT/perf.err")"
    wall=$(cat "$OUT/wall")
    echo "== $plugin, $MODE, $(du -sm "$ROOTFS$dest" | cut -f1) MiB cloned in $wall s (round $round)"
    printf '  %-38s %6s %6s  %s\n' "server, thread (tid)" "CPU-s" "busy" "where its samples fell"
    summarize "$data" "$wall" "$(server_pid bench)" "$recipient"
    [ "$MODE" = remote ] && server_stop bench-rcpt
    server_stop bench
    rm -rf "$ROOTFS$dest"
  done
done
