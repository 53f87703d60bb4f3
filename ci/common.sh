# Shared shell helpers for the scripts in ci/: MySQL servers on 127.0.0.1,
# run from the sid root filesystem that ci/setup-env.sh builds. Source it.
# Servers live under $ROOTFS/clone-rs/<name>/ (seen as /clone-rs/<name> from
# inside the chroot); each is started and stopped by PID.

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CACHE=${CLONE_RS_CACHE:-$REPO/.cache}
ROOTFS=$CACHE/rootfs
# Plugin directories inside the chroot: the stock one, and a copy in which
# mysql_clone.so is ours (every other plugin linked from the stock one).
STOCK_PLUGIN_DIR=${STOCK_PLUGIN_DIR:-/usr/lib/mysql/plugin}
OUR_PLUGIN_DIR=/opt/clone-rs/plugin
PLUGIN_SO=$REPO/target/release/libmysql_clone.so

# scenario NAME: whether to run the scenario NAME (ONLY, if set, is an
# extended regular expression over scenario names: ONLY=clone_into).
scenario() { [ -z "${ONLY:-}" ] || [[ $1 =~ $ONLY ]]; }
log() { printf '[%s] %s\n' "${LOG_TAG:-ci}" "$*" >&2; }
fail() { printf '[%s] FAILED: %s\n' "${LOG_TAG:-ci}" "$*" >&2; exit 1; }

# wait_until [--clock] SECONDS [INTERVAL] -- CMD [ARGS...]: polls CMD until
# it succeeds, sleeping INTERVAL seconds (0.1 if not given; fractions are
# fine) after each failure; returns 0 once CMD succeeds, 1 once the time is
# up, and leaves the verdict to the caller (under set -e, `|| true` where
# the time running out is no failure). The time is counted in tries:
# SECONDS / INTERVAL of them (at least one), each failed one followed by
# its sleep, so the time CMD itself takes comes on top. With --clock it is
# wall time instead (bash's $SECONDS, in whole seconds): CMD runs at least
# once, and for the last time once SECONDS have passed, with no sleep after.
# CMD runs in this shell (a function may set its caller's variables), its
# words expanded once, at the call: a condition with a $(...) to evaluate
# at every try goes in a small function.
wait_until() {
  local _wu_clock=0 _wu_limit _wu_interval=0.1 _wu_start=$SECONDS _wu_tries _wu_try
  if [ "$1" = --clock ]; then _wu_clock=1; shift; fi
  _wu_limit=$1; shift
  if [ "$1" != -- ]; then _wu_interval=$1; shift; fi
  [ "$1" = -- ] || fail "wait_until: no -- before the command"
  shift
  if [ "$_wu_clock" = 1 ]; then
    while :; do
      "$@" && return 0
      [ $((SECONDS - _wu_start)) -ge "$_wu_limit" ] && return 1
      sleep "$_wu_interval"
    done
  fi
  _wu_tries=$(awk -v s="$_wu_limit" -v i="$_wu_interval" 'BEGIN { n = int(s / i + 0.5); print (n < 1 ? 1 : n) }')
  for ((_wu_try = 0; _wu_try < _wu_tries; _wu_try++)); do
    "$@" && return 0
    sleep "$_wu_interval"
  done
  return 1
}

# pid_gone PID: whether no process PID is left (true for an empty PID).
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# in_root CMD...: runs CMD in the root filesystem (in network namespace
# $NETNS if set: the servers and clients of a rate-limited link).
in_root() {
  if [ -n "${NETNS:-}" ]; then ip netns exec "$NETNS" chroot "$ROOTFS" "$@"; else chroot "$ROOTFS" "$@"; fi
}

# Builds the plugin (release) unless SKIP_BUILD=1.
build_plugin() {
  [ "${SKIP_BUILD:-0}" = 1 ] && return 0
  log "building the plugin (cargo build --release)"
  (cd "$REPO" && cargo build --release --workspace --quiet) || fail "cargo build"
}

