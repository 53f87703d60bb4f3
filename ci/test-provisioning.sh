#!/usr/bin/env bash
# Integration tests of safe provisioning on real mysqld 9.7.4 servers on
# 127.0.0.1: the dry run (clone_dry_run) from our donor and from a stock
# one, into a new directory and in place, and the free-space check that
# refuses an in-place clone before it drops anything, on a small file
# system of its own (a loop device this script creates and removes), and
# the dry run of CLONE LOCAL, clone_exclude_plugins_list, and clone-watch
# following an in-place clone. The
# stock recipient is run on the same small file system to show what it
# does there. Closes with "N passed, N failed".
set -uo pipefail
LOG_TAG=test-provisioning
. "$(dirname "$0")/common.sh"

PORT=${PORT_BASE:-14100}
DONOR=$PORT RECIPIENT=$((PORT + 1)) SMALL=$((PORT + 2)) CLONED=$((PORT + 3))
SMALL_FS=$CACHE/provisioning-small.img
SMALL_MNT=$ROOTFS/clone-rs/prov-small
OTHER_FS=$CACHE/provisioning-other.img
OTHER_MNT=$ROOTFS/clone-rs/prov-ext-other
SCRIPT_SERVERS=(prov-donor prov-recipient prov-small/srv prov-cloned)
cleanup() {
  stop_script_servers
  mountpoint -q "$SMALL_MNT" && umount "$SMALL_MNT"
  mountpoint -q "$OTHER_MNT" && umount "$OTHER_MNT"
  rm -f "$SMALL_FS" "$OTHER_FS"
}
trap cleanup EXIT

build_plugin
install_our_plugin

log "donor with data"
server_init prov-donor
server_start prov-donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
bash "$REPO/ci/gen-data.sh" "$DONOR" "${TEST_DATA_MB:-100}" || fail "data generation"
sql "$DONOR" "CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user"
server_stop prov-donor

CLONE_FROM="CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'"

# dry PORT STATEMENT: runs STATEMENT with clone_dry_run=ON; prints its
# error number (0 on success), then SHOW WARNINGS.
dry() {
  printf "SET SESSION clone_dry_run=ON;\n%s;\nSHOW WARNINGS;\n" "$2" |
    in_root mysql -uroot -h127.0.0.1 -P"$1" -N -B --force 2>&1 |
    sed 's/^ERROR \([0-9]*\) .*/errno \1/'
}
errno_in() { sed -n 's/^errno \([0-9]*\)$/\1/p' <<<"$1" | head -1 | grep . || echo 0; }
notes_in() { grep -c '^Note	1105	' <<<"$1"; }

# A recipient with data of its own; the same rows must be there after
# whatever a clone refused.
recipient_with_data() {
  sql "$1" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR';
    CREATE DATABASE mine; CREATE TABLE mine.t (id INT PRIMARY KEY, v VARCHAR(64));
    INSERT INTO mine.t VALUES (1, 'kept'), (2, 'also kept')"
}
mine() { checksums "$1" mine.t 2>&1; }

