#!/usr/bin/env bash
# Integration tests of CLONE LOCAL against a real mysqld 9.7.4 with our
# plugin: data verified by checksums on a server started on the clone, the
# stock errors, KILL, UNINSTALL, status across a restart, and a clone by
# shared extents on XFS (a loop device this script makes and removes).
# Prints one line per check and closes with "N passed, N failed".
# ONLY=<regex> runs the scenarios it matches (snapshot, kill, option_file,
# shared_extents) after the common checks.
set -uo pipefail
LOG_TAG=test-local
. "$(dirname "$0")/common.sh"
SERVERS=local

PORT=${PORT_BASE:-13400}
CLONE_PORT=$((PORT + 1))
ROWS_MB=${TEST_DATA_MB:-300}

XFS_IMG=$CACHE/local-xfs.img
XFS_MNT=$ROOTFS/clone-rs/local-xfs
SCRIPT_SERVERS=(donor cloned xfs/srv xfs/cloned)
cleanup() {
  stop_script_servers
  mountpoint -q "$XFS_MNT" && umount "$XFS_MNT"
  rm -f "$XFS_IMG"
}
trap cleanup EXIT

build_plugin
install_our_plugin

log "donor with ~${ROWS_MB} MB in several tables"
server_init donor
server_start donor "$PORT" "$OUR_PLUGIN_DIR"
sql "$PORT" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'" || fail "INSTALL PLUGIN"
bash "$REPO/ci/gen-data.sh" "$PORT" "$ROWS_MB" || fail "data generation"

check "plugin is ACTIVE as 'clone'" "ACTIVE" "$(sql "$PORT" "SELECT plugin_status FROM information_schema.plugins WHERE plugin_name='clone'")"
check "the 14 stock clone_* variables, and ours: clone_dry_run, clone_exclude_plugins_list, clone_stage_in_place" "14 3" \
  "$(sql "$PORT" "SELECT SUM(variable_name NOT IN ('clone_dry_run', 'clone_exclude_plugins_list', 'clone_stage_in_place')), SUM(variable_name IN ('clone_dry_run', 'clone_exclude_plugins_list', 'clone_stage_in_place'))
    FROM performance_schema.global_variables WHERE variable_name LIKE 'clone\_%'" | tr '\t' ' ')"
check "malformed clone_valid_donor_list refused (3869)" "3869" "$(errno_of "$PORT" "SET GLOBAL clone_valid_donor_list='host1:3306, host2:3306'")"
check "empty clone_valid_donor_list refused (3869)" "3869" "$(errno_of "$PORT" "SET GLOBAL clone_valid_donor_list=''")"
check "well-formed clone_valid_donor_list accepted" "0" "$(errno_of "$PORT" "SET GLOBAL clone_valid_donor_list='Host1:3306,127.0.0.1:13000'")"
check "clone_valid_donor_list reads back" "Host1:3306,127.0.0.1:13000" "$(sql "$PORT" "SELECT @@clone_valid_donor_list")"
check "clone_max_concurrency clamps to 128" "128" "$(sql "$PORT" "SET GLOBAL clone_max_concurrency=1000; SELECT @@clone_max_concurrency")"
sql "$PORT" "SET GLOBAL clone_max_concurrency=DEFAULT, clone_valid_donor_list=DEFAULT"

check "relative path refused (1525)" "1525" "$(errno_of "$PORT" "CLONE LOCAL DATA DIRECTORY = 'relative/dir'")"
check "existing directory refused (1007)" "1007" "$(errno_of "$PORT" "CLONE LOCAL DATA DIRECTORY = '$(server_dir donor)/files'")"
check "directory inside the datadir refused (3632)" "3632" "$(errno_of "$PORT" "CLONE LOCAL DATA DIRECTORY = '$(server_dir donor)/data/sub'")"

