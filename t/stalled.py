#!/usr/bin/env python3
"""stalled.py PORT SECONDS HEX... - for each HEX a connection to
127.0.0.1:PORT that sends those bytes ("-" for none) and then nothing;
prints how many of them the server closed within SECONDS."""
import socket
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
socks = []
for h in sys.argv[3:]:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes.fromhex(h) if h != "-" else b"")
    socks.append(s)
start, closed = time.time(), 0
for s in socks:
    s.settimeout(max(0.1, seconds - (time.time() - start)))
    try:
        # Closed: whatever the server said last (a TLS alert), then EOF.
        while s.recv(1000):
            pass
        closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print(closed)
