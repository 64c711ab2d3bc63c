"""Shared helpers for the benchmarks: a fresh PostgreSQL database, machine facts, tables, RESULTS.md.

Every benchmark works in its own database on the local PostgreSQL server (created
fresh, dropped afterwards unless --keep), so it never touches a developer's or
another test run's data. Its name is `<BENCH_DB_PREFIX><bench>` (prefix
`cohortos_bench_` unless the environment says otherwise, so two people can bench on
one server at once), or whatever `--database NAME` says; a name must contain
"bench", because the benchmark drops it.
"""

import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "cohortos_bench_")


def _check_name(name):
    # The benches drop their database: refuse a name that does not say it is a bench's.
    if "bench" not in name:
        raise SystemExit(f"refusing database {name!r}: a benchmark database's name must contain 'bench'")


def database_name(bench):
    """Return the default database name of benchmark `bench` ("webhook"): BENCH_DB_PREFIX + bench."""
    return f"{DB_PREFIX}{bench}"


def add_database_argument(parser, bench):
    """Add `--database NAME` (default `database_name(bench)`) to an argparse parser."""
    parser.add_argument("--database", default=database_name(bench),
                        help=f"database to create, use and drop (default {database_name(bench)}; "
                             "BENCH_DB_PREFIX changes the prefix, BENCH_PG the server)")


def database_url(name):
    """Return the DATABASE_URL of bench database `name` on the local server."""
    _check_name(name)
    return f"{PG_SERVER}/{name}"


def load_average():
    """Return the 1-, 5- and 15-minute load averages as "1.2 / 0.9 / 0.7 on 2 CPUs"."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"


def recreate_database(name):
    """Drop (if present) and create the PostgreSQL database `name`; return its URL."""
    import psycopg

    _check_name(name)
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def drop_database(name):
    import psycopg

    _check_name(name)
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(db_name, **extra):
    """Return an environment for Django processes of a benchmark (production-like: DEBUG off)."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # Celery eager: the benches send no tasks to a shared broker
    env.update(
        DATABASE_URL=database_url(db_name),
        DEBUG="0",
        SECRET_KEY=env.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",  # plain HTTP on loopback
        SECURE_HSTS_SECONDS="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CONN_MAX_AGE="3600",  # persistent connections (longer than a run, so backends stay the same)
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="bench.settings_bench",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def setup_django(db_name):
    """Configure this process for bench database `db_name` and call django.setup()."""
    os.environ.update(django_env(db_name))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def percentile(values, q):
    """Return the q-th percentile (0–100) of `values` by linear interpolation."""
    values = sorted(values)
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary_ms(seconds):
    """Return {p50, p95, p99, max, mean} in milliseconds for a list of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"), "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def table(headers, rows):
    """Return a Markdown table (also readable in a terminal)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in cells[1:])])


def _first_line(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 — a missing tool only leaves a fact out
        return ""


def machine_facts(pg_version=""):
    """Return a one-paragraph description of this machine and software, for RESULTS.md."""
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    import django

    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    parts = [
        f"{os.cpu_count()} CPUs ({cpu})", mem, platform.platform(terse=True),
        f"Python {platform.python_version()}", f"Django {django.get_version()}",
        pg_version, f"git {commit}" if commit else "", f"load average {load_average()}",
    ]
    return ", ".join(p for p in parts if p)


def now_utc():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_section(key, markdown):
    """Replace (or append) the section of RESULTS.md between this bench's markers."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nHow to run: see bench/README.md.\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def verdict(ok):
    return "**met**" if ok else "**below target**"
