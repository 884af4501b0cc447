#!/usr/bin/env python3
"""400 concurrent `POST /v1/login` from 400 loopback addresses against `stampede server`.

Usage: bench/logins/flood.py PATH/TO/stampede [server flags...]
Creates user `ann` in a fresh SQLite file, starts the server, sends every login at once
(a quarter right, a quarter wrong, half for unknown names) and prints the statuses and the
server's peak RSS (VmHWM) before and after. Linux only (binds 127.0.x.y, reads /proc).
"""
import json, os, socket, subprocess, sys, tempfile, threading, time
from collections import Counter

LOGINS = 400
BIN = sys.argv[1]
work = tempfile.mkdtemp()
db = f"sqlite://{work}/flood.db"
env = dict(os.environ, STAMPEDE_PASSWORD="correct horse")
subprocess.run([BIN, "server", "user", "create", "--name", "ann", "--database", db], env=env, check=True)
server = subprocess.Popen([BIN, "server", "--addr", "127.0.0.1:0", "--database", db, "--server-id", "flood", *sys.argv[2:]],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
addr = server.stdout.readline().decode().strip().split("http://")[1]
host, port = addr.rsplit(":", 1)


def peak_mb():
    with open(f"/proc/{server.pid}/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024


before = peak_mb()
go = threading.Barrier(LOGINS)
statuses = [0] * LOGINS


def login(n):
    s = socket.socket()
    s.bind((f"127.0.{1 + n // 200}.{1 + n % 200}", 0))
    s.connect((host, int(port)))
    user, password = [("ann", "correct horse"), ("ann", "wrong horse"), (f"nobody-{n}", "guess"), (f"nobody-{n}", "guess")][n % 4]
    body = json.dumps({"email": user, "password": password})
    request = f"POST /v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    go.wait()
    s.sendall(request.encode())
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    statuses[n] = int(reply[9:12]) if len(reply) > 12 else 0


started = time.time()
threads = [threading.Thread(target=login, args=(n,)) for n in range(LOGINS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{LOGINS} logins in {time.time() - started:.1f} s: {dict(sorted(Counter(statuses).items()))}; "
      f"server peak RSS {peak_mb():.1f} MB (before {before:.1f} MB)")
server.kill()
