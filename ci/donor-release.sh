#!/usr/bin/env bash
# How long a donor refuses new clones after its recipient was killed -9 in
# the middle of a clone, with clone_donor_timeout_after_network_failure at
# its default (5 minutes): for each copy stage and each plugin (the donor's
# and the first recipient's), the seconds from the kill to the first new
# clone, of the same account from a second recipient, that the donor
# accepts (each refusal is 3634 through 3862), and how many were refused.
#
#   ci/donor-release.sh [--mb 60] [--stages "FILE COPY,PAGE COPY,REDO COPY"]
set -uo pipefail
LOG_TAG=donor-release
. "$(dirname "$0")/common.sh"
SERVERS=release

MB=60 STAGES="FILE COPY,PAGE COPY,REDO COPY"
while [ $# -gt 0 ]; do
  case $1 in
    --mb) MB=$2; shift ;;
    --stages) STAGES=$2; shift ;;
    *) fail "unknown option $1" ;;
  esac
  shift
done
PORT=${PORT_BASE:-14600}
DONOR=$PORT FIRST=$((PORT + 1)) SECOND=$((PORT + 2))
SCRIPT_SERVERS=(donor first second)
trap stop_script_servers EXIT

build_plugin
install_our_plugin
log "donor with $MB MB"
server_init donor
server_start donor "$DONOR" "$STOCK_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
bash "$REPO/ci/gen-data.sh" "$DONOR" "$MB" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user"
server_stop donor

# logged_since FILE SINCE PATTERN: whether FILE shows PATTERN after byte SINCE.
logged_since() { tail -c +$(($2 + 1)) "$1" | grep -q "$3"; }

# second_accepted: one clone of the second recipient, into its copy/;
# fails if the donor refused it (3634), counted in refused; out is its
# output (both of killed_in).
second_accepted() {
  rm -rf "$ROOTFS$(server_dir second)/copy"
  out=$(sql "$SECOND" "CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$(server_dir second)/copy'" 2>&1)
  [[ "$out" == *"3634"* ]] || return 0
  refused=$((refused + 1))
  return 1
}

# killed_in PLUGIN STAGE: a throttled clone of the first recipient, under
# writes on the donor, killed -9 once its InnoDB applies STAGE; then the
# second recipient clones until the donor accepts. Prints one row.
killed_in() {
  local plugin=$1 stage=$2 clone writer stop=$ROOTFS$(server_dir donor)/stop-writer elog since t0 took out refused=0
  server_init first
  server_start first "$FIRST" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so
  elog=$ROOTFS$(server_dir first)/error.log
  since=$(stat -c %s "$elog")
  ( while [ ! -e "$stop" ]; do sql "$DONOR" "UPDATE bench.t3 SET k = k + 1 WHERE id % 97 = 0" 2>/dev/null || sleep 0.2; done ) &
  writer=$!
  ( sql "$FIRST" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR', clone_max_data_bandwidth=4;
      CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234' DATA DIRECTORY = '$(server_dir first)/copy'" >/dev/null 2>&1 ) &
  clone=$!
  wait_until 120 0.01 -- logged_since "$elog" "$since" "Clone Apply State $stage"
  kill -9 "$(server_pid first)"
  t0=$(date +%s.%N)
  wait "$clone" 2>/dev/null
  touch "$stop"; wait "$writer"; rm -f "$stop"
  rm -f "$ROOTFS$(server_dir first)/mysqld.pid" "$ROOTFS$(server_dir first)/supervised.pid"
  wait_until 300 0.1 -- second_accepted
  took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%-6s %-10s %8s s %8s  %s\n' "$plugin" "$stage" "$took" "$refused" "${out:-accepted}"
  rm -rf "$ROOTFS$(server_dir second)/copy"
}

printf '%-6s %-10s %10s %8s  %s\n' plugin stage "to accept" refused "the clone that ended the wait"
for plugin in ours stock; do
  server_start donor "$DONOR" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so
  server_init second
  server_start second "$SECOND" "$(plugin_dir "$plugin")" --plugin-load-add=mysql_clone.so
  sql "$SECOND" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
  IFS=, read -ra stages <<<"$STAGES"
  for stage in "${stages[@]}"; do killed_in "$plugin" "$stage"; done
  server_stop second; server_stop donor
done
