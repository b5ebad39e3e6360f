#!/usr/bin/env python3
"""Tallies of a fuzz campaign from libFuzzer logs (fuzz/run-long.sh writes them to
$LOGDIR, default /tmp/fuzz-logs): per target, executions, exec/s, final coverage (edges `cov`,
features `ft`), corpus size, and where coverage last grew (the plateau)."""
import os
import re
import sys

logdir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LOGDIR", "/tmp/fuzz-logs")
line_re = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+).*?exec/s: (\d+)")
print("| target | execs | exec/s | time (s) | cov (edges) | ft (features) | corpus | cov/ft at half the execs | last new edge at exec | last new feature at exec | crashes |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for t in ["node_decode", "car_reader", "unixfs_read", "crypt_decode", "zarr_keys"]:
    path = os.path.join(logdir, t + ".log")
    if not os.path.exists(path):
        continue
    last = None
    cov_at = ft_at = 0
    prev_cov = prev_ft = -1
    execs = secs = None
    crashes = 0
    points = []
    for line in open(path, errors="replace"):
        m = line_re.match(line)
        if m:
            n, kind, cov, ft = int(m[1]), m[2], int(m[3]), int(m[4])
            if cov > prev_cov:
                cov_at, prev_cov = n, cov
            if ft > prev_ft:
                ft_at, prev_ft = n, ft
            last = m
            points.append((n, cov, ft))
        if line.startswith("stat::number_of_executed_units:"):
            execs = int(line.split()[-1])
        if line.startswith("Done ") and "runs in" in line:
            secs = int(line.split("runs in")[1].split()[0])
        if "deadly signal" in line or "panicked at" in line or "ERROR: libFuzzer" in line:
            crashes += 1
    if last is None:
        continue
    execs = execs or int(last[1])
    half = [p for p in points if p[0] <= execs // 2]
    hc, hf = (half[-1][1], half[-1][2]) if half else (0, 0)
    print(f"| {t} | {execs:,} | {last[7]} | {secs or '?'} | {last[3]} | {last[4]} | {last[5]} ({last[6]}) "
          f"| {hc}/{hf} | {cov_at:,} ({100 * cov_at // max(execs, 1)}%) | {ft_at:,} ({100 * ft_at // max(execs, 1)}%) | {crashes} |")