# Lays out $OUR_PLUGIN_DIR with our mysql_clone.so.
install_our_plugin() {
  [ -f "$PLUGIN_SO" ] || fail "no $PLUGIN_SO: build the plugin first"
  local dir=$ROOTFS$OUR_PLUGIN_DIR f
  mkdir -p "$dir"
  for f in "$ROOTFS$STOCK_PLUGIN_DIR"/*; do
    case $(basename "$f") in mysql_clone.so|mysql_clone_stock.so) continue ;; esac
    ln -sfn "$STOCK_PLUGIN_DIR/$(basename "$f")" "$dir/$(basename "$f")"
  done
  cp "$PLUGIN_SO" "$dir/mysql_clone.so.new" && mv "$dir/mysql_clone.so.new" "$dir/mysql_clone.so"
}

# server_dir NAME: a server's directory inside the chroot. A script that
# sets SERVERS before starting any gets names of its own (SERVERS-NAME), so
# that it can run next to another; one that sets SERVER_ROOT puts them
# under that directory (of the chroot) instead of /clone-rs.
server_dir() { echo "${SERVER_ROOT:-/clone-rs}/${SERVERS:+$SERVERS-}$1"; }

# servers_in_memory: the servers started from here on live on a tmpfs
# (SERVER_ROOT), which takes the disk out of what a script measures; the
# script's exit trap calls servers_in_memory_end.
servers_in_memory() {
  SERVER_ROOT=/clone-rs-memory
  mkdir -p "$ROOTFS$SERVER_ROOT"
  mount -t tmpfs -o size=12g clone-rs-memory "$ROOTFS$SERVER_ROOT"
}
servers_in_memory_end() {
  if [ -n "${SERVER_ROOT:-}" ] && mountpoint -q "$ROOTFS$SERVER_ROOT"; then umount "$ROOTFS$SERVER_ROOT"; fi
}

# servers_on_cow FS: the servers started from here on live on a file system
# FS (xfs, with reflink: mkfs.xfs's default; or btrfs) that shares extents,
# an 8 GiB sparse image on a loop device (its mkfs is installed if missing);
# the script's exit trap calls servers_on_cow_end, which unmounts it and
# removes the image.
COW_IMAGE=$CACHE/servers-cow.img
servers_on_cow() {
  local fs=$1 package
  case $fs in
    xfs) package=xfsprogs ;;
    btrfs) package=btrfs-progs ;;
    *) fail "servers_on_cow: no $fs" ;;
  esac
  command -v "mkfs.$fs" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 || fail "cannot install $package"
  SERVER_ROOT=/clone-rs-$fs
  mkdir -p "$ROOTFS$SERVER_ROOT"
  truncate -s 0 "$COW_IMAGE" && truncate -s 8G "$COW_IMAGE"
  case $fs in
    xfs) mkfs.xfs -q -f -m reflink=1 "$COW_IMAGE" || fail "mkfs.xfs" ;;
    btrfs) mkfs.btrfs -q -f "$COW_IMAGE" >/dev/null || fail "mkfs.btrfs" ;;
  esac
  mount -o loop "$COW_IMAGE" "$ROOTFS$SERVER_ROOT" || fail "mount the $fs image"
}
servers_on_cow_end() {
  servers_in_memory_end
  rm -f "$COW_IMAGE"
}

# SCRIPT_SERVERS: the table of a script's servers, by name, that the script
# declares before it starts any, e.g. SCRIPT_SERVERS=(donor recipient): its
# exit trap calls stop_script_servers, which stops each in that order by
# PID (server_stop: one never started, or already stopped, is skipped).
# server_start refuses a name the table lacks, which the trap would leave
# running.
stop_script_servers() {
  local name
  for name in ${SCRIPT_SERVERS[@]+"${SCRIPT_SERVERS[@]}"}; do server_stop "$name"; done
}
# in_script_servers NAME: whether NAME is in SCRIPT_SERVERS (or the script
# has no table).
in_script_servers() {
  local name
  [ -n "${SCRIPT_SERVERS+set}" ] || return 0
  for name in "${SCRIPT_SERVERS[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

# server_pid NAME: the PID of the running mysqld NAME.
server_pid() { cat "$ROOTFS$(server_dir "$1")/mysqld.pid"; }

# make_bench_donor PORT MB [text|random]: the benchmark's donor, server
# "bench": ~MB of generated rows (schema bench, ci/gen-data.sh) and the
# account bench / Bench-1234 that clones from it.
make_bench_donor() {
  log "generating ~$2 MB of ${3:-text} data"
  server_init bench
  server_start bench "$1" "$STOCK_PLUGIN_DIR" --disable-log-bin
  bash "$REPO/ci/gen-data.sh" "$1" "$2" "${3:-text}"
  sql "$1" "CREATE USER bench IDENTIFIED BY 'Bench-1234'; GRANT BACKUP_ADMIN ON *.* TO bench"
  server_stop bench
}

# plugin_dir ours|stock: the plugin directory (inside the chroot) to load
# that clone plugin from.
plugin_dir() { [ "$1" = stock ] && echo "$STOCK_PLUGIN_DIR" || echo "$OUR_PLUGIN_DIR"; }

# The tables ci/gen-data.sh writes: nothing changes them during a clone.
STATIC_TABLES="bench.t1,bench.t2,bench.t3,bench.t4,bench.wide"

# gtid_count SET: the number of transactions in a GTID set.
gtid_count() {
  tr -d ' \n' <<<"$1" | tr ',' '\n' |
    awk -F: '{ for (i = 2; i <= NF; i++) { n = split($i, r, "-"); s += (n == 2 ? r[2] - r[1] + 1 : 1) } } END { print s + 0 }'
}

# has_gtids PORT SET: whether the server at PORT has executed every
# transaction of the GTID set SET (a replica caught up to SET).
has_gtids() { [ "$(sql "$1" "SELECT GTID_SUBSET('$2', @@global.gtid_executed)")" = 1 ]; }

# server_init NAME: a fresh, empty data directory.
server_init() {
  local d; d=$(server_dir "$1")
  rm -rf "$ROOTFS$d"
  mkdir -p "$ROOTFS$d/files" "$ROOTFS$d/tmp"
  in_root /usr/sbin/mysqld --no-defaults --initialize-insecure --user=root \
    --datadir="$d/data" --log-error="$d/init.log" || fail "mysqld --initialize for $1 (see $ROOTFS$d/init.log)"
}

# server_start NAME PORT PLUGIN_DIR [mysqld options...]: starts mysqld on
# 127.0.0.1:PORT in the background and waits until it answers. With
# MYSQLD_CNF set (a path inside the chroot) the server reads that file.
server_start() {
  local name=$1 port=$2 plugdir=$3; shift 3
  local d; d=$(server_dir "$name")
  in_script_servers "$name" || fail "server $name is not in SCRIPT_SERVERS (the exit trap would leave it running)"
  [ -d "$ROOTFS$d/data" ] || fail "server $name has no data directory"
  port_free "$port"
  local defaults=--no-defaults
  [ -n "${MYSQLD_CNF:-}" ] && defaults=--defaults-file=$MYSQLD_CNF
  in_root /usr/sbin/mysqld "$defaults" --user=root --datadir="$d/data" \
    --port="$port" --bind-address=127.0.0.1 --socket="$d/mysql.sock" --mysqlx=OFF \
    --log-error="$d/error.log" --pid-file="$d/mysqld.pid" --server-id="$port" \
    --secure-file-priv="$d/files" --tmpdir="$d/tmp" --plugin-dir="$plugdir" \
    --log-error-verbosity=3 "$@" >/dev/null 2>&1 &
  echo $! >"$ROOTFS$d/supervised.pid"
  server_wait "$name" "$port"
}

# server_start_supervised NAME PORT PLUGIN_DIR [mysqld options...]: like
# server_start, under a supervisor that starts mysqld again when it exits
# with status 16 (the restart an in-place clone asks for). mysqld finds its
# supervisor through MYSQLD_PARENT_PID, which must be its parent's PID (ip
# netns exec and chroot exec mysqld in the same process). With NETNS set,
# in that network namespace, as in_root.
server_start_supervised() {
  local name=$1 port=$2 plugdir=$3; shift 3
  local d; d=$(server_dir "$name")
  in_script_servers "$name" || fail "server $name is not in SCRIPT_SERVERS (the exit trap would leave it running)"
  [ -d "$ROOTFS$d/data" ] || fail "server $name has no data directory"
  port_free "$port"
  (
    set +e # mysqld's status is the point here, not an error
    while :; do
      MYSQLD_PARENT_PID=$BASHPID ${NETNS:+ip netns exec "$NETNS"} chroot "$ROOTFS" /usr/sbin/mysqld --no-defaults --user=root --datadir="$d/data" \
        --port="$port" --bind-address=127.0.0.1 --socket="$d/mysql.sock" --mysqlx=OFF \
        --log-error="$d/error.log" --pid-file="$d/mysqld.pid" --server-id="$port" \
        --secure-file-priv="$d/files" --tmpdir="$d/tmp" --plugin-dir="$plugdir" \
        --log-error-verbosity=3 "$@" >/dev/null 2>&1
      status=$?
      echo "$status" >>"$ROOTFS$d/exit-codes"
      [ "$status" = 16 ] || break
    done
  ) &
  echo $! >"$ROOTFS$d/supervisor.pid"
  server_wait "$name" "$port"
}

# server_answers PORT: whether a server answers on PORT (mysqladmin ping).
server_answers() { in_root mysqladmin -uroot -h127.0.0.1 -P"$1" --connect-timeout=2 ping >/dev/null 2>&1; }

# port_free PORT: fails if a server already answers there (a test would
# otherwise talk to it, not to the server it starts).
port_free() {
  if server_answers "$1"; then
    fail "a server already answers on port $1"
  fi
}

# server_wait NAME PORT: waits up to 60 s for the server to answer; fails
# the script if it does not, or with SOFT_WAIT=1 returns 1.
server_wait() {
  wait_until 60 0.5 -- server_answers "$2" && return 0
  tail -20 "$ROOTFS$(server_dir "$1")/error.log" >&2
  [ "${SOFT_WAIT:-0}" = 1 ] && { log "server $1 did not come up on port $2"; return 1; }
  fail "server $1 did not come up on port $2"
}

# server_stop NAME: stops the server by PID and waits for it to exit.
server_stop() {
  local d pidf pid
  d=$ROOTFS$(server_dir "$1")
  pidf=$d/mysqld.pid
  [ -f "$pidf" ] || pidf=$d/supervised.pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait_until 60 0.5 -- pid_gone "$pid" || true
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$d/mysqld.pid" "$d/supervised.pid"
  # A supervisor ends by itself once its mysqld stopped without status 16.
  if [ -f "$d/supervisor.pid" ]; then
    pid=$(cat "$d/supervisor.pid")
    wait_until 10 0.5 -- pid_gone "$pid" || true
    kill "$pid" 2>/dev/null || true
    rm -f "$d/supervisor.pid"
  fi
}

# remove_stopped_servers: removes the server directories under
# $ROOTFS/clone-rs that no running server or supervisor uses (by the PID
# files there) and that are no mount point. ci/test.sh calls it after each
# suite, so that the disk holds one suite's servers at a time.
remove_stopped_servers() {
  local d f live
  for d in "$ROOTFS"/clone-rs/*/; do
    d=${d%/}
    [ -d "$d" ] || continue
    if mountpoint -q "$d"; then log "kept $d: still mounted"; continue; fi
    live=
    for f in "$d/mysqld.pid" "$d/supervised.pid" "$d/supervisor.pid"; do
      [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && live=$f
    done
    if [ -n "$live" ]; then log "kept $d: its server still runs ($live)"; continue; fi
    rm -rf "$d"
  done
}

# disk_free: the space left on the file system of the cache, as df -h says it.
disk_free() { df -h --output=avail "$CACHE" | tail -1 | tr -d ' '; }

# sql PORT QUERY...: runs statements, prints tab-separated rows without headers.
sql() {
  local port=$1; shift
  in_root mysql -uroot -h127.0.0.1 -P"$port" -N -B -e "$*"
}

# checksums PORT [TABLES]: "db.table checksum" lines, sorted, for TABLES (a
# list as CHECKSUM TABLE takes it: STATIC_TABLES, "app.victim") or, without
# it, for every base table of the user schemas.
checksums() {
  local port=$1 tables=${2:-}
  [ -n "$tables" ] || tables=$(sql "$port" "SELECT CONCAT('\`',table_schema,'\`.\`',table_name,'\`') FROM information_schema.tables
    WHERE table_type='BASE TABLE' AND table_schema NOT IN ('mysql','sys','performance_schema','information_schema')
    ORDER BY table_schema, table_name" | paste -sd, -)
  [ -n "$tables" ] && sql "$port" "CHECKSUM TABLE $tables" | sort
}

# proxy_listening PORT: waits (5 s at most) until ci/proxy.py accepts on PORT;
# returns 1 if it does not.
proxy_listening() { wait_until 5 0.1 -- port_accepts "$1"; }
port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# donor_clones PORT: the sessions of server PORT serving a clone as its
# donor (master, workers, auxiliary; a master waiting for its recipient to
# reconnect is one of them).
donor_clones() { sql "$1" "SELECT COUNT(*) FROM information_schema.processlist WHERE LOWER(command) = 'clone'"; }

# wait_donor_idle PORT [SECONDS]: waits until the donor on PORT serves no
# clone, and prints how many of its sessions still do (0 once it let go).
# A donor keeps a clone whose connections were cut for
# clone_donor_timeout_after_network_failure minutes, as read when it
# notices: a scenario that cuts or kills a recipient and clones again sets
# that to 0 first. SECONDS (60) bounds a donor that never lets go.
wait_donor_idle() {
  local port=$1 limit=${2:-60} n
  wait_until --clock "$limit" 0.1 -- donor_idle "$port" || true
  echo "${n:-no answer}"
}
# donor_idle PORT: whether the donor serves no clone, its count in n (of
# wait_donor_idle).
donor_idle() { n=$(donor_clones "$1" 2>/dev/null); [ "$n" = 0 ]; }

# unallocated_doublewrite NAME: the doublewrite files of server NAME with
# blocks left unallocated ("file size blocks-allocated-in-bytes"), none if
# all are written through: InnoDB counts on that under O_DIRECT.
unallocated_doublewrite() {
  local f
  for f in "$ROOTFS$(server_dir "$1")"/data/#ib_*.dblwr "$ROOTFS$(server_dir "$1")"/data/#ib_*.bdblwr; do
    [ -f "$f" ] && stat -c '%n %s %b %B' "$f"
  done | awk '$3 * $4 < $2 { print $1, $2, $3 * $4 }'
}

# unwritten_extents DIR: the InnoDB files under DIR (of the host) that have
# unwritten extents, with their count: none where every block was written.
unwritten_extents() {
  local f n
  find "$1" -type f \( -name '*.ibd' -o -name 'ibdata*' -o -name 'undo_*' -o -name '*.ibu' \) | sort | while read -r f; do
    n=$(filefrag -v "$f" 2>/dev/null | grep -c unwritten)
    [ "$n" = 0 ] || echo "$(basename "$f"):$n"
  done
}

# Test helpers: `check NAME EXPECTED ACTUAL` counts and prints one result
# (and fails when it is a failure);
# `errno_of PORT SQL` prints the error number a statement fails with (0 if
# it succeeds); `report NAME` prints the closing "N passed, N failed" line
# and returns non-zero if anything failed.
passed=0 failed=0
check() {
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1)); printf 'ok   %s\n' "$1"
  else
    failed=$((failed + 1)); printf 'FAIL %s\n     expected: %s\n     actual:   %s\n' "$1" "$2" "$3"
    return 1
  fi
}
errno_of() {
  local out
  out=$(sql "$1" "$2" 2>&1) && { echo 0; return; }
  sed -n 's/^ERROR \([0-9]*\).*/\1/p' <<<"$out" | head -1
}
report() {
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}
