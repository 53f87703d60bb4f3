#!/usr/bin/env bash
# The two CMake builds of cmake/CMakeLists.txt, each checked on a real
# server: the stand-alone one (`cmake -S cmake`), and the one inside the
# MySQL source tree that ci/setup-env.sh fetches (plugin/clone_rs holding an
# include of our CMakeLists.txt; MySQL's plugin scan picks it up, and only a
# configure of the tree is needed, for its generated headers). Each
# mysql_clone.so is loaded from a plugin directory of its own, makes a
# CLONE LOCAL, and a server started on the clone must have the donor's
# checksums. CMake is installed on the host if missing. Closes with
# "test-cmake: N passed, N failed".
set -uo pipefail
LOG_TAG=test-cmake
. "$(dirname "$0")/common.sh"
SERVERS=cmake

PORT=${PORT_BASE:-14800}
DONOR=$PORT CLONED=$((PORT + 1))
SCRIPT_SERVERS=(cloned donor)
SOURCE=$CACHE/mysql-source
IN_TREE_DIR=$SOURCE/plugin/clone_rs
BUILD=$CACHE/cmake-builds

cleanup() {
  stop_script_servers
  # The source tree is shared: our include leaves it again.
  rm -rf "$IN_TREE_DIR"
}
trap cleanup EXIT

if ! command -v cmake >/dev/null; then
  log "installing cmake on the host"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null; } || fail "apt-get install cmake"
fi
[ -d "$SOURCE" ] || fail "no MySQL source tree at $SOURCE (run ci/setup-env.sh)"
mkdir -p "$BUILD"

# The MySQL options that leave out what needs libraries the host lacks;
# the clone plugin needs none of it.
MYSQL_OPTIONS=(-DWITH_UNIT_TESTS=OFF -DWITH_ROUTER=OFF -DWITH_MYSQLX=OFF -DWITH_NDB=OFF -DWITH_NDBCLUSTER=OFF -DWITH_CURL=0
  -DWITH_AUTHENTICATION_WEBAUTHN=OFF -DWITH_AUTHENTICATION_FIDO=OFF -DWITH_AUTHENTICATION_KERBEROS=OFF
  -DWITH_AUTHENTICATION_LDAP=OFF -DWITH_AUTHENTICATION_CLIENT_PLUGINS=OFF)

# build_standalone: prints the path of the library it built.
build_standalone() {
  local dir=$BUILD/standalone
  cmake -S "$REPO/cmake" -B "$dir" -DMYSQL_SOURCE_DIR="$SOURCE" >"$BUILD/standalone.log" 2>&1 &&
    cmake --build "$dir" >>"$BUILD/standalone.log" 2>&1 && echo "$dir/mysql_clone.so"
}

# build_in_tree: prints the path of the library it built.
build_in_tree() {
  local dir=$BUILD/in-tree
  mkdir -p "$IN_TREE_DIR"
  printf 'set(CLONE_RS_DIR %s)\ninclude(${CLONE_RS_DIR}/cmake/CMakeLists.txt)\n' "$REPO" >"$IN_TREE_DIR/CMakeLists.txt"
  cmake -S "$SOURCE" -B "$dir" "${MYSQL_OPTIONS[@]}" >"$BUILD/in-tree.log" 2>&1 &&
    cmake --build "$dir" --target clone_rs >>"$BUILD/in-tree.log" 2>&1 && echo "$dir/plugin_output_directory/clone_rs/mysql_clone.so"
}

# loads_and_clones KIND SO: the library SO, in a plugin directory of its
# own, loads as `clone` and makes a CLONE LOCAL a server starts on.
loads_and_clones() {
  local kind=$1 so=$2 plugdir=/opt/clone-rs/cmake-$1
  (PLUGIN_SO=$so OUR_PLUGIN_DIR=$plugdir install_our_plugin)
  server_init donor
  server_start donor "$DONOR" "$plugdir"
  check "$kind: INSTALL PLUGIN clone SONAME 'mysql_clone.so' loads it" "0" "$(errno_of "$DONOR" "INSTALL PLUGIN clone SONAME 'mysql_clone.so'")"
  check "$kind: it is ours (PLUGIN_AUTHOR)" "clone-rs" "$(sql "$DONOR" "SELECT SUBSTRING_INDEX(plugin_author, ' ', 1) FROM information_schema.plugins WHERE plugin_name = 'clone'")"
  sql "$DONOR" "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(100));
    INSERT INTO app.t (v) VALUES ('a'), ('b'), ('c'); INSERT INTO app.t (v) SELECT v FROM app.t; INSERT INTO app.t (v) SELECT v FROM app.t"
  local d; d=$(server_dir cloned)
  rm -rf "$ROOTFS$d"; mkdir -p "$ROOTFS$d"/{files,tmp}
  check "$kind: CLONE LOCAL succeeds" "0" "$(errno_of "$DONOR" "CLONE LOCAL DATA DIRECTORY = '$d/data'")"
  server_start cloned "$CLONED" "$STOCK_PLUGIN_DIR" --disable-log-bin
  check "$kind: the clone has the donor's checksums" "$(checksums "$DONOR" app.t)" "$(checksums "$CLONED" app.t)"
  server_stop cloned
  server_stop donor
  rm -rf "${ROOTFS:?}$plugdir"
}

log "stand-alone: cmake -S cmake (cargo builds the plugin)"
so=$(build_standalone)
check "stand-alone: cmake configures and builds mysql_clone.so" "yes" "$([ -f "$so" ] && echo yes || tail -5 "$BUILD/standalone.log")"
[ -f "$so" ] && loads_and_clones stand-alone "$so"

log "in the MySQL source tree: plugin/clone_rs, a configure of the tree, the clone_rs target"
so=$(build_in_tree)
check "in-tree: the tree configures with plugin/clone_rs, and the clone_rs target builds mysql_clone.so" "yes" \
  "$([ -f "$so" ] && echo yes || grep -m3 -A3 'CMake Error\|error' "$BUILD/in-tree.log")"
[ -f "$so" ] && loads_and_clones in-tree "$so"

report test-cmake
