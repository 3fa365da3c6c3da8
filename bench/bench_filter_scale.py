"""`selfinstruct filter` on BELLE-scale files: time and peak memory, one process and Ray.

Goal (issue 11): 1M records <= 60 s and 3M <= 5 min on this 2-core machine, <= 2 GB.
The input is a mixed English/Chinese JSONL file from bench/make_dataset.py --lang mixed
(made once per size and kept in --workdir). Peak memory is the largest sum of the resident
memory of the command and every process under it (Ray's workers included), sampled every
0.2 s. For Ray, the command prints each worker's busy time; from it the benchmark projects
the time with N workers (all workers' busy time split N ways; the driver's
reading and writing, and its deciding where probing does not hide it, stay as measured).

    python bench/bench_filter_scale.py [--records 200000 1000000 3000000] [--engine local ray]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = Path(sys.executable).with_name("selfinstruct")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        me = int(status.parent.name)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(me)
        rss[me] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [pid]
    while stack:
        me = stack.pop()
        total += rss.get(me, 0)
        stack.extend(children.get(me, []))
    return total


def run(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak tree memory and stderr of a command."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.monotonic() - started
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    return seconds, peak[0], out + err


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="+", default=[200_000, 1_000_000, 3_000_000])
    parser.add_argument("--engine", nargs="+", default=["local", "ray"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/selfinstruct-bench"))
    parser.add_argument("--project", type=int, nargs="+", default=[2, 4, 8, 16], help="worker counts to project")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for records in args.records:
        source = args.workdir / f"mixed_{records}.jsonl"
        if not source.exists():
            subprocess.run([sys.executable, str(HERE / "make_dataset.py"), str(source), "--records", str(records),
                            "--lang", "mixed"], check=True, stdout=subprocess.DEVNULL)
        for engine in args.engine:
            out = args.workdir / f"clean_{records}_{engine}.jsonl"
            seconds, peak, printed = run([str(SCRIPT), "filter", str(source), "-o", str(out), "--overwrite", "-q",
                                          "--engine", engine])
            kept = int(re.search(r"^kept\s+(\d+) of", printed, re.M).group(1))
            busy = [float(s) for s in re.findall(r"worker \d+: ([\d.]+) s busy", printed)]
            rows.append((records, engine, kept, seconds, peak, busy))
            print(f"{records:,} records, {engine}: {seconds:.1f} s, peak {peak / 2**20:,.0f} MB, kept {kept:,}",
                  flush=True)
            for line in printed.splitlines():
                if line.startswith("ray:"):
                    print("  " + line)
    print(f"\n{'records':>10} {'engine':>7} {'kept':>10} {'wall s':>8} {'peak MB':>8}   "
          "goal: 1M <= 60 s, 3M <= 300 s, <= 2048 MB")
    for records, engine, kept, seconds, peak, busy in rows:
        goal = {1_000_000: 60, 3_000_000: 300}.get(records)
        verdict = "" if goal is None else ("ok" if seconds <= goal and peak <= 2 * 2**30 else "MISSED")
        print(f"{records:>10,} {engine:>7} {kept:>10,} {seconds:>8.1f} {peak / 2**20:>8,.0f}   {verdict}")
    for records, engine, kept, seconds, peak, busy in rows:
        if busy:
            others = seconds - max(busy)  # the driver's own work, and waiting on the busiest worker
            projected = ", ".join(f"{n} workers ~{others + sum(busy) / n:.0f} s" for n in args.project)
            print(f"{records:,} with ray, projected from per-worker busy time: {projected}")


if __name__ == "__main__":
    main()
