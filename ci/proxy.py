#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 for tests: forwards LISTEN_PORT to TARGET_PORT.
On SIGUSR1 it cuts every open connection (the listener stays, so clients
can connect again): a network failure. With a MODE it is also a hostile
donor (or recipient) made from an honest one: it rewrites the first InnoDB
descriptor that matches the tampering; that needs a connection without TLS
or compression (CLONE ... REQUIRE NO SSL), so that both directions are
plain MySQL packets. Stops on SIGTERM.

    proxy.py LISTEN_PORT TARGET_PORT [MODE ARG...]

MODE:
  rename SUFFIX NAME  the file descriptor whose name ends with SUFFIX names
                      NAME instead
  index SUFFIX N      that file descriptor carries file index N
  chunk N             the first data descriptor carries chunk number N
  files N             the state descriptor that starts the file copy
                      announces N files
  ack                 the recipient's first COM_ACK acknowledges with a
                      file descriptor instead of a state descriptor
  worker-start        on a worker connection, a START of the master's
                      state with 1000 times its counts, then a data
                      descriptor with a chunk past the master's count
  init-flood N        N collation messages of 64 KiB in the answer to INIT
  error-lines         the donor answers INIT with an error whose text holds
                      line breaks (and a would-be binlog file, position and
                      GTID set after them)
  data-short          the first data block of 32 KiB or more arrives 16 KiB
                      short of what its descriptor announces
  zstd-length N       the first zstd data message (between our plugins,
                      clone_enable_compression=ON) announces a block of N
                      bytes
  zstd-frame          the first zstd data message carries a damaged frame
  flip                one bit flipped in the middle of the first data block
                      of 16 KiB or more (DATA, or DATA_CHECKED between our
                      plugins)
  reconnect-window N  the donor announces N minutes for
                      clone_donor_timeout_after_network_failure
  stall-ack           the donor's answer to the first COM_ACK never arrives
                      (the connection stays open)
  bad-command KIND    a worker's COM_ATTACH becomes an empty packet (KIND
                      empty) or arrives out of sequence (KIND sequence);
                      logs "connection ended after N s" when that
                      connection ends
  stall-worker        a worker's stream stops after its first data block
                      (the connection stays open)
  hold-cut            on SIGUSR2 stops reading what donors send (what was
                      read still reaches the recipient); on a second
                      SIGUSR2 reads again, passes the master's next data
                      message, and cuts every connection once it is
                      delivered: the recipient's last block is exactly that
                      one
  cut-after-ddl       cuts every connection once the master connection has
                      delivered the first file descriptor of a file DDL
                      added during the file copy (announced with PAGE
                      COPY's state, before its START); once
  victim FILE         writes the InnoDB locator of the donor's answer to
                      INIT, in hex, to FILE, and has every connection ask
                      for a year of idle time (SET SESSION wait_timeout)
                      before COM_CLONE
  hijack KIND FILE    the recipient's COM_INIT becomes a command naming the
                      clone whose locator FILE holds: KIND attach or reinit
                      (with that locator), or ack (an error acknowledgement);
                      logs "answered after N s" when the donor answers it
                      or closes the connection

Writes "tampered" to stderr when it has rewritten or injected a message.
Connections are told apart by the first clone command after COM_CLONE:
INIT (master), ATTACH (worker), ACK (auxiliary). Layouts:
storage/innobase/clone/clone0desc.cc (big-endian fields); the clone
response is code 2 (COM_RES_DATA_DESC), engine type, locator index, then
the descriptor; COM_ACK is code 5, error (4 bytes), locator (engine type,
4-byte length, bytes), descriptor (4-byte length, bytes), little-endian.
"""
import selectors
import signal
import socket
import struct
import sys
import time

listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
mode, args = (sys.argv[3], sys.argv[4:]) if len(sys.argv) > 3 else (None, [])
COM_RES_LOCS, DATA_DESC, DATA, COLLATION, CONFIG_V3, COM_RES_COMPLETE, COM_RES_ERROR = 1, 2, 3, 6, 8, 99, 100
DATA_ZSTD = 0xC1  # ours only: block length (4 bytes, little-endian), then a zstd frame
DATA_CHECKED = 0xC2  # ours only: CRC-32C of the block (4 bytes), then the block
COM_QUERY, COM_CLONE, COM_INIT, COM_ATTACH, COM_REINIT, COM_ACK, DB_TYPE_INNODB = 3, 0x20, 1, 2, 3, 5, 12
DESC_STATE, DESC_FILE, DESC_DATA = 3, 4, 5
STATE_FILE_COPY, STATE_PAGE_COPY, STATE_FLAG_START = 2, 3, 1
STATE, STATE_CHUNKS, STATE_FILES, STATE_FLAGS, STATE_LEN = 12, 20, 24, 44, 46
FILE_STATE, FILE_INDEX, FILE_NAME_LEN, FILE_NAME = 12, 46, 58, 62
DATA_CHUNK, DATA_BLOCK_LEN, DATA_LEN = 20, 32, 52
done = False
OUT_OF_SEQUENCE = b"\xffout-of-sequence\xff"  # marks a message to send with a wrong sequence id
master_start = None  # the latest START descriptor on the master connection


class Conn:
    """What the proxy knows of one connection."""

    def __init__(self):
        self.role = None      # "master", "worker" or "aux"
        self.cloning = False  # COM_CLONE seen: the next command names the role
        self.last_command = None
        self.stalled = False
        self.cut_next_data = False
        self.empty_sent = False
        self.skip_to_complete = False
        self.hijack_sent = None
        self.swallow = 0
        self.data_tampered = False  # the one data message of zstd-* and flip is done


def locators(body):
    """(db_type, bytes) of each locator in a locator list."""
    out, at = [], 0
    while at + 5 <= len(body):
        length = struct.unpack_from("<I", body, at + 1)[0]
        out.append((body[at], body[at + 5:at + 5 + length]))
        at += 5 + length
    return out


def put_locator(db_type, loc):
    return bytes([db_type]) + struct.pack("<I", len(loc)) + loc


def innodb_desc(payload):
    """The InnoDB descriptor of a COM_RES_DATA_DESC and its type, or None."""
    if len(payload) < 15 or payload[0] != DATA_DESC or payload[1] != DB_TYPE_INNODB:
        return None
    return bytearray(payload[3:]), struct.unpack_from(">I", payload, 3 + 8)[0]


def stateful_response(conn, payload):
    """The modes that follow the connections: the messages to send instead
    of a donor's response (a list), or None to leave it."""
    global master_start, cut_when_delivered
    if conn.hijack_sent is not None:
        waited = time.monotonic() - conn.hijack_sent
        conn.hijack_sent = None
        print(f"answered after {waited:.1f} s: code {payload[:1].hex()}", file=sys.stderr, flush=True)
    if conn.swallow:
        # The answer to a statement the proxy slipped in.
        conn.swallow -= 1
        print(f"slipped-in statement answered: {payload[:1].hex()}", file=sys.stderr, flush=True)
        return []
    if mode == "victim" and conn.role == "master" and payload[:1] == bytes([COM_RES_LOCS]):
        for db_type, loc in locators(payload[5:]):
            if db_type == DB_TYPE_INNODB:
                with open(args[0], "w") as f:
                    f.write(loc.hex())
        return None
    if conn.skip_to_complete:
        # The rest of an answer replaced by an error: the recipient reads
        # the answer to its next command next.
        conn.skip_to_complete = payload[:1] != bytes([COM_RES_COMPLETE])
        return []
    parsed = innodb_desc(payload)
    if parsed and conn.role == "master" and parsed[1] == DESC_STATE and len(parsed[0]) >= STATE_LEN:
        if struct.unpack_from(">H", parsed[0], STATE_FLAGS)[0] & STATE_FLAG_START:
            master_start = bytes(parsed[0])
    if done:
        return None
    if mode == "worker-start" and conn.role == "worker" and master_start and parsed and parsed[1] == DESC_DATA:
        start = bytearray(master_start)
        chunks = struct.unpack_from(">I", start, STATE_CHUNKS)[0]
        files = struct.unpack_from(">I", start, STATE_FILES)[0]
        struct.pack_into(">I", start, STATE_CHUNKS, chunks * 1000 + 1000)
        struct.pack_into(">I", start, STATE_FILES, files * 1000 + 1000)
        data = parsed[0]
        struct.pack_into(">I", data, DATA_CHUNK, chunks + 10)
        head = payload[:3]
        return [head + bytes(start), head + bytes(data)]
    if mode == "init-flood" and conn.role == "master" and payload[0] == COLLATION:
        flood = bytes([COLLATION]) + struct.pack("<I", 65536) + b"x" * 65536
        return [payload] + [flood] * int(args[0])
    if mode == "error-lines" and conn.role == "master" and conn.last_command == COM_INIT:
        text = b"Hostile donor\nbinlog.999999\n4242\n11111111-2222-3333-4444-555555555555:1-100"
        conn.skip_to_complete = True
        return [bytes([COM_RES_ERROR]) + struct.pack("<I", 3862) + text]
    if mode == "data-short" and parsed and parsed[1] == DESC_DATA:
        if struct.unpack_from(">I", parsed[0], DATA_BLOCK_LEN)[0] >= 32768:
            conn.cut_next_data = True
        return None
    if mode == "data-short" and conn.cut_next_data and payload[0] in (DATA, DATA_CHECKED):
        return [payload[:-16384]]
    if mode == "zstd-length" and payload[:1] == bytes([DATA_ZSTD]) and not conn.data_tampered:
        conn.data_tampered = True
        return [payload[:1] + struct.pack("<I", int(args[0])) + payload[5:]]
    if mode == "zstd-frame" and payload[:1] == bytes([DATA_ZSTD]) and len(payload) > 64 and not conn.data_tampered:
        conn.data_tampered = True
        middle = len(payload) // 2
        return [payload[:middle] + bytes(b ^ 0x5A for b in payload[middle:middle + 32]) + payload[middle + 32:]]
    if mode == "flip" and payload[:1] in (bytes([DATA]), bytes([DATA_CHECKED])) and not conn.data_tampered:
        head = 1 if payload[0] == DATA else 5
        if len(payload) - head >= 16384:
            conn.data_tampered = True
            at = head + (len(payload) - head) // 2
            return [payload[:at] + bytes([payload[at] ^ 0x01]) + payload[at + 1:]]
    if mode == "reconnect-window" and conn.role == "master" and payload[:1] == bytes([CONFIG_V3]):
        key_len = struct.unpack_from("<I", payload, 1)[0]
        key = payload[5:5 + key_len]
        if key == b"clone_donor_timeout_after_network_failure":
            value = args[0].encode()
            return [payload[:5 + key_len] + struct.pack("<I", len(value)) + value]
    if mode == "hold-cut" and hold_phase == 2 and conn.role == "master" and payload[:1] in (bytes([DATA]), bytes([DATA_CHECKED])):
        conn.stalled = True
        cut_when_delivered = True
        return [payload]
    if mode == "cut-after-ddl" and not done and conn.role == "master" and parsed and parsed[1] == DESC_FILE \
            and struct.unpack_from(">I", parsed[0], FILE_STATE)[0] == STATE_PAGE_COPY:
        conn.stalled = True
        cut_when_delivered = True
        return [payload]
    if mode == "stall-worker" and conn.role == "worker" and payload[:1] in (bytes([DATA]), bytes([DATA_CHECKED])):
        conn.stalled = True
        return [payload]
    if mode == "stall-ack" and conn.role == "aux" and conn.last_command == COM_ACK:
        conn.stalled = True
        return []
    return None


def stateful_command(conn, payload):
    """The recipient's command rewritten (a list), or None to leave it."""
    if conn.cloning and payload:
        conn.cloning = False
        conn.role = {COM_INIT: "master", COM_ATTACH: "worker", COM_ACK: "aux"}.get(payload[0])
    if payload == bytes([COM_CLONE]):
        conn.cloning = True
        if mode == "victim":
            conn.swallow = 1
            # The client speaks CLIENT_QUERY_ATTRIBUTES: no parameters, one set.
            return [bytes([COM_QUERY, 0, 1]) + b"SET SESSION wait_timeout = 31536000", payload]
    if payload:
        conn.last_command = payload[0]
    if not done and mode == "hijack" and conn.role == "master" and payload[:1] == bytes([COM_INIT]):
        with open(args[1]) as f:
            victim = bytes.fromhex(f.read().strip())
        conn.hijack_sent = time.monotonic()
        if args[0] == "ack":
            return [bytes([COM_ACK]) + struct.pack("<I", 3862) + put_locator(DB_TYPE_INNODB, victim) + struct.pack("<I", 0)]
        head, own = payload[1:9], locators(payload[9:])
        code = COM_ATTACH if args[0] == "attach" else COM_REINIT
        body = b"".join(put_locator(t, victim if t == DB_TYPE_INNODB else loc) for t, loc in own)
        return [bytes([code]) + head + body]
    if not done and mode == "bad-command" and conn.role == "worker" and payload[:1] == bytes([COM_ATTACH]):
        conn.empty_sent = time.monotonic()
        return [b""] if args[0] == "empty" else [OUT_OF_SEQUENCE + payload]
    return None


def tamper_response(payload):
    """A donor's response rewritten, or None to leave it."""
    if len(payload) < 15 or payload[0] != DATA_DESC or payload[1] != DB_TYPE_INNODB:
        return None
    head, desc = payload[:3], bytearray(payload[3:])
    kind = struct.unpack_from(">I", desc, 8)[0]
    if mode == "files" and kind == DESC_STATE and len(desc) >= STATE_LEN:
        state = struct.unpack_from(">I", desc, STATE)[0]
        flags = struct.unpack_from(">H", desc, STATE_FLAGS)[0]
        if state != STATE_FILE_COPY or not flags & STATE_FLAG_START:
            return None
        struct.pack_into(">I", desc, STATE_FILES, int(args[0]))
        return head + bytes(desc)
    if mode == "chunk" and kind == DESC_DATA and len(desc) >= DATA_LEN:
        struct.pack_into(">I", desc, DATA_CHUNK, int(args[0]))
        return head + bytes(desc)
    if mode not in ("rename", "index") or kind != DESC_FILE or len(desc) < FILE_NAME:
        return None
    name_len = struct.unpack_from(">I", desc, FILE_NAME_LEN)[0]
    name = bytes(desc[FILE_NAME:FILE_NAME + name_len]).rstrip(b"\0")
    if not name.endswith(args[0].encode()):
        return None
    if mode == "index":
        struct.pack_into(">I", desc, FILE_INDEX, int(args[1]))
        return head + bytes(desc)
    new = args[1].encode() + b"\0"
    rest = desc[FILE_NAME + name_len:]
    desc = desc[:FILE_NAME] + new + rest
    struct.pack_into(">I", desc, FILE_NAME_LEN, len(new))
    struct.pack_into(">I", desc, 4, len(desc))
    return head + bytes(desc)


def tamper_command(payload):
    """A recipient's command rewritten, or None to leave it."""
    if mode != "ack" or len(payload) < 10 or payload[0] != COM_ACK or payload[5] != DB_TYPE_INNODB:
        return None
    loc_len = struct.unpack_from("<I", payload, 6)[0]
    at = 10 + loc_len
    if len(payload) < at + 4:
        return None
    desc_len = struct.unpack_from("<I", payload, at)[0]
    if len(payload) != at + 4 + desc_len or desc_len < 12:
        return None
    changed = bytearray(payload)
    struct.pack_into(">I", changed, at + 4 + 8, DESC_FILE)
    return bytes(changed)


class PacketStream:
    """Splits one direction of a connection into MySQL packets and rewrites
    (or injects, or holds back) what its mode says."""

    def __init__(self, conn, stateful, tamper):
        self.pending = b""
        self.conn = conn
        self.stateful = stateful
        self.tamper = tamper

    def feed(self, data):
        global done
        self.pending += data
        out = []
        while len(self.pending) >= 4:
            length = int.from_bytes(self.pending[:3], "little")
            if len(self.pending) < 4 + length:
                break
            seq = self.pending[3:4]
            payload = self.pending[4:4 + length]
            self.pending = self.pending[4 + length:]
            if self.conn.stalled:
                continue
            messages = None if length == 0xFFFFFF else self.stateful(self.conn, payload)
            if messages is None:
                changed = None if done or length == 0xFFFFFF else self.tamper(payload)
                messages = [payload] if changed is None else [changed]
                if changed is not None:
                    done = True
                    print("tampered", file=sys.stderr, flush=True)
            elif not done:
                done = True
                print("tampered", file=sys.stderr, flush=True)
            # Each clone message is a packet of its own: an injected one
            # carries the sequence number of the one it stands beside.
            for message in messages:
                this_seq = seq
                if message.startswith(OUT_OF_SEQUENCE):
                    message, this_seq = message[len(OUT_OF_SEQUENCE):], b"\x05"
                out.append(len(message).to_bytes(3, "little") + this_seq + message)
        return b"".join(out)


sel = selectors.DefaultSelector()
pairs = {}    # socket -> its peer
conns = {}    # recipient-side socket -> Conn
streams = {}  # socket -> the splitter of what it sends
outgoing = {}  # socket -> bytes waiting to be written to it
ended = set()  # sockets whose side has closed; their peer is flushed, then closed
# Each direction is its own flow: a peer that does not read stalls only the
# flow towards it (a blocking write would stall all of them, which a real
# network does not).
HIGH_WATER = 1 << 20


def close_pair(sock):
    peer = pairs.pop(sock, None)
    for s in (sock, peer):
        if s is None:
            continue
        conn = conns.pop(s, None)
        if conn and conn.hijack_sent is not None:
            waited = time.monotonic() - conn.hijack_sent
            print(f"answered after {waited:.1f} s: closed", file=sys.stderr, flush=True)
        if conn and conn.empty_sent:
            waited = time.monotonic() - conn.empty_sent
            print(f"connection ended after {waited:.1f} s", file=sys.stderr, flush=True)
        pairs.pop(s, None)
        upstreams.discard(s)
        streams.pop(s, None)
        outgoing.pop(s, None)
        ended.discard(s)
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()


def update_interest(sock):
    """Read from a socket while its peer can take more; write while owed."""
    if sock not in pairs:
        return
    events = 0
    if sock not in ended and len(outgoing[pairs[sock]]) < HIGH_WATER and not (hold_phase == 1 and sock in upstreams):
        events |= selectors.EVENT_READ
    if outgoing[sock]:
        events |= selectors.EVENT_WRITE
    registered = sock in sel.get_map()
    if events and registered:
        sel.modify(sock, events)
    elif events:
        sel.register(sock, events)
    elif registered:
        sel.unregister(sock)


cut_requested = False
hold_phase = 0  # hold-cut: 0 passing, 1 holding, 2 passing one data message
cut_when_delivered = False
upstreams = set()  # the donor-side sockets


def request_cut(*_):
    global cut_requested
    cut_requested = True


def next_hold_phase(*_):
    global hold_phase
    hold_phase = min(hold_phase + 1, 2)


signal.signal(signal.SIGUSR1, request_cut)
signal.signal(signal.SIGUSR2, next_hold_phase)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
sel.register(server, selectors.EVENT_READ)
while True:
    if cut_when_delivered and not any(outgoing[s] for s in pairs):
        cut_when_delivered, cut_requested = False, True
    if cut_requested:
        cut_requested = False
        for s in list(pairs):
            close_pair(s)
    for s in list(pairs):
        update_interest(s)
    for key, events in sel.select(timeout=0.2):
        sock = key.fileobj
        if sock is server:
            client, _ = server.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            pairs[client], pairs[upstream] = upstream, client
            upstreams.add(upstream)
            # Without a mode the bytes pass as they are (they may be TLS).
            if mode:
                conn = Conn()
                conns[client] = conn
                streams[upstream] = PacketStream(conn, stateful_response, tamper_response)
                streams[client] = PacketStream(conn, stateful_command, tamper_command)
            for s in (client, upstream):
                s.setblocking(False)
                outgoing[s] = bytearray()
                sel.register(s, selectors.EVENT_READ)
            continue
        if sock not in pairs:
            continue
        peer = pairs[sock]
        if events & selectors.EVENT_WRITE:
            try:
                sent = sock.send(outgoing[sock])
            except BlockingIOError:
                sent = 0
            except OSError:
                close_pair(sock)
                continue
            del outgoing[sock][:sent]
            if peer in ended and not outgoing[sock]:
                close_pair(sock)
                continue
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                if not outgoing[peer]:
                    close_pair(sock)
                    continue
                ended.add(sock)
            if data:
                if sock in streams:
                    data = streams[sock].feed(data)
                outgoing[peer] += data
        update_interest(sock)
        update_interest(peer)
