#!/usr/bin/env bash
# Tests of the Debian package that ci/package.sh builds, on real mysqld
# 9.7.4 servers: dpkg -i diverts the stock plugin and puts ours at its path;
# servers load ours from the stock plugin directory and clone between them
# (verified by checksums on a server started on the clone); an upgrade
# under running servers; dpkg -r gives the stock plugin back byte for byte;
# dpkg --purge leaves nothing. Closes with "test-package: N passed, N failed".
#
# dpkg runs in the root filesystem of ci/setup-env.sh seen through an
# overlay (PACKAGE_TEST_ROOT=overlay, the default): the shared root
# filesystem is never written, so servers of other scripts running from it
# keep the stock plugin, and an interrupted run leaves nothing there.
# PACKAGE_TEST_ROOT=shared installs into the shared root filesystem itself:
# the script refuses while any process runs from it (PACKAGE_TEST_FORCE=1 to
# go on anyway), and its exit trap purges the package and removes the
# diversion whatever happened.
#
# Environment: SKIP_BUILD=1 (no cargo build), CARGO_TARGET_DIR, PORT_BASE
# (14700: three ports), PACKAGE_DEB_1 and PACKAGE_DEB_2 (two packages, the
# second an upgrade of the first, tested instead of building revisions 1
# and 2 with ci/package.sh).
# shellcheck disable=SC2016 # '${Status}' and the like: dpkg-query's formats
set -uo pipefail
LOG_TAG=test-package
. "$(dirname "$0")/common.sh"
SERVERS=pkg

PORT=${PORT_BASE:-14700}
DONOR=$PORT RECIPIENT=$((PORT + 1)) CLONED=$((PORT + 2))
SCRIPT_SERVERS=(donor recipient cloned)

PKG=mysql-clone-rs
PLUGDIR=/usr/lib/mysql/plugin # the stock plugin directory, whatever STOCK_PLUGIN_DIR says
SO=$PLUGDIR/mysql_clone.so
STOCK=$SO.stock
MODE=${PACKAGE_TEST_ROOT:-overlay}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
TABLES=pkg.t1,pkg.t2

[ "$(id -u)" = 0 ] || fail "run as root (chroot, mount, dpkg in the root filesystem)"
[ -x "$ROOTFS/usr/sbin/mysqld" ] || fail "no root filesystem at $ROOTFS: run ci/setup-env.sh"
case $MODE in overlay | shared) ;; *) fail "PACKAGE_TEST_ROOT is overlay or shared, not '$MODE'" ;; esac
for tool in dpkg-deb readelf sha256sum flock; do
  command -v "$tool" >/dev/null || fail "$tool is needed on the host"
done
SHARED_ROOTFS=$(readlink -f "$ROOTFS")
mkdir -p "$CACHE/package-test/logs"
WORK=$(readlink -f "$CACHE/package-test")
exec 9>"$WORK/lock"
flock -n 9 || fail "another ci/test-package.sh runs (it holds $WORK/lock)"

# --- helpers -----------------------------------------------------------