# dry_runs DONOR_PLUGIN: the dry run from that donor, into a new directory
# and in place; then a real clone from the same donor, which it can serve
# only if the dry run left no clone running there.
dry_runs() {
  local dp=$1 out dest status_before pid before
  server_start prov-donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so
  server_init prov-recipient
  server_start_supervised prov-recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  recipient_with_data "$RECIPIENT"
  before=$(mine "$RECIPIENT")
  sql "$RECIPIENT" "CLONE LOCAL DATA DIRECTORY = '$(server_dir prov-recipient)/earlier'"
  status_before=$(sql "$RECIPIENT" "SELECT * FROM performance_schema.clone_status")
  dest=$(server_dir prov-recipient)/dry
  out=$(dry "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")
  check "dry run <- $dp donor, new directory: succeeds" "0" "$(errno_in "$out")"
  check "dry run <- $dp: says the clone would start" "1" "$(grep -c 'the clone would start' <<<"$out")"
  check "dry run <- $dp: notes what it checked (connection, compatibility, space, outcome)" "4" "$(notes_in "$out")"
  check "dry run <- $dp: the directory was not created" "absent" "$([ -e "$ROOTFS$dest" ] && echo present || echo absent)"
  check "dry run <- $dp: clone_status still shows the last real clone" "$status_before" "$(sql "$RECIPIENT" "SELECT * FROM performance_schema.clone_status")"
  check "dry run <- $dp: the error log says what it checked" "1" \
    "$(grep -c 'Clone dry run: Every check passed' "$ROOTFS$(server_dir prov-recipient)/error.log")"
  if [ "$dp" = ours ]; then
    out=$(dry "$RECIPIENT" "CLONE LOCAL DATA DIRECTORY = '$dest'")
    check "dry run of CLONE LOCAL: succeeds, says so, creates nothing, clone_status kept" "0 1 absent" \
      "$(errno_in "$out") $(grep -c 'the clone would start' <<<"$out") $([ -e "$ROOTFS$dest" ] && echo present || echo absent)"
    check "dry run of CLONE LOCAL: clone_status kept" "$status_before" "$(sql "$RECIPIENT" "SELECT * FROM performance_schema.clone_status")"
  fi

  pid=$(cat "$ROOTFS$(server_dir prov-recipient)/mysqld.pid")
  out=$(dry "$RECIPIENT" "$CLONE_FROM")
  check "dry run <- $dp in place: ends with the error that says every check passed" "3875" "$(errno_in "$out")"
  check "dry run <- $dp in place: checks the supervisor, and says the clone would be staged" "2" \
    "$(grep -c 'A supervisor restarts this server\|Staged in-place clone' <<<"$out")"
  check "dry run <- $dp in place: notes what it checked, as into a new directory (connection, compatibility, transactions discarded, staging, space, supervisor)" "6" "$(notes_in "$out")"
  out=$(dry "$RECIPIENT" "SET GLOBAL clone_stage_in_place = NEVER; $CLONE_FROM")
  sql "$RECIPIENT" "SET GLOBAL clone_stage_in_place = AUTO"
  check "dry run <- $dp in place, stock order: checks the space the drop releases, and says why that order" "2" \
    "$(grep -c 'the drop of this server.s user data releases\|stock order, this server.s data dropped first: clone_stage_in_place is NEVER' <<<"$out")"
  check "dry run <- $dp in place: the error log says what it checked" "2" \
    "$(grep -c 'Clone dry run: A supervisor restarts this server' "$ROOTFS$(server_dir prov-recipient)/error.log")"
  check "dry run <- $dp in place: user data untouched" "$before" "$(mine "$RECIPIENT")"
  check "dry run <- $dp in place: the server did not restart" "$pid" "$(cat "$ROOTFS$(server_dir prov-recipient)/mysqld.pid")"

  # A failing check fails the dry run as it fails the clone.
  sql "$RECIPIENT" "SET GLOBAL max_allowed_packet = 1048576"
  out=$(dry "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")
  check "dry run <- $dp: a failing check gives the clone's own error" \
    "$(errno_of "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")" "$(errno_in "$out")"
  sql "$RECIPIENT" "SET GLOBAL max_allowed_packet = 67108864"
  rm -rf "$ROOTFS$dest"

  # The donor ended the dry run's clone: a real one starts at once.
  dest=$(server_dir prov-cloned)/data
  rm -rf "$ROOTFS$(server_dir prov-cloned)"; mkdir -p "$ROOTFS$(server_dir prov-cloned)"/{files,tmp}
  dry "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'" >/dev/null
  check "after a dry run <- $dp: the real clone succeeds" "0" "$(errno_of "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")"
  server_start prov-cloned "$CLONED" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  check "after a dry run <- $dp: checksums" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$CLONED" "$STATIC_TABLES")"
  server_stop prov-cloned; server_stop prov-recipient

  # Without a supervisor the in-place clone would end with the server shut down.
  server_start prov-recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
  out=$(dry "$RECIPIENT" "$CLONE_FROM")
  check "dry run <- $dp in place without a supervisor: the error the clone would end with" "3707" "$(errno_in "$out")"
  check "dry run <- $dp in place without a supervisor: notes what it checked" "6" "$(notes_in "$out")"
  server_stop prov-recipient; server_stop prov-donor
}

