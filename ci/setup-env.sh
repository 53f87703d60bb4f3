#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12 machine:
#   - host packages: mmdebstrap (sid root filesystem), clang/libclang (bindgen)
#   - a Debian sid root filesystem with mysql-server-core, mysql-client-core and
#     mysql-testsuite (MySQL 9.7.4 needs sid's libc, so it runs chrooted)
#   - sysbench in that root filesystem, tc and ip (iproute2) on the host
#   - the matching mysql-source tarball, unpacked, for bindgen and the C++ shim
# All of it goes to one git-ignored folder ($CLONE_RS_CACHE, default <repo>/.cache);
# a second run finds it there and only checks it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CLONE_RS_CACHE:-$here/.cache}
rootfs=$cache/rootfs
src=$cache/mysql-source
want_version=${MYSQL_WANT_VERSION:-9.7.4}

say() { printf '[setup-env] %s\n' "$*"; }
die() { printf '[setup-env] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap and chroot need it)"
mkdir -p "$cache"

# Host packages.
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v tc >/dev/null || need+=(iproute2)
[ -e /usr/lib/llvm-14/lib/libclang.so ] || [ -n "$(ls /usr/lib/llvm-*/lib/libclang.so 2>/dev/null)" ] || need+=(libclang-dev clang)
if [ ${#need[@]} -gt 0 ]; then
  say "installing host packages: ${need[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

# The sid root filesystem.
if [ ! -x "$rootfs/usr/sbin/mysqld" ]; then
  say "building a Debian sid root filesystem with MySQL in $rootfs (from $mirror)"
  rm -rf "$rootfs"
  mmdebstrap --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=mysql-server-core,mysql-client-core,mysql-testsuite,libjson-perl,perl,procps,openssl \
    sid "$rootfs" "$mirror" >"$cache/mmdebstrap.log" 2>&1 \
    || { tail -20 "$cache/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $cache/mmdebstrap.log)"; }
fi
# sysbench drives the donor's workload in ci/bench.sh (only there: the
# tests do without it). Installing it with apt would remove mysql-testsuite
# and mysql-server (its libmariadb3 needs mariadb-common, which conflicts
# with them), so its packages are unpacked into the root filesystem
# without dpkg, mariadb-common (configuration files only) left out.
if [ ! -x "$rootfs/usr/bin/sysbench" ]; then
  say "unpacking sysbench into the root filesystem"
  debs=$rootfs/tmp/sysbench-debs
  rm -rf "$debs"; mkdir -p "$debs"
  {
    chroot "$rootfs" apt-get -qq -o Acquire::Check-Valid-Until=false update &&
    pkgs=$(chroot "$rootfs" apt-get -s -qq install sysbench | awk '/^Inst / {print $2}' | grep -vx mariadb-common) &&
    chroot "$rootfs" sh -c "cd /tmp/sysbench-debs && apt-get -qq -o Acquire::Check-Valid-Until=false download $(echo $pkgs)" &&
    for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done &&
    chroot "$rootfs" ldconfig && chroot "$rootfs" sysbench --version
  } >"$cache/sysbench.log" 2>&1 \
    || say "WARNING: cannot unpack sysbench (log: $cache/sysbench.log): ci/bench.sh --modes sysbench will not run"
  rm -rf "$debs"
fi
# mysql-test-run needs localhost to resolve inside the chroot.
grep -q '^127.0.0.1[[:space:]]*localhost' "$rootfs/etc/hosts" 2>/dev/null \
  || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n' >>"$rootfs/etc/hosts"

version=$(chroot "$rootfs" /usr/sbin/mysqld --version | sed -n 's/.*Ver \([0-9][0-9.]*\).*/\1/p')
[ -n "$version" ] || die "cannot read the server version from $rootfs/usr/sbin/mysqld"
if [ "$version" != "$want_version" ]; then
  die "sid installed MySQL $version, this plugin targets $want_version (set MYSQL_WANT_VERSION to override)"
fi
pkg_version=$(chroot "$rootfs" dpkg-query -W -f='${Version}' mysql-server-core)
say "server: MySQL $version (package $pkg_version)"

# Keep the stock plugin under another name: tests and benchmarks compare against it.
plugdir=$rootfs/usr/lib/mysql/plugin
[ -e "$plugdir/mysql_clone_stock.so" ] || cp "$plugdir/mysql_clone.so" "$plugdir/mysql_clone_stock.so"

# The matching source tree (headers for bindgen and the shim, message files).
if [ ! -f "$src/.version" ] || [ "$(cat "$src/.version")" != "$pkg_version" ]; then
  say "fetching mysql-source $pkg_version"
  rm -rf "$src" "$cache/mysql-source-deb"
  mkdir -p "$cache/mysql-source-deb" "$src"
  chroot "$rootfs" sh -c "cd /tmp && rm -f mysql-source_*.deb && apt-get -qq -o Acquire::Check-Valid-Until=false download mysql-source=$pkg_version" \
    >"$cache/download.log" 2>&1 || {
      # the chroot's package lists may be older than the archive: refresh once
      chroot "$rootfs" apt-get -qq -o Acquire::Check-Valid-Until=false update >>"$cache/download.log" 2>&1 || true
      chroot "$rootfs" sh -c "cd /tmp && apt-get -qq -o Acquire::Check-Valid-Until=false download mysql-source=$pkg_version" \
        >>"$cache/download.log" 2>&1 || die "cannot download mysql-source=$pkg_version (sid no longer offers it?); log: $cache/download.log"
    }
  dpkg-deb -x "$rootfs"/tmp/mysql-source_*.deb "$cache/mysql-source-deb"
  rm -f "$rootfs"/tmp/mysql-source_*.deb
  tarball=$(ls "$cache"/mysql-source-deb/usr/src/mysql/mysql-source.tar.gz 2>/dev/null) \
    || die "mysql-source package has no usr/src/mysql/mysql-source.tar.gz"
  say "unpacking the source tarball"
  tar -xzf "$tarball" -C "$src" --strip-components=1
  rm -rf "$cache/mysql-source-deb"
  [ -f "$src/builddir/include/my_config.h" ] || die "source tree lacks builddir/include/my_config.h"
  echo "$pkg_version" >"$src/.version"
fi
echo "$version" >"$cache/server-version"
say "ready: rootfs=$rootfs source=$src"