# dpkg_in_root NAME ARGS...: dpkg ARGS in the root filesystem; its output
# goes to $WORK/logs/NAME.log and, indented, to stderr. Returns its status.
dpkg_in_root() {
  local out=$WORK/logs/$1.log rc; shift
  in_root env PATH="$CHROOT_PATH" DEBIAN_FRONTEND=noninteractive dpkg "$@" >"$out" 2>&1
  rc=$?
  sed 's/^/    | /' "$out" >&2
  return "$rc"
}
# sha_in_root PATH: the sha256 of PATH in the root filesystem, or "absent".
sha_in_root() { if [ -f "$ROOTFS$1" ]; then sha256sum <"$ROOTFS$1" | cut -d' ' -f1; else echo absent; fi; }
# sha_in_deb DEB PATH: the sha256 of PATH as the package DEB ships it.
sha_in_deb() { dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$2" | sha256sum | cut -d' ' -f1; }
# build_id FILE: the GNU build ID of an ELF file (kept by strip).
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: *//p'; }
# present PATH: whether PATH exists in the root filesystem.
present() { [ -e "$ROOTFS$1" ] && echo present || echo absent; }
# diverter: the package diverting $SO in the root filesystem (empty: none).
diverter() { in_root dpkg-divert --listpackage "$SO"; }
# pkg_state: the package's state for dpkg (installed, config-files, ...,
# not-installed), and its version when it has one.
pkg_state() {
  local s
  s=$(in_root dpkg-query -W -f '${Status} ${Version}' "$PKG" 2>/dev/null) || s=
  s=$(awk '{ print $3, $4 }' <<<"$s" | sed 's/ *$//')
  echo "${s:-not-installed}"
}
# plugin_of PORT: the clone plugin's status, whether it is ours (clone-rs
# in its author or description: the stock one is Oracle Corporation's
# "CLONE PLUGIN"), and whether it says "clone-rs <our version>" there (ours
# shows it as PLUGIN_AUTHOR, keeping the stock description): "ACTIVE 1 1"
# for ours, "ACTIVE 0 0" for the stock plugin.
plugin_of() {
  sql "$1" "SELECT PLUGIN_STATUS, CONCAT_WS(' ', PLUGIN_AUTHOR, PLUGIN_DESCRIPTION) LIKE '%clone-rs%',
    CONCAT_WS(' ', PLUGIN_AUTHOR, PLUGIN_DESCRIPTION) LIKE '%clone-rs $VERSION%'
    FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'"
}
# described PORT: the clone plugin's description and author, for the log.
described() { sql "$1" "SELECT CONCAT(PLUGIN_DESCRIPTION, ' (', PLUGIN_AUTHOR, ')') FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone'"; }
# init_lines NAME: the lines of server NAME's error log naming clone-rs
# and our version.
init_lines() { grep -F clone-rs "$ROOTFS$(server_dir "$1")/error.log" 2>/dev/null | grep -cF "$VERSION"; }
# restart NAME PORT: stops server NAME and starts it again from the stock
# plugin directory.
restart() { server_stop "$1"; server_start "$1" "$2" "$PLUGDIR"; }
# processes_in DIR: the PIDs of the processes whose root directory is DIR.
processes_in() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done | paste -sd' ' -
}
# systemd_restarts_16 UNIT: whether systemd restarts the service UNIT (a
# file, with its drop-ins) when its process exits with status 16, as an
# in-place clone asks: RestartForceExitStatus=16, or Restart=on-failure or
# always without 16 in RestartPreventExitStatus (nor, for on-failure, in
# SuccessExitStatus).
systemd_restarts_16() {
  local files=("$1") d
  for d in "$ROOTFS/etc/systemd/system" "$ROOTFS/usr/lib/systemd/system" "$ROOTFS/run/systemd/system"; do
    [ -d "$d/$(basename "$1").d" ] && files+=("$d/$(basename "$1").d"/*.conf)
  done
  cat "${files[@]}" 2>/dev/null | awk -F= '
    function set(k, v) { if (v == "") list[k] = ""; else list[k] = list[k] " " v " " }
    /^[[:space:]]*Restart=/ { restart = $2 }
    /^[[:space:]]*(RestartForceExitStatus|RestartPreventExitStatus|SuccessExitStatus)=/ { k = $1; sub(/^[[:space:]]*/, "", k); set(k, $2) }
    END {
      if (list["RestartForceExitStatus"] ~ / 16 /) { print "yes"; exit }
      if (list["RestartPreventExitStatus"] ~ / 16 /) { print "no"; exit }
      if (restart == "always" || (restart == "on-failure" && list["SuccessExitStatus"] !~ / 16 /)) print "yes"; else print "no"
    }'
}

# --- the shared root filesystem, as found ------------------------------

stock_sha=$(sha256sum <"$SHARED_ROOTFS$SO" | cut -d' ' -f1)
[ -z "$(chroot "$SHARED_ROOTFS" dpkg-divert --listpackage "$SO")" ] ||
  fail "$SO is diverted in $SHARED_ROOTFS already (an interrupted run in PACKAGE_TEST_ROOT=shared?): chroot $SHARED_ROOTFS dpkg --purge $PKG"
chroot "$SHARED_ROOTFS" dpkg-query -W -f '${Status}' "$PKG" 2>/dev/null | grep -q ' installed$' &&
  fail "$PKG is installed in $SHARED_ROOTFS: chroot $SHARED_ROOTFS dpkg --purge $PKG"
