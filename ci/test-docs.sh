#!/usr/bin/env bash
# The documentation's commands, run, so that the docs cannot rot: every
# fenced code block of README.md and docs/*.md is run here, or is marked as
# not a command, or as not run here (and then counted and listed with its
# reason). docs/testing.md ("The documentation's commands") tells how to
# write them; the tags, after the block's language:
#
#   ```sql SERVER... [expect=ERRNO] [contains=REGEX] [rows=N] [until=REGEX] [restarts]
#       The statements, in one mysql session (as root) on each SERVER in
#       turn: donor, recipient (under a supervisor), standalone (no
#       supervisor; its plugin directory lacks ha_example.so), seed and
#       joiner (a Group Replication pair, started with the options of the
#       ```ini cnf=group-member block). expect: the block must fail with
#       that error and no other (every statement runs); contains: the output
#       (errors included) must match; rows: it prints N rows; until: run
#       again, once a second for up to 120 s, until the output matches;
#       restarts: the server restarts afterwards (an in-place clone), and
#       the next block waits until it answers again.
#   ```sh [server] [background] [build]
#       bash -e -o pipefail in the repository, on this host; with `server`
#       inside the root filesystem (a machine with MySQL: mysql on PATH, and
#       clone-watch); background: it runs alongside the next block and must
#       end with status 0 within 120 s after that one; build: builds (not
#       run with SKIP_BUILD=1, and then listed).
#   ```ini cnf=NAME      an option file the servers above are started with
#   ```text              output, or the text of a file: not a command
#   ```LANG no-test REASON...
#       not run here; counted and listed with REASON.
#
# Blocks may use placeholders ($DONOR_HOST, $DONOR_PORT, $CLONE_DIR, ... see
# subst below), which get this run's values before the block runs. A block
# without a tag, an unknown tag or an unknown placeholder fails, and so does
# an indented code block anywhere but at the top of the README, whose
# first lines are its two commands: ci/demo.sh runs here on small data
# (DEMO_MB, 20 by default), ci/test.sh is the whole suite and is listed as
# not run here.
#
#   ci/test-docs.sh [--list]    (--list: the blocks and their tags, nothing run)
#
# Prints "ok     FILE:LINE ..." or "FAILED FILE:LINE ..." per block (with
# VERBOSE=1 the output of every block), then the blocks not run, and closes
# with "test-docs: N passed, M failed". Environment: SKIP_BUILD=1,
# PORT_BASE (14400), TEST_DATA_MB (20), DEMO_MB (20), BLOCK_TIMEOUT (300 s).
set -uo pipefail
LOG_TAG=test-docs
. "$(dirname "$0")/common.sh"
SERVERS=docs

PORT=${PORT_BASE:-14400}
DONOR_PORT=$PORT RECIPIENT_PORT=$((PORT + 1)) STANDALONE_PORT=$((PORT + 2))
SEED_PORT=$((PORT + 3)) JOINER_PORT=$((PORT + 4))
# The demo's donor; its recipient is the next port.
DEMO_PORT=$((PORT + 5))
SEED_GCS_PORT=$((PORT + 13)) JOINER_GCS_PORT=$((PORT + 14))
GTID=(--gtid-mode=ON --enforce-gtid-consistency=ON)
BLOCK_TIMEOUT=${BLOCK_TIMEOUT:-300}
# Inside the root filesystem: clone-watch for the `sh server` blocks, the
# standalone server's plugin directory, the new directories the blocks
# clone into ($CLONE_DIR, one per block), and $SMALL_DIR on a small tmpfs.
DOCS_BIN=/opt/clone-rs/docs-bin
LEAN_PLUGIN_DIR=/opt/clone-rs/docs-plugin-lean
CLONES=/clone-rs/docs-clones
SMALL_DIR=/clone-rs/docs-small
WORK=$CACHE/test-docs
SCRIPT_SERVERS=(joiner seed standalone recipient donor)

