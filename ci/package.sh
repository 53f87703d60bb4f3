#!/usr/bin/env bash
# Builds the Debian package of the plugin and clone-watch:
#
#   bash ci/package.sh     # -> target/debian/mysql-clone-rs_<version>_amd64.deb
#
# and prints the path of the .deb on stdout (its only output there: a caller
# can take it with deb=$(bash ci/package.sh)). <version> is Cargo.toml's
# version with a Debian revision (PACKAGE_REVISION, 1 unless set: a build
# with a higher one upgrades the first). No cargo-deb: dpkg-deb, driven from
# here, with the templates and maintainer scripts in packaging/debian/.
#
# The package installs the plugin at the stock path
# /usr/lib/mysql/plugin/mysql_clone.so through a dpkg diversion (preinst
# moves the stock file to mysql_clone.so.stock, postrm moves it back), and
# clone-watch in /usr/bin with its man page (clone-watch/clone-watch.1, if
# the repository has it). It depends on the server-core package of the MySQL
# release the plugin was built against, that release only: the version comes
# from the MySQL source tree the build used (MYSQL_VERSION there), the
# package's Debian version form from the .version file ci/setup-env.sh
# writes next to it. It never restarts the server.
#
# Environment:
#   SKIP_BUILD=1          package the binaries already built (no cargo build)
#   CARGO_TARGET_DIR=DIR  cargo's target directory, where the binaries are
#                         (default target/): SKIP_BUILD=1
#                         CARGO_TARGET_DIR=/elsewhere/target packages those
#   PACKAGE_OUT_DIR=DIR   where the .deb goes (default $CARGO_TARGET_DIR/debian)
#   PACKAGE_REVISION=N    the Debian revision (default 1)
#   PACKAGE_STRIP=0       ship the binaries as built, debug info included
#                         (default: stripped as dh_strip does; the build ID stays)
#   PACKAGE_MAINTAINER    "Name <email>" (default: the last commit's author)
#   MYSQL_SOURCE_DIR      the MySQL source tree the plugin was built against
#                         (default .cache/mysql-source, as build.rs)
#   MYSQL_SERVER_PACKAGE  the server package to depend on (default mysql-server-core)
set -euo pipefail
LOG_TAG=package
. "$(dirname "$0")/common.sh"
shopt -u patsub_replacement 2>/dev/null || true # '&' in a value stays '&' in ${x//pat/value}

PKG=mysql-clone-rs
TEMPLATES=$REPO/packaging/debian
REVISION=${PACKAGE_REVISION:-1}
[[ $REVISION =~ ^[0-9A-Za-z][0-9A-Za-z.+~]*$ ]] || fail "PACKAGE_REVISION '$REVISION' is not a Debian revision (digits, letters, . + ~)"

for tool in dpkg-deb gzip md5sum; do
  command -v "$tool" >/dev/null || fail "$tool is needed (package dpkg / gzip / coreutils)"
done

# The binaries: built here unless SKIP_BUILD=1, in CARGO_TARGET_DIR if set.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$PWD/$CARGO_TARGET_DIR ;; esac
  export CARGO_TARGET_DIR
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
build_plugin
SO=$TARGET_DIR/release/libmysql_clone.so
WATCH=$TARGET_DIR/release/clone-watch
[ -f "$SO" ] || fail "no $SO (build it: cargo build --release --workspace)"
[ -f "$WATCH" ] || fail "no $WATCH (build it: cargo build --release --workspace)"

# Versions: ours, and the MySQL release the plugin was built for.
CARGO_VERSION=$(awk '/^\[/ { s = ($0 == "[package]") } s && /^version[ \t]*=/ { sub(/^[^"]*"/, ""); sub(/".*/, ""); print; exit }' "$REPO/Cargo.toml")
[ -n "$CARGO_VERSION" ] || fail "cannot read the version from $REPO/Cargo.toml"
VERSION=$CARGO_VERSION-$REVISION