stock_md5=$(awk -v f="${SO#/}" '$2 == f { print $1 }' "$SHARED_ROOTFS"/var/lib/dpkg/info/mysql-server-core.md5sums 2>/dev/null)
check "the root filesystem's $SO is mysql-server-core's (its md5sums)" "$stock_md5" "$(md5sum <"$SHARED_ROOTFS$SO" | cut -d' ' -f1)"
if [ "$MODE" = shared ]; then
  others=$(processes_in "$SHARED_ROOTFS")
  [ -z "$others" ] || [ "${PACKAGE_TEST_FORCE:-0}" = 1 ] ||
    fail "processes run from $SHARED_ROOTFS (PIDs $others): installing the package there swaps the stock plugin under them. Use PACKAGE_TEST_ROOT=overlay (the default), or PACKAGE_TEST_FORCE=1"
fi

# --- cleanup, on every exit --------------------------------------------

MOUNTED=0 COPIED=() cleaned=0
# purge_leftovers: in the shared root filesystem, purges the package and
# removes its diversion, whatever state a failure left them in.
purge_leftovers() {
  local state
  state=$(pkg_state)
  if [ "$state" != not-installed ]; then
    log "cleanup: purging $PKG ($state)"
    dpkg_in_root cleanup-purge --purge "$PKG" ||
      dpkg_in_root cleanup-purge-forced --purge --force-remove-reinstreq "$PKG" ||
      log "cleanup: dpkg --purge $PKG failed"
  fi
  if [ "$(diverter)" = "$PKG" ]; then
    log "cleanup: removing the diversion of $SO"
    # Our plugin may still be at the path: the stock file goes back over it.
    [ "$(sha_in_root "$STOCK")" = "$stock_sha" ] && rm -f "$ROOTFS$SO"
    in_root dpkg-divert --package "$PKG" --rename --divert "$STOCK" --remove "$SO" >&2 ||
      log "cleanup: dpkg-divert --remove failed"
  fi
  [ "$(sha_in_root "$SO")" = "$stock_sha" ] ||
    log "cleanup: WARNING: $ROOTFS$SO is not the stock plugin any more (sha256 $(sha_in_root "$SO"), was $stock_sha)"
}
# teardown_overlay: unmounts the overlay (servers stopped first); returns 1
# if it stays mounted.
teardown_overlay() {
  local m
  for m in "$WORK/merged/clone-rs-package" "$WORK/merged"; do
    if mountpoint -q "$m"; then
      umount "$m" || { log "cleanup: cannot unmount $m (a process still uses it?)"; return 1; }
    fi
  done
}
# cleanup STATUS: stops the servers and undoes the installation; the
# servers' directories stay for a look when STATUS or a check failed.
cleanup() {
  local keep=0
  [ "$cleaned" = 1 ] && return 0
  cleaned=1
  [ "${1:-0}" = 0 ] && [ "$failed" = 0 ] || keep=1
  stop_script_servers
  if [ "$MODE" = shared ]; then
    purge_leftovers
    rm -f "${COPIED[@]/#/$ROOTFS}"
    [ "$keep" = 0 ] && rm -rf "$ROOTFS/clone-rs/pkg-donor" "$ROOTFS/clone-rs/pkg-recipient" "$ROOTFS/clone-rs/pkg-cloned"
  elif [ "$MOUNTED" = 1 ]; then
    # The overlay holds every change: unmounted and deleted, it is gone.
    if teardown_overlay; then
      rm -rf "$WORK/upper" "$WORK/work"
      if [ "$keep" = 0 ]; then rm -rf "$WORK/servers"; else log "the servers' directories (error logs) stay in $WORK/servers"; fi
    fi
  fi
  ROOTFS=$SHARED_ROOTFS
}
trap 'cleanup $?' EXIT

# --- the packages --------------------------------------------------------

if [ -n "${PACKAGE_DEB_1:-}${PACKAGE_DEB_2:-}" ]; then
  if [ ! -f "${PACKAGE_DEB_1:-}" ] || [ ! -f "${PACKAGE_DEB_2:-}" ]; then fail "PACKAGE_DEB_1 and PACKAGE_DEB_2 name two .deb files"; fi
  DEB1=$(readlink -f "$PACKAGE_DEB_1") DEB2=$(readlink -f "$PACKAGE_DEB_2") BUILT=0
else
  log "building the package twice: revisions 1 and 2"
  DEB1=$(PACKAGE_REVISION=1 PACKAGE_OUT_DIR=$WORK/debs bash "$REPO/ci/package.sh") || fail "ci/package.sh (revision 1)"
  DEB2=$(SKIP_BUILD=1 PACKAGE_REVISION=2 PACKAGE_OUT_DIR=$WORK/debs bash "$REPO/ci/package.sh") || fail "ci/package.sh (revision 2)"
  BUILT=1
