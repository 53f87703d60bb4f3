#!/usr/bin/env bash
# The main job: installs what is needed (first run only), builds the plugin,
# starts a donor MySQL 9.7.4 with demo data on 127.0.0.1, clones it with our
# plugin, starts a second server on the clone, verifies every table by
# CHECKSUM TABLE, and prints the clone_status row and the throughput.
set -euo pipefail
LOG_TAG=demo
. "$(dirname "$0")/common.sh"

DONOR_PORT=${DONOR_PORT:-13500}
CLONE_PORT=$((DONOR_PORT + 1))
DEMO_MB=${DEMO_MB:-500}

bash "$REPO/ci/setup-env.sh"
build_plugin
install_our_plugin
trap 'server_stop demo-donor; server_stop demo-clone' EXIT

log "starting the donor on 127.0.0.1:$DONOR_PORT with ~$DEMO_MB MB of data"
server_init demo-donor
server_start demo-donor "$DONOR_PORT" "$OUR_PLUGIN_DIR"
sql "$DONOR_PORT" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'"
bash "$REPO/ci/gen-data.sh" "$DONOR_PORT" "$DEMO_MB"

dest=$(server_dir demo-clone)/data
rm -rf "$ROOTFS$(server_dir demo-clone)"
mkdir -p "$ROOTFS$(server_dir demo-clone)"/{files,tmp}
log "CLONE LOCAL DATA DIRECTORY = '$dest'"
sql "$DONOR_PORT" "CLONE LOCAL DATA DIRECTORY = '$dest'"

log "starting a server on the clone, 127.0.0.1:$CLONE_PORT"
server_start demo-clone "$CLONE_PORT" "$OUR_PLUGIN_DIR"
donor_sums=$(checksums "$DONOR_PORT")
clone_sums=$(checksums "$CLONE_PORT")
echo "$clone_sums" | sed 's/^/  /'
if [ "$donor_sums" != "$clone_sums" ]; then
  diff <(echo "$donor_sums") <(echo "$clone_sums") || true
  fail "checksums differ between donor and clone"
fi
log "all $(echo "$donor_sums" | wc -l) tables have the same checksum on the donor and the clone"

echo "clone_status on the donor:"
in_root mysql -uroot -h127.0.0.1 -P"$DONOR_PORT" -E -e "SELECT * FROM performance_schema.clone_status" | sed 's/^/  /'
sql "$DONOR_PORT" "SELECT SUM(data), TIMESTAMPDIFF(MICROSECOND, MIN(begin_time), MAX(end_time)) / 1e6
  FROM performance_schema.clone_progress WHERE state = 'Completed'" | {
  read -r bytes secs
  awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "throughput: %.1f MiB in %.2f s = %.1f MiB/s\n", b / 1048576, s, b / 1048576 / s }'
}