scenario dry_run && dry_runs ours
scenario dry_run && dry_runs stock

# The small file system: room for an initialised server and its own data,
# not for the donor's.
small_fs() {
  mountpoint -q "$SMALL_MNT" && umount "$SMALL_MNT"
  mkdir -p "$SMALL_MNT"
  truncate -s 0 "$SMALL_FS" && truncate -s "${SMALL_FS_MB:-320}M" "$SMALL_FS"
  mkfs.ext4 -q -F -m 0 "$SMALL_FS" || fail "mkfs.ext4"
  mount -o loop "$SMALL_FS" "$SMALL_MNT" || fail "mount the small file system"
  server_init prov-small/srv
}

# space_first DONOR_PLUGIN RECIPIENT_PLUGIN: an in-place clone onto the
# small file system.
space_first() {
  local dp=$1 rp=$2 out before elog
  small_fs
  server_start prov-donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so
  server_start_supervised prov-small/srv "$SMALL" "$(plugin_dir "$rp")" --plugin-load-add=mysql_clone.so
  recipient_with_data "$SMALL"
  before=$(mine "$SMALL")
  elog=$ROOTFS$(server_dir prov-small/srv)/error.log
  out=$(sql "$SMALL" "$CLONE_FROM" 2>&1)
  log "$rp recipient <- $dp donor on $(df -h --output=avail "$SMALL_MNT" | tail -1) free: $out"
  check "$rp <- $dp in place on a small disk: ER_CLONE_DISK_SPACE" "3873" "$(sed -n 's/^ERROR \([0-9]*\).*/\1/p' <<<"$out")"
  check "$rp <- $dp in place on a small disk: the server keeps running" "1" "$(sql "$SMALL" "SELECT 1")"
  if [ "$rp" = ours ]; then
    check "$rp <- $dp: refused before the drop, user data still there" "$before" "$(mine "$SMALL")"
    check "$rp <- $dp: nothing was dropped" "0" "$(grep -c 'Clone removing all user data' "$elog")"
  else
    # What the stock plugin does (issue 11): it drops first, then checks.
    check "$rp <- $dp: the stock recipient dropped the user data before its check" "dropped gone" \
      "$(grep -q 'Clone removing all user data' "$elog" && echo dropped) $(sql "$SMALL" "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'mine'" | sed 's/^0$/gone/')"
  fi
  if [ "$rp" = ours ]; then
    out=$(dry "$SMALL" "$CLONE_FROM DATA DIRECTORY = '$(server_dir prov-small/srv)/new'")
    check "$rp <- $dp: a dry run into the small disk says the same" "3873" "$(errno_in "$out")"
    out=$(dry "$SMALL" "CLONE LOCAL DATA DIRECTORY = '$(server_dir prov-small/srv)/new'")
    check "$rp: a dry run of CLONE LOCAL into the small disk too" "3873" "$(errno_in "$out")"
  fi
  server_stop prov-small/srv; server_stop prov-donor
}

scenario space_first && space_first ours ours
scenario space_first && space_first stock ours
scenario space_first && space_first stock stock

