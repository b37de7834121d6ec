#!/usr/bin/env python3
"""Runs openai-proxy's collector and workers the way `openai-proxy serve` does, each under a wrapper command.

usage: spawn_roles.py PORT WORKERS PIDFILE -- WRAPPER... BINARY
       SPAWN_WRAPPED=worker|collector|all (default all): which roles run under WRAPPER; the others run plain

For bench/usage_instructions.sh: valgrind cannot run the supervisor (it crashes in libdispatch's signal
thread), so this stands in for it: it binds and listens on 127.0.0.1:PORT once, starts
`WRAPPER... BINARY collector` and WORKERS × `WRAPPER... BINARY worker --index N` with that socket as their
fd 3 (LISTEN_FDS=1, the supervisor's contract), writes "role pid" lines to PIDFILE, and on SIGTERM stops
them (SIGTERM, then SIGKILL after 20 s) and exits. Without the supervisor's pid variable the children do not
tie their lives to this process. The database must be migrated already (any `openai-proxy` command does it).
"""
import os
import signal
import socket
import subprocess
import sys
import time

port, workers, pidfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
command = sys.argv[sys.argv.index("--") + 1:]
wrapped = os.environ.get("SPAWN_WRAPPED", "all")


def role_command(role):
    return command if wrapped in ("all", role) else command[-1:]


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(4096)
# The children find the socket at fd 3.
os.dup2(listener.fileno(), 3, inheritable=True)

environment = dict(os.environ, LISTEN_FDS="1")
children = []
collector = subprocess.Popen(role_command("collector") + ["collector"], env=environment)
children.append(("collector", collector))
# The workers connect to the collector's socket; give it a head start (they would spool meanwhile).
time.sleep(float(os.environ.get("SPAWN_COLLECTOR_HEAD_START", "3")))
for index in range(workers):
    worker = subprocess.Popen(role_command("worker") + ["worker", "--index", str(index)], env=environment, pass_fds=(3,))
    children.append((f"worker-{index}", worker))
with open(pidfile, "w") as out:
    for role, child in children:
        out.write(f"{role} {child.pid}\n")


def stop(*_):
    # Workers first, then the collector (as the supervisor drains).
    for role, child in reversed(children):
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    for role, child in children:
        if child.poll() is not None:
            print(f"spawn_roles: {role} exited with {child.returncode}", file=sys.stderr)
            stop()
    time.sleep(0.5)
