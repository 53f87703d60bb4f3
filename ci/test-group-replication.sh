#!/usr/bin/env bash
# Group Replication distributed recovery by clone, on loopback: a seed
# member bootstraps a group and holds data; a joiner with
# group_replication_clone_threshold=1 is provisioned by our clone plugin
# (a staged in-place clone: the joiner keeps its data until the clone is
# complete), restarts (under a supervisor), and goes ONLINE after START
# GROUP_REPLICATION with the group's data. Closes with "N passed, N failed".
set -uo pipefail
LOG_TAG=test-gr
. "$(dirname "$0")/common.sh"

SEED=${PORT_BASE:-13900}
JOINER=$((SEED + 1))
GCS_SEED=$((SEED + 10)) GCS_JOINER=$((SEED + 11))
SCRIPT_SERVERS=(gr-joiner gr-seed)
trap stop_script_servers EXIT

gr_options() { # gr_options GCS_PORT REPORT_PORT
  echo --plugin-load-add=mysql_clone.so --plugin-load-add=group_replication.so \
    --gtid-mode=ON --enforce-gtid-consistency=ON \
    --group-replication-group-name=6b7f3c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f \
    --group-replication-local-address=127.0.0.1:"$1" \
    --group-replication-group-seeds=127.0.0.1:$GCS_SEED,127.0.0.1:$GCS_JOINER \
    --group-replication-ip-allowlist=127.0.0.1/8 --group-replication-start-on-boot=OFF \
    --group-replication-clone-threshold=1 --group-replication-recovery-get-public-key=ON \
    --report-host=127.0.0.1 --report-port="$2"
}
recovery_user="SET SQL_LOG_BIN=0;
  CREATE USER rpl_user IDENTIFIED BY 'Rpl-Pass-1';
  GRANT REPLICATION SLAVE, BACKUP_ADMIN, CONNECTION_ADMIN, GROUP_REPLICATION_STREAM ON *.* TO rpl_user;
  SET SQL_LOG_BIN=1;
  CHANGE REPLICATION SOURCE TO SOURCE_USER='rpl_user', SOURCE_PASSWORD='Rpl-Pass-1' FOR CHANNEL 'group_replication_recovery'"
member_state() { sql "$1" "SELECT member_state FROM performance_schema.replication_group_members WHERE member_port=$2"; }
# wait_state PORT MEMBER_PORT STATE SECONDS: until the member is in STATE.
wait_state() { wait_until "$4" 0.5 -- in_state "$1" "$2" "$3"; }
in_state() { [ "$(member_state "$1" "$2" 2>/dev/null)" = "$3" ]; }

build_plugin
install_our_plugin

log "seed member on 127.0.0.1:$SEED bootstraps the group"
server_init gr-seed
server_start gr-seed "$SEED" "$OUR_PLUGIN_DIR" $(gr_options $GCS_SEED $SEED)
sql "$SEED" "$recovery_user; SET GLOBAL group_replication_bootstrap_group=ON; START GROUP_REPLICATION;
  SET GLOBAL group_replication_bootstrap_group=OFF"
wait_state "$SEED" "$SEED" ONLINE 60
check "seed ONLINE" "ONLINE" "$(member_state "$SEED" "$SEED")"
bash "$REPO/ci/gen-data.sh" "$SEED" "${TEST_DATA_MB:-100}" || fail "data generation"

log "joiner on 127.0.0.1:$JOINER, supervised, joins with clone threshold 1"
server_init gr-joiner
server_start_supervised gr-joiner "$JOINER" "$OUR_PLUGIN_DIR" $(gr_options $GCS_JOINER $JOINER)
sql "$JOINER" "$recovery_user; START GROUP_REPLICATION"
# The joiner clones, exits with status 16 and is started again.
wait_until 120 0.5 -- [ -s "$ROOTFS$(server_dir gr-joiner)/exit-codes" ]
check "joiner restarted after clone (status 16)" "16" "$(head -1 "$ROOTFS$(server_dir gr-joiner)/exit-codes" 2>/dev/null)"
server_wait gr-joiner "$JOINER"
check "joiner's clone was staged: the joiner kept its data until the swap was committed" "1" \
  "$(grep -c 'Staged in-place clone: committed' "$ROOTFS$(server_dir gr-joiner)/error.log")"
check "joiner's clone_status" "Completed	0	127.0.0.1:$SEED" \
  "$(sql "$JOINER" "SELECT state, error_no, source FROM performance_schema.clone_status")"
sql "$JOINER" "START GROUP_REPLICATION"
wait_state "$JOINER" "$JOINER" ONLINE 120
check "joiner ONLINE" "ONLINE" "$(member_state "$JOINER" "$JOINER")"
check "seed sees two ONLINE members" "2" "$(sql "$SEED" "SELECT COUNT(*) FROM performance_schema.replication_group_members WHERE member_state='ONLINE'")"
sql "$SEED" "CREATE TABLE bench.after_join (id INT PRIMARY KEY); INSERT INTO bench.after_join VALUES (1), (2)"
joiner_has_after_join() { [ "$(sql "$JOINER" "SELECT COUNT(*) FROM information_schema.tables WHERE table_name='after_join'" 2>/dev/null)" = 1 ]; }
wait_until 30 0.5 -- joiner_has_after_join
same_checksums() { [ "$(checksums "$SEED")" = "$(checksums "$JOINER")" ]; }
wait_until 30 0.5 -- same_checksums
check "joiner has the group's data" "$(checksums "$SEED")" "$(checksums "$JOINER")"
check "joiner's gtid_executed equals the seed's" "$(sql "$SEED" "SELECT @@global.gtid_executed")" "$(sql "$JOINER" "SELECT @@global.gtid_executed")"

report test-group-replication