# The band where only the new counting lets a clone in: a user table under
# innodb_directories on the recipient's own file system (DATA DIRECTORY),
# and the binary log its rows filled. InnoDB's check, after the drop, sees
# free + everything the drop releases on the data directory's file system;
# F is the free space at which that equals the estimate. Below F both
# plugins refuse the clone (ours before the drop), above F both complete
# it. The free space is set with a filler file, X/2 away from F (X: the
# table's size), far beyond what the drop itself writes.
to_bytes() { awk '{ split("Bytes KiB MiB GiB TiB", u, " "); for (i = 1; i <= 5; i++) if ($2 == u[i]) printf "%.0f\n", $1 * 1024 ^ (i - 1) }' <<<"$1"; }
allocated() { [ $# -gt 0 ] || { echo 0; return; }; stat -c '%b %B' "$@" | awk '{ s += $1 * $2 } END { print s + 0 }'; }
free_bytes() { stat -f -c '%s %a' "$1" | awk '{ print $1 * $2 }'; }
band_ext() { echo "${BAND_EXT:-$SMALL_MNT/ext}"; }

# band_recipient PLUGIN: the small file system, big enough this time, with
# a recipient holding mine.t and mine.big (under innodb_directories).
band_recipient() {
  SMALL_FS_MB=${BAND_FS_MB:-1400} small_fs
  mkdir -p "$(band_ext)"
  server_start_supervised prov-small/srv "$SMALL" "$(plugin_dir "$1")" --plugin-load-add=mysql_clone.so \
    --innodb-directories="${BAND_EXT_IN_ROOT:-/clone-rs/prov-small/ext}"
  recipient_with_data "$SMALL"
  sql "$SMALL" "CREATE TABLE mine.big (id INT PRIMARY KEY, pad CHAR(255) NOT NULL)
      DATA DIRECTORY = '${BAND_EXT_IN_ROOT:-/clone-rs/prov-small/ext}';
    SET SESSION cte_max_recursion_depth = 1000000;
    INSERT INTO mine.big WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${BAND_ROWS:-200000})
      SELECT n, LEFT(REPEAT(SHA2(n, 256), 4), 255) FROM seq"
}

# band_numbers: "F X" for the recipient on the small file system, counted
# here from the files themselves: the estimate (NEEDED, from a dry run of
# ours), less what the drop releases on this file system (mine's files,
# mine.big when its directory is here, the binary logs), plus what our
# plugin writes before InnoDB checks (doublewrite copies, a few blocks).
band_numbers() {
  local d=$SMALL_MNT/srv/data dev released ext written logs
  dev=$(stat -c %d "$d")
  logs=$(sed "s|^\./|$d/|" "$d/binlog.index" 2>/dev/null)
  ext=$(allocated $(find "$(band_ext)" -name '*.ibd'))
  released=$(( $(allocated "$d/mine" $(find "$d/mine" -type f)) + $(allocated $logs) ))
  [ "$(stat -c %d "$(band_ext)")" = "$dev" ] && released=$((released + ext))
  written=$(( $(stat -c %s "$d"/#ib_*.dblwr | awk '{ s += int(($1 + 4095) / 4096) * 4096 } END { print s + 0 }') + 5 * 4096 ))
  echo "$((NEEDED - released + written)) $ext"
}

# fill_to BYTES: leaves BYTES free on the small file system.
fill_to() {
  local avail; avail=$(free_bytes "$SMALL_MNT")
  [ "$avail" -gt "$1" ] || fail "the small file system has $avail free, not $1"
  fallocate -l $((avail - $1)) "$SMALL_MNT/filler" || fail "fallocate"
}

# space_band PLUGIN above|below: the clone with F +/- X/2 free.
space_band() {
  local rp=$1 side=$2 f x out before elog want
  local counted=${BAND_COUNTED:-tablespace files outside them.*binary logs}
  server_start prov-donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  band_recipient "$rp"
  before=$(mine "$SMALL")
  elog=$ROOTFS$(server_dir prov-small/srv)/error.log
  if [ -z "${NEEDED:-}" ]; then
    [ "$rp" = ours ] || fail "space_band: the first run is ours (it reads the estimate)"
    out=$(dry "$SMALL" "$CLONE_FROM")
    NEEDED=$(to_bytes "$(sed -n 's/^Note.*The clone will write \([0-9.]* [A-Za-z]*\);.*/\1/p' <<<"$out")")
  fi
  read -r f x <<<"$(band_numbers)"
  log "space band: estimate $NEEDED, F $f, X $x"
  [ "$x" -gt $((32 << 20)) ] || fail "mine.big is too small to tell the sides apart ($x)"
  if [ "$side" = above ]; then fill_to $((f + x / 2)); want=0; else fill_to $((f - x / 2)); want=3873; fi
  if [ "$rp" = ours ]; then
    out=$(dry "$SMALL" "$CLONE_FROM")
    check "band $side F, ours: the dry run says what was counted" "1" "$(grep -c "$counted" <<<"$out")"
    check "band $side F, ours: the dry run's verdict" "$([ "$side" = above ] && echo 3875 || echo 3873)" "$(errno_in "$out")"
  fi
  # The clone's own error is line 1's: after a clone that succeeded, the
  # server may be restarting before SHOW WARNINGS (line 2) runs (2013).
  out=$(printf "%s;\nSHOW WARNINGS;\n" "$CLONE_FROM" | in_root mysql -uroot -h127.0.0.1 -P"$SMALL" -N -B --force 2>&1 |
    sed 's/^ERROR \([0-9]*\) ([^)]*) at line 1: .*/errno \1/')
  check "band $side F, $rp: the clone's outcome" "$want" "$(errno_in "$out")"
  if [ "$side" = above ]; then
    server_wait prov-small/srv "$SMALL"
    check "band above F, $rp: the clone's checksums" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$SMALL" "$STATIC_TABLES")"
  elif [ "$rp" = ours ]; then
    check "band below F, ours: refused before the drop, user data kept" "$before 0" "$(mine "$SMALL") $(grep -c 'Clone removing all user data' "$elog")"
    check "band below F, ours: the refusal says what was counted" "1" "$(grep -c "$counted" <<<"$out")"
  fi
  server_stop prov-small/srv; server_stop prov-donor
}

scenario space_band && { unset NEEDED; for side in above below; do for rp in ours stock; do space_band "$rp" "$side"; done; done; }

# The same table on another file system: InnoDB does not count it, nor may
# we. With F counted without it, "below F" is where counting it would have
# let ours drop and then fail; both refuse.
scenario space_band_elsewhere && {
  for rp in ours stock; do
    mountpoint -q "$OTHER_MNT" && umount "$OTHER_MNT"
    mkdir -p "$OTHER_MNT"; truncate -s 0 "$OTHER_FS" && truncate -s 512M "$OTHER_FS"
    mkfs.ext4 -q -F -m 0 "$OTHER_FS" && mount -o loop "$OTHER_FS" "$OTHER_MNT" || fail "the other file system"
    BAND_EXT=$OTHER_MNT BAND_EXT_IN_ROOT=/clone-rs/prov-ext-other \
      BAND_COUNTED='released on other file systems does not count' space_band "$rp" below
    umount "$OTHER_MNT"
  done
  rm -f "$OTHER_FS"
}

# exclude_plugins DONOR_PLUGIN: the donor runs the EXAMPLE storage engine
# plugin, which the recipient's plugin directory lacks: the stock check
# refuses the clone (ER_CLONE_PLUGIN_MATCH) unless clone_exclude_plugins_list
# names the plugin.
exclude_plugins() {
  local dp=$1 lean=/opt/clone-rs/plugin-lean f dest out
  rm -rf "$ROOTFS$lean"; mkdir -p "$ROOTFS$lean"
  for f in "$ROOTFS$OUR_PLUGIN_DIR"/*; do
    [ "$(basename "$f")" = ha_example.so ] || cp -P "$f" "$ROOTFS$lean/"
  done
  server_start prov-donor "$DONOR" "$(plugin_dir "$dp")" --plugin-load-add=mysql_clone.so
  sql "$DONOR" "INSTALL PLUGIN EXAMPLE SONAME 'ha_example.so'"
  server_init prov-recipient
  server_start prov-recipient "$RECIPIENT" "$lean" --plugin-load-add=mysql_clone.so
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'"
  dest=$(server_dir prov-cloned)/data
  rm -rf "$ROOTFS$(server_dir prov-cloned)"; mkdir -p "$ROOTFS$(server_dir prov-cloned)"/{files,tmp}
  check "exclusions <- $dp: a plugin missing here refuses the clone" "3870" "$(errno_of "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")"
  sql "$RECIPIENT" "SET GLOBAL clone_exclude_plugins_list = 'example'"
  out=$(dry "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")
  check "exclusions <- $dp: the dry run passes and names the plugin it did not check" "0 1" \
    "$(errno_in "$out") $(grep -c 'plugin EXAMPLE is not active here and not needed' <<<"$out")"
  check "exclusions <- $dp: the clone succeeds" "0" "$(errno_of "$RECIPIENT" "$CLONE_FROM DATA DIRECTORY = '$dest'")"
  server_start prov-cloned "$CLONED" "$lean" --plugin-load-add=mysql_clone.so
  check "exclusions <- $dp: checksums" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$CLONED" "$STATIC_TABLES")"
  sql "$DONOR" "UNINSTALL PLUGIN EXAMPLE"
  server_stop prov-cloned; server_stop prov-recipient; server_stop prov-donor
  rm -rf "$ROOTFS$lean"
}

scenario exclude_plugins && exclude_plugins ours
scenario exclude_plugins && exclude_plugins stock

# watch: clone-watch follows an in-place clone (slowed down so that it has
# something to show) through the recipient's restart to its summary.
watch_clone() {
  local out=$ROOTFS/tmp/clone-watch.out watch rc
  server_start prov-donor "$DONOR" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  server_init prov-recipient
  server_start_supervised prov-recipient "$RECIPIENT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR', clone_max_data_bandwidth=48"
  "$REPO/target/release/clone-watch" --mysql "chroot $ROOTFS mysql" -h 127.0.0.1 -P "$RECIPIENT" -u root --interval 0.3 >"$out" 2>&1 &
  watch=$!
  check "clone-watch: the in-place clone succeeds" "0" "$(errno_of "$RECIPIENT" "$CLONE_FROM")"
  wait_until 120 0.5 -- pid_gone "$watch"
  kill "$watch" 2>/dev/null
  wait "$watch"; rc=$?
  log "clone-watch printed:"; sed 's/^/    /' "$out" >&2
  check "clone-watch: ends with the clone, exit status 0" "0" "$rc"
  check "clone-watch: showed the file copy moving (percent, MiB/s, ETA)" "1" \
    "$(grep -cE '^  FILE COPY +In Progress +[0-9.]+%.* MiB/s +ETA [0-9:]+' "$out" | awk '{print ($1 > 0)}')"
  check "clone-watch: waited through the restart" "1" "$(grep -c 'waiting for the server to answer again' "$out" | awk '{print ($1 > 0)}')"
  check "clone-watch: no client error line in the view while the server restarts" "0" "$(grep -c '^ERROR [0-9]' "$out")"
  check "clone-watch: the summary, with the donor's binary log position" "2" \
    "$(grep -cE "^Completed in [0-9:]+$|^  donor's binary log position: binlog[.][0-9]+:[0-9]+$" "$out")"
  server_wait prov-recipient "$RECIPIENT"
  check "clone-watch: the clone's checksums" "$(checksums "$DONOR" "$STATIC_TABLES")" "$(checksums "$RECIPIENT" "$STATIC_TABLES")"
  local json
  json=$("$REPO/target/release/clone-watch" --mysql "chroot $ROOTFS mysql" -P "$RECIPIENT" --last --json 2>/dev/null); rc=$?
  check "clone-watch --last --json: exit status 0, and the outcome as its last line" "0 completed" \
    "$rc $(tail -1 <<<"$json" | grep -o '"outcome":"[a-z_]*"' | cut -d'"' -f4)"
  "$REPO/target/release/clone-watch" --no-such-option >/dev/null 2>&1; rc=$?
  check "clone-watch: a bad argument exits 2" "2" "$rc"
  server_stop prov-recipient; server_stop prov-donor
}

scenario watch && watch_clone

report test-provisioning
