"""Edge-case clients for the echo example (examples/serve_echo.lua), run by
tests/serve.rs: python3 edge.py PORT CASE. Prints one line of results."""
import resource
import socket
import struct
import sys
import time

HOST, PORT, CASE = "127.0.0.1", int(sys.argv[1]), sys.argv[2]


def connect():
    return socket.create_connection((HOST, PORT), timeout=20)


def echo(s, data):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def silent():
    # Connects, sends nothing: the server's idle timeout closes it.
    s = connect()
    start = time.monotonic()
    got = s.recv(1)
    took = time.monotonic() - start
    when = "in time" if 0.25 <= took < 5 else "after %.3f s" % took
    print("closed" if got == b"" else "data", when)


def reset():
    # Sends 8 MiB without reading: the server's send blocks on a full
    # buffer; then a reset (SO_LINGER 0). The server goes on serving.
    s = connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    data = b"x" * (8 << 20)
    s.settimeout(0.05)
    sent = 0
    try:
        while sent < len(data):
            sent += s.send(data[sent:])
    except socket.timeout:
        pass  # the server's echo is stuck on this client's full buffer
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    after = connect()
    print("after the reset:", echo(after, b"still here").decode())
    after.close()


def many():
    # 2,000 clients connect at once, then each sends a line and reads it back.
    n = 2000
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    socks = [connect() for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(b"client %d\n" % i)
    ok = 0
    for i, s in enumerate(socks):
        want = b"client %d\n" % i
        got = b""
        while len(got) < len(want):
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        ok += got == want
    for s in socks:
        s.close()
    print("answered", ok, "of", n)


def halfclose():
    # Sends, shuts its writing side, reads everything back until EOF.
    s = connect()
    data = bytes(range(256)) * 1000
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    print("echoed", len(got), "bytes", "intact" if got == data else "CORRUPT", "then EOF")


def spread():
    # 100 clients, one after another (for several processes on one port).
    ok = 0
    for i in range(100):
        s = connect()
        ok += echo(s, b"n%d" % i) == b"n%d" % i
        s.close()
    print("answered", ok, "of 100")


{"silent": silent, "reset": reset, "many": many, "halfclose": halfclose, "spread": spread}[CASE]()