SRC=${MYSQL_SOURCE_DIR:-$REPO/.cache/mysql-source}
[ -f "$SRC/MYSQL_VERSION" ] || fail "no $SRC/MYSQL_VERSION: the MySQL source tree the plugin was built against (run ci/setup-env.sh, or set MYSQL_SOURCE_DIR)"
mysql_part() { sed -n "s/^MYSQL_VERSION_$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}[[:space:]]*$/\1/p" "$SRC/MYSQL_VERSION"; }
MAJOR=$(mysql_part MAJOR) MINOR=$(mysql_part MINOR) PATCH=$(mysql_part PATCH) EXTRA=$(mysql_part EXTRA)
[[ $MAJOR =~ ^[0-9]+$ && $MINOR =~ ^[0-9]+$ && $PATCH =~ ^[0-9]+$ ]] || fail "cannot read the MySQL version from $SRC/MYSQL_VERSION"
MYSQL_VERSION=$MAJOR.$MINOR.$PATCH
[ -z "$EXTRA" ] || log "WARNING: MySQL $MYSQL_VERSION$EXTRA: the Depends bounds are those of $MYSQL_VERSION"
# The Debian version of the mysql-source package the tree came from (ci/setup-env.sh
# writes it): its epoch, if any, goes into the bounds.
SERVER_PKG=${MYSQL_SERVER_PACKAGE:-mysql-server-core}
SERVER_DEB_VERSION=$(cat "$SRC/.version" 2>/dev/null || true)
EPOCH=
if [ -n "$SERVER_DEB_VERSION" ]; then
  case $SERVER_DEB_VERSION in *:*) EPOCH=${SERVER_DEB_VERSION%%:*}: ;; esac
  upstream=${SERVER_DEB_VERSION#*:}
  upstream=${upstream%-*}
  case $upstream in
    "$MYSQL_VERSION" | "$MYSQL_VERSION"[+~]*) ;;
    *) fail "$SRC/.version says $SERVER_DEB_VERSION, its MYSQL_VERSION says $MYSQL_VERSION" ;;
  esac
else
  log "WARNING: no $SRC/.version (the Debian version of the server): the bounds carry no epoch"
fi
if [ -f "$CACHE/server-version" ] && [ "$(cat "$CACHE/server-version")" != "$MYSQL_VERSION" ]; then
  log "WARNING: the test server ($CACHE/server-version) is MySQL $(cat "$CACHE/server-version"), the plugin was built for $MYSQL_VERSION"
fi
# This release and its Debian revisions, nothing before (9.7.4~rc) or after (9.7.5~rc, 9.7.5).
SERVER_DEPENDS="$SERVER_PKG (>= $EPOCH$MYSQL_VERSION), $SERVER_PKG (<< $EPOCH$MAJOR.$MINOR.$((PATCH + 1))~)"

ARCH=${PACKAGE_ARCH:-$(dpkg --print-architecture)}
MAINTAINER=${PACKAGE_MAINTAINER:-$(git -C "$REPO" log -1 --format='%an <%ae>' 2>/dev/null || true)}
MAINTAINER=${MAINTAINER:-clone-rs project <clone-rs@localhost>}
# Every timestamp in the package, and the changelog's date: the last commit's (reproducible).
EPOCH_S=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$EPOCH_S
COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

OUT=${PACKAGE_OUT_DIR:-$TARGET_DIR/debian}
mkdir -p "$OUT"
DEB=$OUT/${PKG}_${VERSION}_${ARCH}.deb
umask 022
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
# The layout dpkg-shlibdeps expects: debian/control, debian/<package>/.
ROOT=$STAGE/debian/$PKG
DOC=$ROOT/usr/share/doc/$PKG
install -d -m 0755 "$ROOT/DEBIAN" "$ROOT/usr/lib/mysql/plugin" "$ROOT/usr/bin" "$DOC"

log "packaging $PKG $VERSION for MySQL $MYSQL_VERSION from $TARGET_DIR/release"
install -m 0644 "$SO" "$ROOT/usr/lib/mysql/plugin/mysql_clone.so"
install -m 0755 "$WATCH" "$ROOT/usr/bin/clone-watch"
if [ "${PACKAGE_STRIP:-1}" = 1 ]; then
  command -v strip >/dev/null || fail "strip (binutils) is needed, or PACKAGE_STRIP=0"
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$ROOT/usr/lib/mysql/plugin/mysql_clone.so"
  strip --remove-section=.comment --remove-section=.note "$ROOT/usr/bin/clone-watch"
fi

if [ -f "$REPO/clone-watch/clone-watch.1" ]; then
  install -d -m 0755 "$ROOT/usr/share/man/man1"
  gzip -9n -c "$REPO/clone-watch/clone-watch.1" >"$ROOT/usr/share/man/man1/clone-watch.1.gz"
  chmod 0644 "$ROOT/usr/share/man/man1/clone-watch.1.gz"
else
  log "WARNING: no clone-watch/clone-watch.1 in the repository: the package has no man page for clone-watch"