# Scenario snapshot: a clone under concurrent inserts, started as a server.
if scenario snapshot; then
  # Clone while a writer inserts; the clone must be a consistent snapshot.
  log "cloning under concurrent inserts"
  sql "$PORT" "CREATE TABLE IF NOT EXISTS bench.live (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))"
  ( for i in $(seq 1 100000); do
      sql "$PORT" "INSERT INTO bench.live(v) VALUES (UUID()),(UUID()),(UUID()),(UUID())" 2>/dev/null || break
      [ -e "$ROOTFS$(server_dir donor)/stop-writer" ] && break
    done ) &
  writer=$!
  live_has_rows() { [ "$(sql "$PORT" "SELECT COUNT(*) > 0 FROM bench.live")" = 1 ]; }
  wait_until 10 0.1 -- live_has_rows
  before_clone=$(sql "$PORT" "SELECT COALESCE(MAX(id), 0) FROM bench.live")
  dest=$(server_dir cloned)/data
  rm -rf "$ROOTFS$(server_dir cloned)"; mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
  t0=$(date +%s.%N)
  out=$(sql "$PORT" "SET GLOBAL clone_autotune_concurrency=OFF; SET GLOBAL clone_max_concurrency=4; CLONE LOCAL DATA DIRECTORY = '$dest'" 2>&1)
  check "CLONE LOCAL succeeds" "" "$out"
  t1=$(date +%s.%N)
  touch "$ROOTFS$(server_dir donor)/stop-writer"; wait "$writer"; rm -f "$ROOTFS$(server_dir donor)/stop-writer"
  log "clone took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"

  check "clone_status Completed" "Completed	0" "$(sql "$PORT" "SELECT state, error_no FROM performance_schema.clone_status")"
  check "buffers counted under memory/clone/data, all freed" "1	0" "$(sql "$PORT" "SELECT count_alloc > 0 AND count_alloc = count_free,
    current_number_of_bytes_used FROM performance_schema.memory_summary_global_by_event_name WHERE event_name = 'memory/clone/data'")"
  check "clone_status source/destination" "LOCAL INSTANCE	$dest/" "$(sql "$PORT" "SELECT source, destination FROM performance_schema.clone_status")"
  check "clone_progress stages" "DROP DATA Completed,FILE COPY Completed,PAGE COPY Completed,REDO COPY Completed,FILE SYNC Completed,RESTART Not Started,RECOVERY Not Started" \
    "$(sql "$PORT" "SELECT CONCAT(stage,' ',state) FROM performance_schema.clone_progress" | paste -sd, -)"
  check "FILE COPY moved data" "1" "$(sql "$PORT" "SELECT data > 0 AND data <= estimate * 2 FROM performance_schema.clone_progress WHERE stage='FILE COPY'")"
  check "threads used" "4" "$(sql "$PORT" "SELECT MAX(threads) FROM performance_schema.clone_progress")"

  log "starting a server on the clone"
  server_start cloned "$CLONE_PORT" "$OUR_PLUGIN_DIR"
  check "checksums of static tables match" "$(checksums "$PORT" "$STATIC_TABLES")" "$(checksums "$CLONE_PORT" "$STATIC_TABLES")"
  max=$(sql "$CLONE_PORT" "SELECT COALESCE(MAX(id),0) FROM bench.live")
  q="SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id,v))),0) FROM bench.live WHERE id <= $max"
  check "live table is a consistent snapshot (ids <= $max)" "$(sql "$PORT" "$q")" "$(sql "$CLONE_PORT" "$q")"
  check "clone has rows written after the clone began" "1" "$(sql "$CLONE_PORT" "SELECT MAX(id) > $before_clone FROM bench.live")"
  check "clone's clone_status after recovery" "Completed	0" "$(sql "$CLONE_PORT" "SELECT state, error_no FROM performance_schema.clone_status")"
  server_stop cloned
fi

