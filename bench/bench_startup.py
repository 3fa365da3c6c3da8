"""How long the command line takes to start: `selfinstruct --help` and `selfinstruct generate --help`.

Each command runs as a fresh process (the console script, as people type it), N times; the median
wall time, first byte to exit, is printed per command. Help loads only the option declarations, so
this measures what every command pays before it does anything.

    python bench/bench_startup.py          # 15 runs each
    python bench/bench_startup.py -n 40

Run it with the code to measure first on PYTHONPATH (or installed); it is passed on to the children.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["generate", "--help"])


def _script() -> list[str]:
    """The installed console script next to this Python, else `python -m selfinstruct`."""
    script = Path(sys.executable).parent / "selfinstruct"
    return [str(script)] if script.exists() else [sys.executable, "-m", "selfinstruct"]


def wall_times(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs per command (default 15)")
    runs = parser.parse_args().runs
    script = _script()
    wall_times(script + ["--help"], 1)  # a first run warms the file cache and writes the .pyc files
    for args in COMMANDS:
        times = wall_times(script + args, runs)
        print(f"selfinstruct {' '.join(args):<16} median {statistics.median(times):.3f} s  "
              f"(min {min(times):.3f}, max {max(times):.3f}, {runs} runs)")


if __name__ == "__main__":
    main()