fi

# Documentation; files over 4 kB compressed, as Debian policy (12.3) asks.
for f in README.md ARCHITECTURE.md; do
  [ -f "$REPO/$f" ] || fail "no $REPO/$f"
  gzip -9n -c "$REPO/$f" >"$DOC/$f.gz"
done
install -m 0644 "$TEMPLATES/README.Debian" "$DOC/README.Debian"

# changelog.Debian: one entry, this build.
LC_ALL=C date -u -R -d "@$EPOCH_S" >/dev/null || fail "SOURCE_DATE_EPOCH '$EPOCH_S' is not a time"
{
  printf '%s (%s) unstable; urgency=medium\n\n' "$PKG" "$VERSION"
  printf '  * Built by ci/package.sh from commit %s for MySQL %s\n' "$COMMIT" "$MYSQL_VERSION"
  printf '    (%s%s).\n\n' "$SERVER_PKG" "${SERVER_DEB_VERSION:+ $SERVER_DEB_VERSION}"
  printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$EPOCH_S")"
} | gzip -9n >"$DOC/changelog.Debian.gz"

# copyright: ours GPL-2.0-only; the crates statically linked, listed, and
# those that do not offer Apache-2.0 with their license files' text.
# indent: a text as the continuation lines of a copyright field (blank
# lines as " .", runs of them as one, none at the end).
indent() {
  sed 's/[[:space:]]*$//' | cat -s |
    awk '{ line[NR] = $0 } END { n = NR; while (n > 0 && line[n] == "") n--; for (i = 1; i <= n; i++) print line[i] }' |
    sed -e 's/^$/./' -e 's/^/ /'
}
crates=
if command -v cargo >/dev/null; then
  crates=$(cd "$REPO" && cargo tree --offline -e normal --workspace --prefix none -f '{p}|{l}' 2>/dev/null |
    sed 's/ (\*)$//' | grep -v ' (/' | grep . | LC_ALL=C sort -u) || crates=
