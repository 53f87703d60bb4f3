#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 for network-failure tests: forwards
LISTEN_PORT to TARGET_PORT and, on SIGUSR1, cuts every open connection
(the listener stays, so clients can connect again). Stops on SIGTERM.

    cut-proxy.py LISTEN_PORT TARGET_PORT
"""
import selectors
import signal
import socket
import sys

listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
pairs = {}  # socket -> its peer
cut_requested = False


def request_cut(*_):
    global cut_requested
    cut_requested = True


def close_pair(sock):
    peer = pairs.pop(sock, None)
    for s in (sock, peer):
        if s is None:
            continue
        pairs.pop(s, None)
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()


signal.signal(signal.SIGUSR1, request_cut)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
sel.register(server, selectors.EVENT_READ)
while True:
    if cut_requested:
        cut_requested = False
        for s in list(pairs):
            close_pair(s)
    for key, _ in sel.select(timeout=0.2):
        sock = key.fileobj
        if sock is server:
            client, _ = server.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            pairs[client], pairs[upstream] = upstream, client
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            continue
        if sock not in pairs:
            continue
        try:
            data = sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            close_pair(sock)
            continue
        try:
            pairs[sock].sendall(data)
        except OSError:
            close_pair(sock)
