#!/usr/bin/env bash
# gen-data.sh PORT MB [text|random]: fills schema `bench` on the server at
# 127.0.0.1:PORT with about MB megabytes of InnoDB data: four plain tables
# with a secondary index, and one ROW_FORMAT=COMPRESSED table.
#   text (the default): deterministic content, mostly hex digests with some
#     repetition: zstd level 1 compresses the plain tables' files about
#     2.4:1 (realistic InnoDB data, not a best case).
#   random: the same rows with RANDOM_BYTES bodies, which no compressor
#     shrinks, as encrypted or already compressed data.
set -euo pipefail
. "$(dirname "$0")/common.sh"
port=$1 mb=$2 kind=${3:-text}
case $kind in
  text) columns="h CHAR(64) NOT NULL, body VARCHAR(1024) NOT NULL"
    values="SHA2(CONCAT('\$t', n), 256), CONCAT(SHA2(n, 512), SHA2(n + 1000000007, 512), SHA2(n * 3, 512), SHA2(n * 5, 512), SHA2(n * 7, 512), SHA2(n * 7, 512), SHA2(n * 11, 512), SHA2(n * 3, 256))" ;;
  random) columns="h BINARY(32) NOT NULL, body VARBINARY(1024) NOT NULL"
    values="RANDOM_BYTES(32), RANDOM_BYTES(1024)" ;;
  *) fail "gen-data.sh: text or random, not $kind" ;;
esac
# ~1.1 KB per row on disk, spread over 5 tables.
rows=$(( mb * 1048576 / 1100 / 5 + 1 ))
sql "$port" "CREATE DATABASE IF NOT EXISTS bench"
for t in t1 t2 t3 t4 wide; do
  fmt=""; [ "$t" = wide ] && fmt="ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8"
  sql "$port" "DROP TABLE IF EXISTS bench.$t;
    CREATE TABLE bench.$t (id INT PRIMARY KEY, k INT NOT NULL, $columns, KEY (k)) $fmt"
  done_rows=0
  while [ "$done_rows" -lt "$rows" ]; do
    n=$(( rows - done_rows )); [ "$n" -gt 50000 ] && n=50000
    sql "$port" "SET SESSION cte_max_recursion_depth = 1000000;
      INSERT INTO bench.$t
      WITH RECURSIVE seq(n) AS (SELECT $done_rows + 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $done_rows + $n)
      SELECT n, (n * 7919) % 100003, ${values//\$t/$t} FROM seq"
    done_rows=$(( done_rows + n ))
  done
done