fi
bundled=
if [ -n "$crates" ]; then
  crate_list=$(while IFS='|' read -r p lic; do printf '  %s (%s)\n' "$p" "$lic"; done <<<"$crates")
  while IFS='|' read -r p lic; do
    case $lic in *Apache-2.0*) continue ;; esac
    name=${p% v*} ver=${p##* v}
    dir=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -type d -name "$name-$ver" 2>/dev/null | head -1)
    files=()
    [ -n "$dir" ] && mapfile -t files < <(ls "$dir"/LICEN[CS]E* "$dir"/COPYING* 2>/dev/null)
    if [ ${#files[@]} = 0 ]; then
      log "WARNING: copyright: no license file of crate $name $ver ($lic) found in the cargo registry"
      bundled+=$'\n'"Files: crates.io/$name-$ver/*"$'\n'"Copyright: the authors of $name"$'\n'"License: $lic"$'\n'
      continue
    fi
    holders=$(grep -h -E '^[[:space:]]*Copyright (\([cC]\)|[0-9])' "${files[@]}" | sed 's/^[[:space:]]*//' | awk '!seen[$0]++')
    [ -n "$holders" ] || holders="the authors of $name"
    bundled+=$'\n'"Files: crates.io/$name-$ver/*"$'\n'"Copyright: $(head -1 <<<"$holders")"
    [ "$(wc -l <<<"$holders")" -gt 1 ] && bundled+=$'\n'"$(tail -n +2 <<<"$holders" | sed 's/^/ /')"
    bundled+=$'\n'"License: $lic"$'\n'"$(for f in "${files[@]}"; do cat "$f"; echo; done | indent)"$'\n'
  done <<<"$crates"
else
  log "WARNING: cannot list the crates (cargo tree --offline failed): the copyright file lists none"
  crate_list="  (not listed: cargo tree was not available when this package was built)"
fi
copyright=$(<"$TEMPLATES/copyright.in")
copyright=${copyright//@MAINTAINER@/$MAINTAINER}
copyright=${copyright//@MYSQL_VERSION@/$MYSQL_VERSION}
copyright=${copyright//@CRATES@/$crate_list}
copyright=${copyright//@BUNDLED@/$bundled}
printf '%s\n' "$copyright" >"$DOC/copyright"

# The libraries the binaries link: dpkg-shlibdeps (dpkg-dev), else the
# sonames mapped by hand, libc6's version from the symbols used.
shlib_depends() {
  if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$STAGE/debian/control"
    (cd "$STAGE" && dpkg-shlibdeps -O -e"${ROOT#"$STAGE"/}/usr/lib/mysql/plugin/mysql_clone.so" \
      -e"${ROOT#"$STAGE"/}/usr/bin/clone-watch" 2>"$STAGE/shlibdeps.err") | sed -n 's/^shlibs:Depends=//p'
    [ "${PIPESTATUS[0]}" = 0 ] || { cat "$STAGE/shlibdeps.err" >&2; fail "dpkg-shlibdeps"; }
    rm -f "$STAGE/debian/control"
    return
  fi
  log "WARNING: no dpkg-shlibdeps (package dpkg-dev): library dependencies from the sonames"
  local glibc deps=() lib
  glibc=$(objdump -T "$ROOT/usr/lib/mysql/plugin/mysql_clone.so" "$ROOT/usr/bin/clone-watch" |
    grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  for lib in $(readelf -d "$ROOT/usr/lib/mysql/plugin/mysql_clone.so" "$ROOT/usr/bin/clone-watch" |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u); do
    case $lib in
      libc.so.6 | ld-linux-x86-64.so.2) deps+=("libc6 (>= $glibc)") ;;
      libgcc_s.so.1) deps+=("libgcc-s1") ;;
      libstdc++.so.6) deps+=("libstdc++6") ;;
      libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1) deps+=("libc6 (>= $glibc)") ;;
      *) fail "a binary needs $lib: install dpkg-dev (dpkg-shlibdeps) to package it" ;;
    esac
  done
  printf '%s\n' "${deps[@]}" | awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g'
}
LIB_DEPENDS=$(shlib_depends)
DEPENDS=$SERVER_DEPENDS${LIB_DEPENDS:+, $LIB_DEPENDS}

# Maintainer scripts and control files.
for s in preinst postinst postrm; do
  install -m 0755 "$TEMPLATES/$s" "$ROOT/DEBIAN/$s"
done
(cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs -r -d '\n' md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/md5sums"
# Installed-Size, as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per other entry.
INSTALLED_SIZE=$(find "$ROOT" -mindepth 1 ! -path "$ROOT/DEBIAN" ! -path "$ROOT/DEBIAN/*" \
  \( -type f -printf '%s\n' -o -printf '1024\n' \) | awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
control=$(<"$TEMPLATES/control.in")
control=${control//@VERSION@/$VERSION}
control=${control//@ARCH@/$ARCH}
control=${control//@MAINTAINER@/$MAINTAINER}
control=${control//@INSTALLED_SIZE@/$INSTALLED_SIZE}
control=${control//@DEPENDS@/$DEPENDS}
control=${control//@MYSQL_VERSION@/$MYSQL_VERSION}
control=${control//@SERVER_PACKAGE@/$SERVER_PKG}
control=${control//@SERVER_DEB_VERSION@/${SERVER_DEB_VERSION:-$MYSQL_VERSION}}
printf '%s\n' "$control" >"$ROOT/DEBIAN/control"
chmod 0644 "$ROOT/DEBIAN/control"
if grep -q '@[A-Z_]*@' "$ROOT/DEBIAN/control" "$DOC/copyright"; then
  fail "a template placeholder was left unfilled: $(grep -h -o '@[A-Z_]*@' "$ROOT/DEBIAN/control" "$DOC/copyright" | sort -u | paste -sd' ' -)"
fi
long=$(sed -n '/^Description:/,$p' "$ROOT/DEBIAN/control" | awk 'length > 80')
[ -z "$long" ] || fail "description lines over 80 characters: $long"

find "$ROOT" -exec touch -h -d "@$EPOCH_S" {} +
rm -f "$DEB"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2 || fail "dpkg-deb --build"

# What the package must hold, as dpkg-deb reads it back.
listing=$(dpkg-deb -c "$DEB")
for want in "-rw-r--r-- root/root .* ./usr/lib/mysql/plugin/mysql_clone.so$" \
  "-rwxr-xr-x root/root .* ./usr/bin/clone-watch$" \
  "-rw-r--r-- root/root .* ./usr/share/doc/$PKG/copyright$" \
  "-rw-r--r-- root/root .* ./usr/share/doc/$PKG/changelog.Debian.gz$"; do
  grep -q -- "^$want" <<<"$listing" || fail "the package lacks an entry like: $want"
done
[ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ] || fail "the package's version is not $VERSION"
log "built $DEB"
log "Depends: $DEPENDS"
echo "$DEB"
