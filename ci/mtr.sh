#!/usr/bin/env bash
# Runs mysql-test-run suites from the sid root filesystem against one clone
# plugin installed as mysql_clone.so (the name MTR looks for), and prints the
# result of every test: pass, fail (with the cause MTR gave), skipped (with
# its reason). The stock plugin is put back afterwards.
#
#   ci/mtr.sh [--plugin ours|stock] [--suite clone|clone_rs|...] [--big-test]
#             [--record] [other mysql-test-run options] [test ...]
#
# Exit status: 0 when no test failed.
set -uo pipefail
LOG_TAG=mtr
. "$(dirname "$0")/common.sh"

plugin=ours suite=clone extra=() tests=()
while [ $# -gt 0 ]; do
  case $1 in
    --plugin) plugin=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --big-test) extra+=(--big-test); shift ;;
    --*) extra+=("$1"); shift ;;
    *) tests+=("$1"); shift ;;
  esac
done

plugdir=$ROOTFS$STOCK_PLUGIN_DIR
restore() {
  cp "$plugdir/mysql_clone_stock.so" "$plugdir/mysql_clone.so"
  mountpoint -q "$ROOTFS/proc" && umount "$ROOTFS/proc"
}
trap restore EXIT
case $plugin in
  ours) build_plugin; [ -f "$PLUGIN_SO" ] || fail "no plugin built"; cp "$PLUGIN_SO" "$plugdir/mysql_clone.so" ;;
  stock) restore ;;
  *) fail "--plugin ours|stock" ;;
esac

# The in-place clone tests (*_replace) restart a server under mysqld_safe.
# Two things this chroot lacks for that: /proc (mysqld_safe looks for its
# mysqld there), and a user: MTR runs as root, and mysqld_safe started as
# root switches mysqld to the user `mysql`, which cannot open the root-owned
# test files, so mysqld exits and the test waits until it times out. A
# wrapper passes --user=root, and keeps the restarted server on loopback.
safe=$ROOTFS/usr/lib/mysql-test/bin/mysqld_safe
if ! grep -q 'clone-rs wrapper' "$safe"; then
  mv "$safe" "$safe.real"
  cat >"$safe" <<'WRAPPER'
#!/bin/sh
# clone-rs wrapper (ci/mtr.sh): run mysqld as root, on loopback only.
# mysqld_safe wants --defaults-file first.
first=$1; shift
exec sh /usr/lib/mysql-test/bin/mysqld_safe.real "$first" --user=root \
  --bind-address=127.0.0.1 --mysqlx-bind-address=127.0.0.1 "$@"
WRAPPER
  chmod 755 "$safe"
fi
mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"

# Our own suite lives in the repository; MTR finds suites in its tree.
own_suite=$REPO/mysql-test/$suite
installed_suite=$ROOTFS/usr/lib/mysql-test/suite/$suite
if [ -d "$own_suite" ]; then
  rm -rf "$installed_suite" && cp -r "$own_suite" "$installed_suite"
fi

vardir=/tmp/mtr-$suite
rm -rf "$ROOTFS$vardir"
out=$CACHE/mtr-$suite-$plugin.log
log "running suite $suite with the $plugin plugin (log: $out)"
in_root sh -c "cd /usr/lib/mysql-test && perl mysql-test-run.pl \
  --client-bindir=/usr/lib/mysql-test/bin --vardir=$vardir --suite=$suite \
  --parallel=${MTR_PARALLEL:-2} --force --max-test-fail=0 --retry=0 \
  --testcase-timeout=${MTR_TESTCASE_TIMEOUT:-15} --suite-timeout=${MTR_SUITE_TIMEOUT:-120} \
  ${extra[*]} ${tests[*]}" >"$out" 2>&1
status=$?

# --record on our suite: keep the recorded results in the repository.
if [ -d "$own_suite" ] && [[ " ${extra[*]} " == *" --record "* ]]; then
  cp "$installed_suite"/r/*.result "$own_suite/r/"
  log "recorded results copied to $own_suite/r"
fi

# One line per test: "<result> <test> [reason]".
results=$(awk '
  /\[ (pass|fail|skipped|disabled) \]/ {
    name = ""; for (i = 1; i <= NF; i++) if ($i ~ /^[a-z_0-9]+\.[A-Za-z_0-9-]+$/) { name = $i; break }
    if (name == "") next
    res = $0; sub(/.*\[ /, "", res); sub(/ \].*/, "", res)
    reason = $0; sub(/.*\] */, "", reason); gsub(/^[0-9]+$/, "", reason)
    printf "%-8s %-45s %s\n", res, name, reason
  }' "$out" | sort -k2 | uniq)
echo "$results"
grep -E "^(Completed|Failing test|mysql-test-run: \*\*\* ERROR)" "$out" | head -5
# What MTR said about each failure (the statement, the server log, or the
# timeout), at most 60 lines each, for a log that is not at hand (CI).
awk '/\[ fail \]/ { n = 60; print "---- " $0; next }
  /\[ (pass|skipped|disabled) \]/ { n = 0 }
  n > 0 { print "     | " $0; n-- }' "$out"
# No test ran: MTR's own last words.
grep -Eq '\[ (pass|fail|skipped) \]' "$out" || tail -30 "$out" | sed 's/^/     | /'
count() { grep -c "^$1 " <<<"$results"; }
pass=$(count pass); failn=$(count fail); skip=$(count skipped)
echo "mtr $suite ($plugin plugin): $pass passed, $failn failed, $skip skipped"
# A run that passed leaves no servers' data behind (one that failed keeps
# them for a look).
[ "$failn" = 0 ] && [ "$status" = 0 ] && rm -rf "${ROOTFS:?}$vardir"
[ "$failn" = 0 ] && [ "$pass" -gt 0 ]
