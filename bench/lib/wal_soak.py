#!/usr/bin/env python3
"""WAL size under sustained load with readers always open: while wrk loads openai-proxy (started by run.sh),
two reader threads keep overlapping read transactions open on the database (each holds one for 0.5 s, the
second offset by 0.25 s, so a reader is open at every moment), and the size of the `-wal` file is sampled
every 5 s. Writes the samples, the largest and the last size.

usage: wal_soak.py --db PATH --seconds S --out FILE
"""
import argparse
import json
import os
import sqlite3
import sys
import threading
import time


def reader(path, stop, offset):
    time.sleep(offset)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None)
    while not stop.is_set():
        db.execute("BEGIN")
        db.execute("SELECT COUNT(*) FROM usage_log").fetchone()
        time.sleep(0.5)
        db.execute("COMMIT")
    db.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    stop = threading.Event()
    readers = [threading.Thread(target=reader, args=(a.db, stop, offset)) for offset in (0, 0.25)]
    for t in readers:
        t.start()
    wal = a.db + "-wal"
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < a.seconds:
        time.sleep(5)
        size = os.path.getsize(wal) if os.path.exists(wal) else 0
        samples.append([round(time.monotonic() - started), size])
    stop.set()
    for t in readers:
        t.join()
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=10)
    rows = db.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0]
    db.close()
    report = dict(seconds=a.seconds, samples=samples, max_bytes=max(s for _, s in samples),
                  final_bytes=samples[-1][1], usage_log_rows=rows)
    with open(a.out, "w") as f:
        json.dump(report, f)
    print(f"  WAL after {a.seconds} s of load with readers open: {samples[-1][1] / 1e6:.1f} MB"
          f" (largest sample {report['max_bytes'] / 1e6:.1f} MB); usage_log rows: {rows}", file=sys.stderr)


if __name__ == "__main__":
    main()