# Scenario kill: KILL and concurrency, then the status across a restart.
if scenario kill; then
  # Second clone while one runs, UNINSTALL while it runs, KILL QUERY mid-copy.
  log "KILL QUERY and concurrency checks on a throttled clone"
  slow=$(server_dir donor)/files/slow
  sql "$PORT" "SET GLOBAL clone_max_data_bandwidth=8, clone_max_concurrency=1"
  ( sql "$PORT" "CLONE LOCAL DATA DIRECTORY = '$slow'" >"$ROOTFS$(server_dir donor)/slow.out" 2>&1 ) &
  cl=$!
  in_file_copy() { [ "$(sql "$PORT" "SELECT stage FROM performance_schema.clone_progress WHERE state = 'In Progress'")" = "FILE COPY" ]; }
  wait_until 10 0.1 -- in_file_copy
  check "second concurrent clone refused (3634)" "3634" "$(errno_of "$PORT" "CLONE LOCAL DATA DIRECTORY = '$(server_dir donor)/files/other'")"
  check "UNINSTALL refused while cloning (1883)" "1883" "$(errno_of "$PORT" "UNINSTALL PLUGIN clone")"
  id=$(sql "$PORT" "SELECT pid FROM performance_schema.clone_status")
  sql "$PORT" "KILL QUERY $id"
  wait "$cl"
  check "killed clone fails with 1317" "1" "$(grep -c '^ERROR 1317' "$ROOTFS$(server_dir donor)/slow.out")"
  # As with the stock plugin, the partial copy stays for the DBA to look at.
  check "killed clone leaves its partial directory" "present" "$([ -e "$ROOTFS$slow" ] && echo present || echo absent)"
  rm -rf "${ROOTFS:?}$slow"
  check "clone_status Failed 1317" "Failed	1317" "$(sql "$PORT" "SELECT state, error_no FROM performance_schema.clone_status")"
  sql "$PORT" "SET GLOBAL clone_max_data_bandwidth=DEFAULT, clone_max_concurrency=DEFAULT"

  log "status after a restart"
  server_stop donor
  server_start donor "$PORT" "$OUR_PLUGIN_DIR"
  # A DATA DIRECTORY clone's status is kept inside the clone (checked above)
  # and, unlike with the stock plugin, by the server that ran it.
  check "the last clone (killed) is remembered across the restart" "Failed	1317	$slow/" \
    "$(sql "$PORT" "SELECT state, error_no, destination FROM performance_schema.clone_status")"
  check "UNINSTALL PLUGIN" "0" "$(errno_of "$PORT" "UNINSTALL PLUGIN clone")"
  check "CLONE without plugin (1524)" "1524" "$(errno_of "$PORT" "CLONE LOCAL DATA DIRECTORY = '$(server_dir donor)/files/x'")"
  server_stop donor
fi

# Scenario option_file: plugin-load-add and FORCE_PLUS_PERMANENT.
if scenario option_file; then
  log "plugin-load-add in a config file and --clone=FORCE_PLUS_PERMANENT"
  server_stop donor
  printf '[mysqld]\nplugin-load-add=mysql_clone.so\nclone=FORCE_PLUS_PERMANENT\nclone_max_concurrency=7\n' \
    >"$ROOTFS$(server_dir donor)/my.cnf"
  MYSQLD_CNF=$(server_dir donor)/my.cnf server_start donor "$PORT" "$OUR_PLUGIN_DIR"
  check "option file sets clone_max_concurrency" "7" "$(sql "$PORT" "SELECT @@clone_max_concurrency")"
  check "loaded FORCE_PLUS_PERMANENT" "ACTIVE	FORCE_PLUS_PERMANENT" "$(sql "$PORT" "SELECT plugin_status, load_option FROM information_schema.plugins WHERE plugin_name='clone'")"
  check "UNINSTALL of FORCE_PLUS_PERMANENT refused (1702)" "1702" "$(errno_of "$PORT" "UNINSTALL PLUGIN clone")"
  server_stop donor
fi

