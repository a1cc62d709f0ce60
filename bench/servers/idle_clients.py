"""Opens N connections to 127.0.0.1:PORT and keeps them idle until stdin
closes. Prints "open N" once all are connected. usage: idle_clients.py PORT N"""
import resource
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("open", len(socks), flush=True)
sys.stdin.read()
