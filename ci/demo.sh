#!/usr/bin/env bash
# The main job: installs what is needed (first run only), builds the plugin,
# starts a donor MySQL 9.7.4 with demo data and a recipient on 127.0.0.1,
# provisions the recipient from the donor with CLONE INSTANCE (in place: the
# recipient's data is replaced and it restarts under a small supervisor),
# shows it moving with clone-watch, verifies every table by CHECKSUM TABLE,
# and prints the clone_status row and the throughput.
set -euo pipefail
LOG_TAG=demo
. "$(dirname "$0")/common.sh"

DONOR_PORT=${DONOR_PORT:-13500}
RECIPIENT_PORT=$((DONOR_PORT + 1))
DEMO_MB=${DEMO_MB:-500}

bash "$REPO/ci/setup-env.sh"
build_plugin
install_our_plugin
SCRIPT_SERVERS=(demo-donor demo-recipient)
trap stop_script_servers EXIT

log "starting the donor on 127.0.0.1:$DONOR_PORT with ~$DEMO_MB MB of data"
server_init demo-donor
server_start demo-donor "$DONOR_PORT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
bash "$REPO/ci/gen-data.sh" "$DONOR_PORT" "$DEMO_MB"
sql "$DONOR_PORT" "CREATE USER clone_donor IDENTIFIED BY 'Donor-Pass-1'; GRANT BACKUP_ADMIN ON *.* TO clone_donor"

log "starting the recipient on 127.0.0.1:$RECIPIENT_PORT (supervised, so it can restart after the clone)"
server_init demo-recipient
server_start_supervised demo-recipient "$RECIPIENT_PORT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so

log "CLONE INSTANCE FROM clone_donor@127.0.0.1:$DONOR_PORT (in place), followed by clone-watch"
sql "$RECIPIENT_PORT" "SET GLOBAL clone_valid_donor_list = '127.0.0.1:$DONOR_PORT'"
# The live view a DBA points at the recipient: it waits for the clone,
# follows it through the restart and prints the summary.
"$REPO/target/release/clone-watch" --mysql "chroot $ROOTFS mysql" -h 127.0.0.1 -P "$RECIPIENT_PORT" -u root --interval 0.5 &
watch=$!
sql "$RECIPIENT_PORT" "CLONE INSTANCE FROM clone_donor@127.0.0.1:$DONOR_PORT IDENTIFIED BY 'Donor-Pass-1'"
wait "$watch" || fail "clone-watch did not see the clone complete"
server_wait demo-recipient "$RECIPIENT_PORT"

donor_sums=$(checksums "$DONOR_PORT")
recipient_sums=$(checksums "$RECIPIENT_PORT")
echo "$recipient_sums" | sed 's/^/  /'
if [ "$donor_sums" != "$recipient_sums" ]; then
  diff <(echo "$donor_sums") <(echo "$recipient_sums") || true
  fail "checksums differ between donor and recipient"
fi
log "all $(echo "$donor_sums" | wc -l) tables have the same checksum on the donor and the recipient"

echo "clone_status on the recipient:"
in_root mysql -uroot -h127.0.0.1 -P"$RECIPIENT_PORT" -E -e "SELECT * FROM performance_schema.clone_status" | sed 's/^/  /'
echo "clone_progress on the recipient:"
sql "$RECIPIENT_PORT" "SELECT stage, state, threads, data, network FROM performance_schema.clone_progress" | sed 's/^/  /'
sql "$RECIPIENT_PORT" "SELECT SUM(data), SUM(network), TIMESTAMPDIFF(MICROSECOND, MIN(begin_time), MAX(end_time)) / 1e6
  FROM performance_schema.clone_progress WHERE stage IN ('FILE COPY', 'PAGE COPY', 'REDO COPY')" | {
  read -r bytes net secs
  awk -v b="$bytes" -v n="$net" -v s="$secs" 'BEGIN { printf "throughput: %.1f MiB of data (%.1f MiB on the wire) in %.2f s = %.1f MiB/s\n", b / 1048576, n / 1048576, s, b / 1048576 / s }'
}