# subst TEXT [MEMBER]: TEXT with this run's values in place of the
# placeholders; MEMBER (seed or joiner) gives the $MEMBER_* of an option file.
# shellcheck disable=SC2016 # the patterns are the placeholders' text
subst() {
  local t=$1 mport="" mgcs=""
  case ${2:-} in
    seed) mport=$SEED_PORT mgcs=$SEED_GCS_PORT ;;
    joiner) mport=$JOINER_PORT mgcs=$JOINER_GCS_PORT ;;
  esac
  t=${t//'$DONOR_HOST'/127.0.0.1}
  t=${t//'$DONOR_PORT'/$DONOR_PORT}
  t=${t//'$DONOR_CA'/$(server_dir donor)/data/ca.pem}
  t=${t//'$RECIPIENT_HOST'/127.0.0.1}
  t=${t//'$RECIPIENT_PORT'/$RECIPIENT_PORT}
  t=${t//'$RECIPIENT_CA'/$(server_dir recipient)/data/ca.pem}
  t=${t//'$SEED_HOST'/127.0.0.1}
  t=${t//'$SEED_PORT'/$SEED_PORT}
  t=${t//'$SEED_GCS_PORT'/$SEED_GCS_PORT}
  t=${t//'$JOINER_HOST'/127.0.0.1}
  t=${t//'$JOINER_PORT'/$JOINER_PORT}
  t=${t//'$JOINER_GCS_PORT'/$JOINER_GCS_PORT}
  t=${t//'$MEMBERS_NETWORK'/127.0.0.1/8}
  t=${t//'$CLONE_DIR'/$CLONES/b$block}
  t=${t//'$SMALL_DIR'/$SMALL_DIR}
  if [ -n "$mport" ]; then
    t=${t//'$MEMBER_HOST'/127.0.0.1}
    t=${t//'$MEMBER_PORT'/$mport}
    t=${t//'$MEMBER_GCS_PORT'/$mgcs}
  fi
  printf '%s' "$t"
}
# placeholders_left TEXT: the $NAMES subst does not know.
placeholders_left() { grep -oE '\$[A-Z][A-Z0-9_]*' <<<"$1" | sort -u | paste -sd' ' -; }

passed=0 failed=0 texts=0 block=0
notrun=()
# good LABEL [OUTPUT] and bad LABEL [DETAILS...]: count and print a block's
# result (the output of a good one with VERBOSE=1; the last 40 lines of a
# bad one's details, the empty ones left out).
good() {
  passed=$((passed + 1))
  printf 'ok     %s\n' "$1"
  if [ "${VERBOSE:-0}" = 1 ] && [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/       /'; fi
  return 0
}
bad() {
  local d
  failed=$((failed + 1))
  printf 'FAILED %s\n' "$1"
  shift
  for d in "$@"; do [ -n "$d" ] && printf '%s\n' "$d"; done | tail -40 | sed 's/^/       /'
  return 0
}

# ---- Reading the documents ----------------------------------------------

# The blocks, in order: where (FILE:LINE), the tags (info string), the text.
B_WHERE=() B_INFO=() B_BODY=()
# The README's top: its indented lines before the first "## " heading.
TOP=""

# read_doc FILE: adds FILE's fenced blocks; a fence not at the start of its
# line, or an indented code block (but the README's top), fails.
read_doc() {
  local file=$1 rel=${1#"$REPO"/} n=0 line prev="" fence=0 info="" start=0 body="" top=0
  [ "$rel" = README.md ] && top=1
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    if [ "$fence" = 1 ]; then
      if [[ $line =~ ^\`\`\`[[:space:]]*$ ]]; then
        fence=0
        B_WHERE+=("$rel:$start") B_INFO+=("$info") B_BODY+=("$body")
      else
        body+=$line$'\n'
      fi
      prev=x
      continue
    fi
    [[ $line == '## '* ]] && top=0
    if [[ $line =~ ^\`\`\`(.*)$ ]]; then
      fence=1 start=$n body=""
      info=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"${BASH_REMATCH[1]}")
    elif [[ $line =~ ^[[:space:]]+\`\`\` ]]; then
      bad "$rel:$n: a fence that does not start its line (this script reads fences at the line's start)"
    elif [[ $line =~ ^(\ \ \ \ |$'\t') ]]; then
      if [ "$top" = 1 ]; then
        TOP+="$line"$'\n'
      elif [ -z "${prev//[[:space:]]/}" ]; then
        bad "$rel:$n: an indented code block (write a fenced block with its tags)"
      fi
    fi
    prev=$line
  done <"$file"
  [ "$fence" = 0 ] || bad "$rel:$start: a code block that is never closed"
}

# top_commands: the README's top commands, without their comments.
top_commands() { sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' <<<"$TOP"; }

read_doc "$REPO/README.md"
docs=("$REPO"/docs/*.md)
[ -e "${docs[0]}" ] || bad "docs/: no documents"
for f in "${docs[@]}"; do [ -e "$f" ] && read_doc "$f"; done

if [ "${1:-}" = --list ]; then
  printf '%s\n' "README.md top: $(top_commands | paste -sd';' -)"
  for i in "${!B_WHERE[@]}"; do printf '%-28s %s\n' "${B_WHERE[$i]}" "${B_INFO[$i]}"; done
  [ "$failed" = 0 ]
  exit
fi

# ---- Servers ------------------------------------------------------------

cleanup() {
  [ -n "${bg_pid:-}" ] && kill -- -"$bg_pid" 2>/dev/null
  stop_script_servers
  mountpoint -q "$ROOTFS$SMALL_DIR" && umount "$ROOTFS$SMALL_DIR"
  rm -rf "${ROOTFS:?}$CLONES" "${ROOTFS:?}$LEAN_PLUGIN_DIR" "${ROOTFS:?}$DOCS_BIN"
}
trap cleanup EXIT

port_of() {
  case $1 in
    donor) echo "$DONOR_PORT" ;; recipient) echo "$RECIPIENT_PORT" ;; standalone) echo "$STANDALONE_PORT" ;;
    seed) echo "$SEED_PORT" ;; joiner) echo "$JOINER_PORT" ;;
  esac
}
supervised() { [ "$1" = recipient ] || [ "$1" = joiner ]; }
# restarts_of NAME: how many times the supervisor saw the server exit.
restarts_of() { local f; f=$ROOTFS$(server_dir "$1")/exit-codes; if [ -f "$f" ]; then wc -l <"$f"; else echo 0; fi; }
restarted() { [ "$(restarts_of "$1")" -gt "$2" ]; }

# The option files of ```ini cnf=NAME blocks, by NAME.
declare -A CNF=()
# member_options NAME: the group-member option file as mysqld options for
# member NAME, one a line.
member_options() {
  local text
  [ -n "${CNF[group-member]:-}" ] || { log "no \`\`\`ini cnf=group-member block before the first seed or joiner block"; return 1; }
  text=$(subst "${CNF[group-member]}" "$1")
  [ -z "$(placeholders_left "$text")" ] || { log "unknown placeholders in the group-member options: $(placeholders_left "$text")"; return 1; }
  awk '/^[[:space:]]*([#;[]|$)/ { next }
    { l = $0; sub(/^[[:space:]]+/, "", l); sub(/[[:space:]]+$/, "", l)
      if (index(l, "=")) { k = l; sub(/[[:space:]]*=.*/, "", k); v = l; sub(/^[^=]*=[[:space:]]*/, "", v); print "--" k "=" v }
      else print "--" l }' <<<"$text"
}

started=" "
# ensure_server NAME: starts the server at the first block that uses it
# (donor and recipient are started before the first block).
ensure_server() {
  local opts=() f
  [[ $started == *" $1 "* ]] && return 0
  case $1 in
    standalone)
      rm -rf "${ROOTFS:?}$LEAN_PLUGIN_DIR"; mkdir -p "$ROOTFS$LEAN_PLUGIN_DIR"
      for f in "$ROOTFS$OUR_PLUGIN_DIR"/*; do
        [ "$(basename "$f")" = ha_example.so ] || cp -P "$f" "$ROOTFS$LEAN_PLUGIN_DIR/"
      done
      log "starting standalone on 127.0.0.1:$STANDALONE_PORT (no supervisor, no ha_example.so)"
      server_init standalone
      SOFT_WAIT=1 server_start standalone "$STANDALONE_PORT" "$LEAN_PLUGIN_DIR" --plugin-load-add=mysql_clone.so "${GTID[@]}" || return 1
      ;;
    seed | joiner)
      mapfile -t opts < <(member_options "$1")
      [ "${#opts[@]}" -gt 0 ] || return 1
      log "starting $1 on 127.0.0.1:$(port_of "$1") with the group-member options: ${opts[*]}"
      server_init "$1"
      if [ "$1" = seed ]; then
        SOFT_WAIT=1 server_start seed "$SEED_PORT" "$OUR_PLUGIN_DIR" "${opts[@]}" || return 1
      else
        SOFT_WAIT=1 server_start_supervised joiner "$JOINER_PORT" "$OUR_PLUGIN_DIR" "${opts[@]}" || return 1
      fi
      ;;
    *) return 1 ;;
  esac
  started+="$1 "
}

# ---- Running blocks -----------------------------------------------------

# run_sql_on LABEL SERVER SQL EXPECT CONTAINS ROWS UNTIL RESTARTS
run_sql_on() {
  local label=$1 s=$2 sql=$3 expect=$4 contains=$5 rows=$6 until=$7 restarts=$8
  local port before out err rc why others t0=$SECONDS
  ensure_server "$s" || { bad "$label" "server $s did not start"; return; }
  port=$(port_of "$s")
  before=$(restarts_of "$s")
  if [ "$restarts" = 1 ] && ! supervised "$s"; then bad "$label" "restarts: $s has no supervisor"; return; fi
  while :; do
    why=""
    out=$(printf '%s\n' "$sql" | timeout "$BLOCK_TIMEOUT" chroot "$ROOTFS" mysql -uroot -h127.0.0.1 -P"$port" -N -B ${expect:+--force} 2>"$WORK/stderr")
    rc=$?
    err=$(cat "$WORK/stderr")
    if [ -n "$expect" ]; then
      others=$(grep '^ERROR ' <<<"$err" | grep -v "^ERROR $expect ")
      grep -q "^ERROR $expect " <<<"$err" || why="it did not fail with error $expect"
      [ -z "$others" ] || why="other errors: $others"
    elif [ "$rc" != 0 ]; then
      why="exit status $rc"
    fi
    if [ -z "$why" ] && [ -n "$contains" ] && ! grep -Eq -- "$contains" <<<"$out"$'\n'"$err"; then why="no line matches $contains"; fi
    if [ -z "$why" ] && [ -n "$rows" ] && [ "$(grep -c . <<<"$out")" != "$rows" ]; then why="not $rows rows"; fi
    if [ -z "$why" ] && [ -n "$until" ] && ! grep -Eq -- "$until" <<<"$out"; then why="no line matched $until within 120 s"; fi
    if [ -n "$until" ] && [ -n "$why" ] && [ $((SECONDS - t0)) -lt 120 ]; then sleep 1; continue; fi
    break
  done
  if [ -z "$why" ] && [ "$restarts" = 1 ]; then
    if ! wait_until 180 0.5 -- restarted "$s" "$before"; then
      why="the server did not restart"
    elif ! SOFT_WAIT=1 server_wait "$s" "$port"; then
      why="the server did not answer after its restart"
    fi
  fi
  if [ -z "$why" ]; then good "$label" "$out$err"; else bad "$label" "$why" "$out" "$err"; fi
}

# run_sql WHERE INFO BODY
run_sql() {
  local where=$1 body=$3 w s sql left servers=() expect="" contains="" rows="" until="" restarts=0 words
  read -r -a words <<<"$2"
  for w in "${words[@]:1}"; do
    case $w in
      donor | recipient | standalone | seed | joiner) servers+=("$w") ;;
      expect=*) expect=${w#expect=} ;;
      contains=*) contains=${w#contains=} ;;
      rows=*) rows=${w#rows=} ;;
      until=*) until=${w#until=} ;;
      restarts) restarts=1 ;;
      *) bad "$where: unknown tag '$w' on a sql block"; return ;;
    esac
  done
  [ "${#servers[@]}" -gt 0 ] || { bad "$where: a sql block names no server (donor, recipient, standalone, seed, joiner)"; return; }
  sql=$(subst "$body")
  left=$(placeholders_left "$sql")
  [ -z "$left" ] || { bad "$where: unknown placeholders $left"; return; }
  for s in "${servers[@]}"; do
    run_sql_on "$where sql on $s" "$s" "$sql" "$expect" "$contains" "$rows" "$until" "$restarts"
  done
  rm -rf "${ROOTFS:?}$CLONES/b$block"
}

bg_pid="" bg_label="" bg_block=0
# bg_done: whether the background block ended (a zombie until waited for).
bg_done() {
  local state
  state=$(awk '{ print $3 }' "/proc/$bg_pid/stat" 2>/dev/null)
  [ -z "$state" ] || [ "$state" = Z ]
}
finish_background() {
  [ -n "$bg_pid" ] || return 0
  local rc out
  if wait_until 120 0.5 -- bg_done; then
    wait "$bg_pid"; rc=$?
  else
    kill -- -"$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null; rc=timeout
  fi
  out=$(cat "$WORK/background.out")
  if [ "$rc" = 0 ]; then good "$bg_label" "$out"; else bad "$bg_label" "exit status $rc" "$out"; fi
  rm -rf "${ROOTFS:?}$CLONES/b$bg_block"
  bg_pid="" bg_label=""
}

# run_sh WHERE INFO BODY
run_sh() {
  local where=$1 body=$3 w words inroot=0 background=0 build=0 code out rc cmd=()
  read -r -a words <<<"$2"
  for w in "${words[@]:1}"; do
    case $w in
      server) inroot=1 ;;
      background) background=1 ;;
      build) build=1 ;;
      *) bad "$where: unknown tag '$w' on a sh block"; return ;;
    esac
  done
  if [ "$build" = 1 ] && [ "${SKIP_BUILD:-0}" = 1 ]; then
    notrun+=("$where (sh build): SKIP_BUILD=1")
    return
  fi
  code=$(subst "$body")
  if [ "$inroot" = 1 ]; then
    cmd=(chroot "$ROOTFS" env -i "PATH=$DOCS_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
      HOME=/root bash -e -o pipefail -c "cd / && $code")
  else
    cmd=(bash -e -o pipefail -c "$code")
  fi
  if [ "$background" = 1 ]; then
    [ -z "$bg_pid" ] || { bad "$where: a background block while another still runs"; return; }
    (cd "$REPO" && exec setsid timeout "$BLOCK_TIMEOUT" "${cmd[@]}") >"$WORK/background.out" 2>&1 </dev/null &
    bg_pid=$! bg_label="$where sh (background)" bg_block=$block
    sleep 1
    return
  fi
  out=$(cd "$REPO" && timeout "$BLOCK_TIMEOUT" "${cmd[@]}" 2>&1 </dev/null)
  rc=$?
  if [ "$rc" = 0 ]; then good "$where sh" "$out"; else bad "$where sh" "exit status $rc" "$out"; fi
  rm -rf "${ROOTFS:?}$CLONES/b$block"
}

# run_block WHERE INFO BODY
run_block() {
  local where=$1 info=$2 body=$3 lang reason pending=$bg_pid
  block=$((block + 1))
  lang=${info%%[[:space:]]*}
  if [[ " $info " =~ [[:space:]]no-test[:[:space:]](.*)$ ]]; then
    reason=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"${BASH_REMATCH[1]}")
    if [ -n "$reason" ]; then notrun+=("$where ($lang): $reason"); else bad "$where: no-test without a reason"; fi
  else
    case $lang in
      sql) run_sql "$where" "$info" "$body" ;;
      sh) run_sh "$where" "$info" "$body" ;;
      ini)
        if [[ $info =~ cnf=([^[:space:]]+) ]]; then CNF[${BASH_REMATCH[1]}]=$body; fi
        texts=$((texts + 1))
        ;;
      text) texts=$((texts + 1)) ;;
      '') bad "$where: a code block without a tag (sql, sh, ini, text, or no-test with a reason)" ;;
      *) bad "$where: unknown block language '$lang'" ;;
    esac
  fi
  # A background block runs alongside the block after it.
  [ -n "$pending" ] && finish_background
  return 0
}

# ---- The run ------------------------------------------------------------

mkdir -p "$WORK"
bash "$REPO/ci/setup-env.sh" || fail "ci/setup-env.sh"
build_plugin
install_our_plugin
mkdir -p "$ROOTFS$DOCS_BIN"
cp "$REPO/target/release/clone-watch" "$ROOTFS$DOCS_BIN/" || fail "no target/release/clone-watch"
rm -rf "${ROOTFS:?}$CLONES"; mkdir -p "$ROOTFS$CLONES" "$ROOTFS$SMALL_DIR"
mountpoint -q "$ROOTFS$SMALL_DIR" || mount -t tmpfs -o size=8m clone-rs-docs-small "$ROOTFS$SMALL_DIR" || fail "mount a tmpfs on $ROOTFS$SMALL_DIR"

# The README's first lines: its two commands, as they must stay.
top=$(top_commands | paste -sd';' -)
if [ "$top" = "bash ci/demo.sh;bash ci/test.sh" ]; then
  good "README.md top: the two commands, bash ci/demo.sh and bash ci/test.sh"
else
  bad "README.md top: the two commands are not 'bash ci/demo.sh' and 'bash ci/test.sh'" "$TOP"
fi
notrun+=("README.md top (bash ci/test.sh): the whole suite, which runs this script; CI runs it (.ci/run)")
log "the README's main command: bash ci/demo.sh, on ${DEMO_MB:-20} MB"
out=$(SKIP_BUILD=1 SERVERS=docs DEMO_MB=${DEMO_MB:-20} DONOR_PORT=$DEMO_PORT timeout "$BLOCK_TIMEOUT" bash "$REPO/ci/demo.sh" 2>&1 </dev/null)
rc=$?
if [ "$rc" = 0 ]; then good "README.md top: bash ci/demo.sh (DEMO_MB=${DEMO_MB:-20})" "$out"; else bad "README.md top: bash ci/demo.sh" "exit status $rc" "$out"; fi

log "donor on 127.0.0.1:$DONOR_PORT with ~${TEST_DATA_MB:-20} MB, recipient on 127.0.0.1:$RECIPIENT_PORT under a supervisor; neither has loaded the plugin yet (the README does)"
server_init donor
server_start donor "$DONOR_PORT" "$OUR_PLUGIN_DIR" "${GTID[@]}"
bash "$REPO/ci/gen-data.sh" "$DONOR_PORT" "${TEST_DATA_MB:-20}" || fail "data generation"
server_init recipient
server_start_supervised recipient "$RECIPIENT_PORT" "$OUR_PLUGIN_DIR" "${GTID[@]}"
started=" donor recipient "

for i in "${!B_WHERE[@]}"; do
  run_block "${B_WHERE[$i]}" "${B_INFO[$i]}" "${B_BODY[$i]}"
done
finish_background

echo "text and option blocks (not commands): $texts"
echo "not run here: ${#notrun[@]}"
for r in "${notrun[@]}"; do echo "  $r"; done
report test-docs