fi
V1=$(dpkg-deb -f "$DEB1" Version) V2=$(dpkg-deb -f "$DEB2" Version)
VERSION=${V1%-*} # the upstream version: Cargo.toml's, which the plugin reports
log "testing $DEB1 ($V1), then $DEB2 ($V2)"
check "the second package ($V2) is an upgrade of the first ($V1)" "1" "$(dpkg --compare-versions "$V2" gt "$V1" && echo 1 || echo 0)"
check "both are $PKG" "$PKG $PKG" "$(dpkg-deb -f "$DEB1" Package) $(dpkg-deb -f "$DEB2" Package)"

# The Depends bounds admit the test server's release, and only that one.
sv=$(cat "$CACHE/server-version" 2>/dev/null || chroot "$SHARED_ROOTFS" /usr/sbin/mysqld --version | sed -n 's/.*Ver \([0-9][0-9.]*\).*/\1/p')
sv_deb=$(chroot "$SHARED_ROOTFS" dpkg-query -W -f '${Version}' mysql-server-core)
sv_next=${sv%.*}.$((${sv##*.} + 1)) sv_prev=${sv%.*}.$((${sv##*.} - 1))
depends=$(dpkg-deb -f "$DEB1" Depends)
lower=$(sed -n 's/.*mysql-server-core (>= \([^)]*\)).*/\1/p' <<<"$depends")
upper=$(sed -n 's/.*mysql-server-core (<< \([^)]*\)).*/\1/p' <<<"$depends")
check "Depends: mysql-server-core (>= $sv), mysql-server-core (<< $sv_next~)" "$sv $sv_next~" "${lower#*:} ${upper#*:}"
epoch=
case $lower in *:*) epoch=${lower%%:*}: ;; esac
# admits VERSION: "VERSION:yes" if the bounds admit VERSION (with their epoch), "VERSION:no" if not.
admits() {
  if dpkg --compare-versions "$epoch$1" ge "$lower" && dpkg --compare-versions "$epoch$1" lt "$upper"; then echo "$1:yes"; else echo "$1:no"; fi
}
check "the bounds admit $sv's Debian revisions ($sv_deb), no other release" \
  "$sv_deb:yes $sv-9+b1:yes $sv_prev-1:no $sv~rc1-1:no $sv_next~rc1-1:no $sv_next-1:no" \
  "$(for v in "${sv_deb#*:}" "$sv-9+b1" "$sv_prev-1" "$sv~rc1-1" "$sv_next~rc1-1" "$sv_next-1"; do admits "$v"; done | paste -sd' ' -)"
check "the plugin is shipped -rw-r--r-- root/root at $SO" "1" \
  "$(dpkg-deb -c "$DEB1" | grep -c "^-rw-r--r-- root/root .* \.$SO$")"

# The root filesystem dpkg works in.
if [ "$MODE" = overlay ]; then
  teardown_overlay || fail "an earlier run's overlay is still mounted at $WORK/merged"
  rm -rf "$WORK/upper" "$WORK/work" "$WORK/servers"
  mkdir -p "$WORK/upper" "$WORK/work" "$WORK/merged" "$WORK/servers"
  mount -t overlay clone-rs-package -o "lowerdir=$SHARED_ROOTFS,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/merged" ||
    fail "cannot mount an overlay of $SHARED_ROOTFS (PACKAGE_TEST_ROOT=shared installs into it instead, with nothing else running from it)"
  MOUNTED=1
  ROOTFS=$WORK/merged
  # The servers' data on the host's file system, not on the overlay.
  SERVER_ROOT=/clone-rs-package
  mkdir -p "$ROOTFS$SERVER_ROOT"
  mount --bind "$WORK/servers" "$ROOTFS$SERVER_ROOT" || fail "cannot bind $WORK/servers into the overlay"
  log "dpkg works in an overlay of the root filesystem: $ROOTFS"
fi
for deb in "$DEB1" "$DEB2"; do
  cp "$deb" "$ROOTFS/tmp/" || fail "cannot copy $deb into the root filesystem"
  COPIED+=("/tmp/$(basename "$deb")")
done

# --- 1. install ----------------------------------------------------------

log "dpkg -i $(basename "$DEB1")"
dpkg_in_root install -i "/tmp/$(basename "$DEB1")"
check "dpkg -i $V1 succeeds" "0" "$?"
check "$PKG is installed, version $V1" "installed $V1" "$(pkg_state)"
check "$SO is diverted by $PKG" "$PKG" "$(diverter)"
check "... to $STOCK" "$STOCK" "$(in_root dpkg-divert --truename "$SO")"
check "the stock plugin is at $STOCK, byte for byte" "$stock_sha" "$(sha_in_root "$STOCK")"
check "$SO is the package's plugin" "$(sha_in_deb "$DEB1" "$SO")" "$(sha_in_root "$SO")"
check "$SO is not the stock file" "1" "$([ "$(sha_in_root "$SO")" != "$stock_sha" ] && echo 1 || echo 0)"
if [ "$BUILT" = 1 ]; then
  check "$SO is this build (the build ID of $TARGET_DIR/release/libmysql_clone.so)" \
    "$(build_id "$TARGET_DIR/release/libmysql_clone.so")" "$(build_id "$ROOTFS$SO")"
fi
check "$SO is 0644 root:root" "644 root:root" "$(stat -c '%a %U:%G' "$ROOTFS$SO")"
check "postinst says the server was not restarted, and how to load the plugin" "1 1" \
  "$(grep -c 'was not restarted' "$WORK/logs/install.log") $(grep -cF "INSTALL PLUGIN clone SONAME 'mysql_clone.so'" "$WORK/logs/install.log")"
check "clone-watch is /usr/bin/clone-watch, 0755" "755" "$(stat -c '%a' "$ROOTFS/usr/bin/clone-watch" 2>&1)"
check "clone-watch --help prints its usage, exits 0" "1 0" \
  "$(in_root /usr/bin/clone-watch --help 2>/dev/null | grep -c '^usage: clone-watch') $(in_root /usr/bin/clone-watch --help >/dev/null 2>&1; echo $?)"
check "clone-watch --version answers" "1" "$(in_root /usr/bin/clone-watch --version 2>&1 | grep -c '^clone-watch [0-9]')"
check "clone-watch exits 2 on a bad argument" "2" "$(in_root /usr/bin/clone-watch --no-such-argument >/dev/null 2>&1; echo $?)"
if [ -f "$REPO/clone-watch/clone-watch.1" ] || dpkg-deb -c "$DEB1" | grep -q 'clone-watch\.1\.gz$'; then
  check "the man page is /usr/share/man/man1/clone-watch.1.gz" "ok" \
    "$(gzip -t "$ROOTFS/usr/share/man/man1/clone-watch.1.gz" 2>/dev/null && echo ok || echo missing)"
else
  log "no clone-watch/clone-watch.1 in the repository yet: no man page to check"
fi
missing=$(for f in copyright changelog.Debian.gz README.md.gz ARCHITECTURE.md.gz README.Debian; do
  [ -s "$ROOTFS/usr/share/doc/$PKG/$f" ] || echo "$f"
done | paste -sd' ' -)
check "the docs are in /usr/share/doc/$PKG" "" "$missing"
check "the copyright file is machine-readable and names GPL-2.0-only" "1 1" \
  "$(grep -c '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' "$ROOTFS/usr/share/doc/$PKG/copyright") $(grep -c '^License: GPL-2.0-only$' "$ROOTFS/usr/share/doc/$PKG/copyright")"
unit=$ROOTFS/usr/lib/systemd/system/mysql.service
if [ -f "$unit" ]; then
  check "mysql.service restarts mysqld after an in-place clone (exit status 16): no drop-in needed" "yes" "$(systemd_restarts_16 "$unit")"
else
  log "no mysql.service in the root filesystem: the systemd restart is not checked"
fi

# --- 2. servers load ours from the stock directory, and clone ---------------

log "a donor and a recipient with the plugin directory $PLUGDIR"
server_init donor
server_start donor "$DONOR" "$PLUGDIR"
server_init recipient
server_start recipient "$RECIPIENT" "$PLUGDIR"
for s in donor:$DONOR recipient:$RECIPIENT; do
  name=${s%:*} port=${s#*:}
  check "$name: INSTALL PLUGIN clone SONAME 'mysql_clone.so'" "0" "$(errno_of "$port" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'")"
  check "$name: the plugin is ours, ACTIVE, and says clone-rs $VERSION (PLUGIN_AUTHOR)" "ACTIVE	1	1" "$(plugin_of "$port")"
  log "$name: clone plugin: $(described "$port")"
  check "$name: its error log names clone-rs $VERSION at init" "1" "$(($(init_lines "$name") > 0))"
done

sql "$DONOR" "CREATE DATABASE pkg;
  CREATE TABLE pkg.t1 (id INT PRIMARY KEY, k INT NOT NULL, h CHAR(64) NOT NULL, KEY (k));
  CREATE TABLE pkg.t2 (id INT PRIMARY KEY, body VARCHAR(1024) NOT NULL) ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8;
  SET SESSION cte_max_recursion_depth = 100000;
  INSERT INTO pkg.t1 WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 20000)
    SELECT n, (n * 7919) % 1009, SHA2(n, 256) FROM seq;
  INSERT INTO pkg.t2 WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 5000)
    SELECT n, CONCAT(SHA2(n, 512), SHA2(n + 1, 512)) FROM seq;
  CREATE USER donor_user IDENTIFIED BY 'Pass-1234'; GRANT BACKUP_ADMIN ON *.* TO donor_user" || fail "the donor's data"
CLONE_FROM="CLONE INSTANCE FROM donor_user@127.0.0.1:$DONOR IDENTIFIED BY 'Pass-1234'"

log "CLONE INSTANCE ... DATA DIRECTORY"
dest=$(server_dir cloned)/data
rm -rf "$ROOTFS$(server_dir cloned)"
mkdir -p "$ROOTFS$(server_dir cloned)"/{files,tmp}
out=$(sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; $CLONE_FROM DATA DIRECTORY = '$dest'" 2>&1)
check "CLONE INSTANCE ... DATA DIRECTORY succeeds" "" "$out"
check "clone_status: Completed" "Completed	0" "$(sql "$RECIPIENT" "SELECT state, error_no FROM performance_schema.clone_status")"
check "the installed clone-watch reads it (--last exits 0)" "0" \
  "$(timeout 60 chroot "$ROOTFS" /usr/bin/clone-watch -h 127.0.0.1 -P "$RECIPIENT" -u root --last >"$WORK/logs/clone-watch.out" 2>&1; echo $?)"
if [ -z "$out" ] && SOFT_WAIT=1 server_start cloned "$CLONED" "$PLUGDIR"; then
  check "a server started on the clone has the donor's tables (checksums)" "$(checksums "$DONOR" "$TABLES")" "$(checksums "$CLONED" "$TABLES")"
  check "it loads ours too (the clone plugin's row came with the clone)" "ACTIVE	1	1" "$(plugin_of "$CLONED")"
  server_stop cloned
else
  check "a server starts on the clone" "started" "not started"
fi

# --- 3. upgrade under running servers ----------------------------------------

log "dpkg -i $(basename "$DEB2") while the servers run"
pid=$(server_pid recipient)
dpkg_in_root upgrade -i "/tmp/$(basename "$DEB2")"
check "dpkg -i $V2 (upgrade) succeeds" "0" "$?"
check "$PKG is installed, version $V2" "installed $V2" "$(pkg_state)"
check "after the upgrade: $SO is still diverted by $PKG" "$PKG $STOCK" "$(diverter) $(in_root dpkg-divert --truename "$SO")"
check "after the upgrade: $SO is the new package's plugin" "$(sha_in_deb "$DEB2" "$SO")" "$(sha_in_root "$SO")"
check "after the upgrade: the stock plugin is still at $STOCK, byte for byte" "$stock_sha" "$(sha_in_root "$STOCK")"
check "the package did not restart the server (same PID, answers)" "$pid yes" "$(server_pid recipient) $(server_answers "$RECIPIENT" && echo yes)"
check "postinst says it upgraded from $V1" "1" "$(grep -cF "upgraded from $V1" "$WORK/logs/upgrade.log")"
check "UNINSTALL PLUGIN clone; INSTALL PLUGIN clone SONAME 'mysql_clone.so' after the upgrade" "0" \
  "$(errno_of "$RECIPIENT" "UNINSTALL PLUGIN clone; INSTALL PLUGIN clone SONAME 'mysql_clone.so'")"
check "... the plugin is ours, ACTIVE" "ACTIVE	1	1" "$(plugin_of "$RECIPIENT")"
# A library once loaded stays mapped in mysqld (ours pins itself, the stock
# one has unique symbols), and INSTALL PLUGIN reuses it: a restart loads
# the new file.
restart recipient "$RECIPIENT"
check "after a restart: ours, ACTIVE, loaded from the upgraded file" "ACTIVE	1	1" "$(plugin_of "$RECIPIENT")"
after=$(server_dir recipient)/files/after-upgrade
check "after the upgrade: CLONE INSTANCE ... DATA DIRECTORY succeeds" "" \
  "$(sql "$RECIPIENT" "SET GLOBAL clone_valid_donor_list='127.0.0.1:$DONOR'; $CLONE_FROM DATA DIRECTORY = '$after'" 2>&1)"
rm -rf "${ROOTFS:?}$after"

# --- 4. remove -----------------------------------------------------------

log "dpkg -r $PKG while the servers run"
pid=$(server_pid recipient)
dpkg_in_root remove -r "$PKG"
check "dpkg -r $PKG succeeds" "0" "$?"
check "the stock plugin is back at $SO, byte for byte" "$stock_sha" "$(sha_in_root "$SO")"
check "no diversion of $SO left" "" "$(diverter)"
check "nothing left at $STOCK" "absent" "$(present "$STOCK")"
check "clone-watch is gone" "absent" "$(present /usr/bin/clone-watch)"
check "the package did not restart the server (same PID, answers)" "$pid yes" "$(server_pid recipient) $(server_answers "$RECIPIENT" && echo yes)"
check "postrm says the stock plugin is back and the server was not restarted" "1 1" \
  "$(grep -c 'stock clone plugin is back' "$WORK/logs/remove.log") $(grep -c 'was not restarted' "$WORK/logs/remove.log")"
# Not a check: what the same server process loads (the library it mapped).
if [ "$(errno_of "$RECIPIENT" "UNINSTALL PLUGIN clone; INSTALL PLUGIN clone SONAME 'mysql_clone.so'")" = 0 ]; then
  log "note: UNINSTALL/INSTALL in the same server process loads: $(described "$RECIPIENT") (the library stays mapped: restart)"
fi
restart recipient "$RECIPIENT"
# The row in mysql.plugin loads the plugin at the start (INSTALL it if the
# statements above left none).
[ -n "$(described "$RECIPIENT")" ] || sql "$RECIPIENT" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'"
check "after a restart the server loads the stock plugin (no clone-rs in PLUGIN_AUTHOR, PLUGIN_DESCRIPTION)" "ACTIVE	0	0" "$(plugin_of "$RECIPIENT")"
log "recipient: clone plugin: $(described "$RECIPIENT")"

# --- 5. purge ------------------------------------------------------------

log "dpkg --purge $PKG"
dpkg_in_root purge --purge "$PKG"
check "dpkg --purge $PKG succeeds" "0" "$?"
check "dpkg -L $PKG fails" "fails" "$(in_root dpkg -L "$PKG" >/dev/null 2>&1 && echo lists || echo fails)"
check "dpkg knows $PKG as not installed" "not-installed" "$(pkg_state)"
left=$(for p in "/usr/share/doc/$PKG" /usr/bin/clone-watch /usr/share/man/man1/clone-watch.1.gz "$STOCK" \
  /etc/systemd/system/mysql.service.d/clone-restart.conf /usr/lib/systemd/system/mysql.service.d/clone-restart.conf; do
  [ -e "$ROOTFS$p" ] && echo "$p"
done; find "$ROOTFS/var/lib/dpkg/info" -maxdepth 1 -name "$PKG.*" -printf '/var/lib/dpkg/info/%f\n')
check "nothing of the package is left" "" "$(paste -sd' ' - <<<"$left")"
check "no diversion of $SO left" "" "$(diverter)"
check "$SO is the stock plugin, byte for byte" "$stock_sha" "$(sha_in_root "$SO")"

# --- 6. the shared root filesystem, as it was --------------------------------

cleanup 0
check "the shared root filesystem's $SO is byte for byte as before" "$stock_sha" "$(sha256sum <"$SHARED_ROOTFS$SO" | cut -d' ' -f1)"
check "the shared root filesystem has no diversion of it, no $PKG" "" \
  "$(chroot "$SHARED_ROOTFS" dpkg-divert --listpackage "$SO")$(chroot "$SHARED_ROOTFS" dpkg-query -W -f '${Status}' "$PKG" 2>/dev/null | grep ' installed$')"
[ "$MODE" = overlay ] && check "the overlay is unmounted" "no" "$(mountpoint -q "$WORK/merged" && echo yes || echo no)"

report test-package
