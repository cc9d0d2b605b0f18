"""How long the ``dispatcher`` look-up commands take to start, as processes, against two baselines
measured in the same run: ``python -c pass`` (the interpreter alone) and ``celery --help`` (the target:
no slower than it).

Each command runs ``--rounds`` times, the commands taking turns within a round so that the machine's
load falls on all of them alike; the median of each is printed, with its ratio to both baselines.
``--importtime`` then prints the modules each command spends most on (``python -X importtime``).

    python bench/cli.py [--quick] [--rounds N] [--importtime] [--source CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _script(name: str) -> list[str]:
    """The console script installed beside this interpreter (what a person runs), else ``-m name``."""
    path = BIN / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name]


def commands(source: Path | None) -> dict[str, list[str]]:
    """What is measured. ``source``: a checkout whose ``dispatcher`` package is run instead of the
    installed one (an earlier commit's, for a before/after in one machine state)."""
    if source is None:
        dispatcher = _script("dispatcher")
    else:
        run = f"import sys; sys.path.insert(0, {str(source)!r}); from dispatcher.cli import app; app()"
        dispatcher = [sys.executable, "-c", run]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "celery --help": [*_script("celery"), "--help"],
        "dispatcher --help": [*dispatcher, "--help"],
        "dispatcher vendors": [*dispatcher, "vendors"],
        "dispatcher explain yunxin -16": [*dispatcher, "explain", "yunxin", "-16"],
        "dispatcher explain yunxin -16 --json": [*dispatcher, "explain", "yunxin", "-16", "--json"],
    }


def _once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, env={**os.environ, "COLUMNS": "120"})
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def measure(measured: dict[str, list[str]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in measured}
    for argv in measured.values():  # one warm-up each: the page cache, .pyc files
        _once(argv)
    for _ in range(rounds):
        for name, argv in measured.items():
            times[name].append(_once(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def top_imports(argv: list[str], count: int = 8) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (µs), outermost first."""
    python = argv if argv[0] == sys.executable else [sys.executable, "-m", Path(argv[0]).name, *argv[1:]]

    done = subprocess.run(
        [python[0], "-X", "importtime", *python[1:]], capture_output=True, text=True, check=False
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith(
                "   "
            ):  # imported by the command itself, not by another module
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds (under a minute)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 20; --quick 5)")
    parser.add_argument("--importtime", action="store_true", help="print each command's top imports")
    parser.add_argument("--source", type=Path, help="run the dispatcher package of this checkout instead")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 20)

    measured = commands(args.source)
    medians = measure(measured, rounds)
    bare, celery = medians["python -c pass"], medians["celery --help"]
    print(f"start-up as a process, median of {rounds} rounds ({os.cpu_count()} cores)")
    print(f"{'command':<40} {'seconds':>8} {'× python':>9} {'× celery --help':>16}")
    for name, seconds in medians.items():
        print(f"{name:<40} {seconds:>8.3f} {seconds / bare:>9.1f} {seconds / celery:>16.2f}")
    slower = [name for name in medians if name.startswith("dispatcher") and medians[name] > celery]
    print("target (each ≤ celery --help):", "met" if not slower else f"NOT met by {', '.join(slower)}")
    if args.importtime:
        for name, argv in measured.items():
            if name.startswith("dispatcher"):
                print(f"\n{name}: top-level imports, cumulative ms")
                for micros, module in top_imports(argv):
                    print(f"  {micros / 1000:>7.1f}  {module}")


if __name__ == "__main__":
    main()
