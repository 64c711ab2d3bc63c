"""Run every benchmark in bench/, one after another; `make bench` calls this.

    .venv/bin/python bench/run_all.py            # all of them (about 15 minutes)
    .venv/bin/python bench/run_all.py webhook_throughput apply_cost   # some

Each benchmark is a script in bench/ run in its own process with this Python. The
ones listed in ARGS get those arguments; any other script added to bench/ later is
picked up and run without arguments (helpers are skipped). Benchmarks that write
their own section of bench/RESULTS.md do so; for the others, their printed output is
put in a section named after them. Prints a summary and exits 1 if any benchmark
failed or missed a target.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

BENCH = Path(__file__).resolve().parent
HELPERS = {"__init__", "common", "loadgen", "run_all", "settings_bench", "urls_bench", "fake_calcom_api"}
# Known benchmarks first, in this order, with their arguments.
ARGS = {
    "statements": [],
    "webhook_throughput": [],
    "apply_breakdown": [],
    "apply_cost": [],
    "applications_tab": ["--large"],
    "orphan_search": [],
    "timeline": [],
    "tab_freshness": [],
    "fault_run": [],
    "sync_calcom": [],
}
# Benchmarks that maintain their own section of RESULTS.md.
WRITES_RESULTS = {"statements", "webhook_throughput", "apply_breakdown", "apply_cost", "orphan_search", "timeline", "fault_run",
                  "sync_calcom"}
TIMEOUT_SECONDS = 3600


def discover():
    """Return the benchmark names present: known ones first, then any other script, by name."""
    present = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    return [n for n in ARGS if n in present] + sorted(present - set(ARGS))


def main(argv):
    names = discover()
    if argv:
        unknown = set(argv) - set(names)
        if unknown:
            sys.exit(f"no such benchmark in bench/: {', '.join(sorted(unknown))} (have {', '.join(names)})")
        names = [n for n in names if n in argv]
    summary = []
    for name in names:
        command = [sys.executable, str(BENCH / f"{name}.py"), *ARGS.get(name, [])]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.monotonic()
        try:
            # stdout is the benchmark's report (filed in RESULTS.md); stderr (warnings) goes to the terminal.
            result = subprocess.run(command, cwd=common.ROOT, timeout=TIMEOUT_SECONDS, stdout=subprocess.PIPE,
                                    text=True)
            output, code = result.stdout, result.returncode
        except subprocess.TimeoutExpired as exc:
            output, code = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
                else (exc.stdout or ""), "timeout"
        print(output, flush=True)
        seconds = time.monotonic() - start
        summary.append((name, code, seconds))
        if name not in WRITES_RESULTS and code == 0:
            common.write_section(name, f"## `bench/{name}.py {' '.join(ARGS.get(name, []))}`\n\n"
                                       f"Run {common.now_utc()} on {common.machine_facts()} (printed output):\n\n"
                                       f"```\n{output.strip()}\n```")
    print()
    print(common.table(["benchmark", "exit", "seconds"],
                       [[n, "ok" if c == 0 else f"{c} (failed or below target)", f"{s:.0f}"]
                        for n, c, s in summary]))
    return 0 if all(c == 0 for _, c, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