# Scenario shared_extents: on XFS (reflink=1, mkfs.xfs's default) a clone
# into the same file system shares the source's extents; under a writer it
# is still a consistent clone.
if scenario shared_extents; then
  log "CLONE LOCAL on XFS, sharing extents, under concurrent inserts"
  command -v mkfs.xfs >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xfsprogs >/dev/null 2>&1 || fail "cannot install xfsprogs"
  mkdir -p "$XFS_MNT"
  mountpoint -q "$XFS_MNT" && umount "$XFS_MNT"
  truncate -s 0 "$XFS_IMG" && truncate -s 2G "$XFS_IMG"
  mkfs.xfs -q -f -m reflink=1 "$XFS_IMG" || fail "mkfs.xfs"
  mount -o loop "$XFS_IMG" "$XFS_MNT" || fail "mount the XFS file system"
  XPORT=$((PORT + 2)) XCLONED=$((PORT + 3))
  server_init xfs/srv
  server_start xfs/srv "$XPORT" "$OUR_PLUGIN_DIR" --plugin-load-add=mysql_clone.so
  bash "$REPO/ci/gen-data.sh" "$XPORT" 200 || fail "data generation"
  sql "$XPORT" "CREATE TABLE bench.live (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))"
  stop=$ROOTFS$(server_dir xfs/srv)/stop-writer
  ( while [ ! -e "$stop" ]; do sql "$XPORT" "INSERT INTO bench.live(v) VALUES (UUID()),(UUID()),(UUID()),(UUID())" 2>/dev/null || break; done ) &
  writer=$!
  xfs_live_has_rows() { [ "$(sql "$XPORT" "SELECT COUNT(*) > 0 FROM bench.live")" = 1 ]; }
  wait_until 10 0.1 -- xfs_live_has_rows
  sync
  data_kib=$(du -sk "$ROOTFS$(server_dir xfs/srv)/data" | cut -f1)
  used0=$(df -k --output=used "$XFS_MNT" | tail -1)
  dest=$(server_dir xfs/cloned)/data
  mkdir -p "$ROOTFS$(server_dir xfs/cloned)"/{files,tmp}
  t0=$(date +%s.%N)
  check "XFS: CLONE LOCAL succeeds" "" "$(sql "$XPORT" "CLONE LOCAL DATA DIRECTORY = '$dest'" 2>&1)"
  t1=$(date +%s.%N)
  touch "$stop"; wait "$writer"
  sync
  used1=$(df -k --output=used "$XFS_MNT" | tail -1)
  log "XFS: $((data_kib / 1024)) MiB of data cloned in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; the file system's use grew by $(((used1 - used0) / 1024)) MiB"
  check "XFS: the clone's tablespaces share the source's extents" "yes" \
    "$(filefrag -v "$ROOTFS$dest/bench/t1.ibd" | grep -q shared && echo yes || echo no)"
  check "XFS: the copy took at most 5 % of the data in new space" "yes" \
    "$([ $((used1 - used0)) -le $((data_kib / 20)) ] && echo yes || echo "no: $(((used1 - used0) / 1024)) MiB for $((data_kib / 1024)) MiB")"
  server_start xfs/cloned "$XCLONED" "$OUR_PLUGIN_DIR"
  check "XFS: checksums of static tables match" "$(checksums "$XPORT" "$STATIC_TABLES")" "$(checksums "$XCLONED" "$STATIC_TABLES")"
  max=$(sql "$XCLONED" "SELECT COALESCE(MAX(id),0) FROM bench.live")
  q="SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id,v))),0) FROM bench.live WHERE id <= $max"
  check "XFS: the live table is a consistent snapshot (ids <= $max)" "$(sql "$XPORT" "$q")" "$(sql "$XCLONED" "$q")"
  check "XFS: CHECK TABLE on the clone finds nothing" "" \
    "$(sql "$XCLONED" "CHECK TABLE bench.t1, bench.t2, bench.wide, bench.live" | awk '$3 != "status" || $4 != "OK"')"
  server_stop xfs/cloned
  server_stop xfs/srv
fi

report test-local
