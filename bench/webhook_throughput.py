"""Webhook throughput and latency under gunicorn on PostgreSQL, against a one-INSERT floor.

    .venv/bin/python bench/webhook_throughput.py            # the full run (10-15 minutes on 2 cores)
    .venv/bin/python bench/webhook_throughput.py --apps 2000 --no-results   # a quick look

What it does, in one process tree on loopback only:
1. creates a fresh database `cohortos_bench_webhook`, migrates it, creates a cohort
   with 10,000 applications (waiting for round one), and the floor's table;
2. starts gunicorn serving cohortos.wsgi with bench/settings_bench.py (the app's
   settings, DEBUG off, persistent connections, plus the bench-only floor view);
3. runs bench/loadgen.py as a separate process for each phase (floors capped at 6,000 requests):
   floor at max rate → ours at max rate (BOOKING_CREATED for every application and
   BOOKING_RESCHEDULED for half) → floor again → a verify+store-only yardstick → ours at
   half our max rate (the other half's reschedules, and a BOOKING_CANCELLED for every
   fourth application);
4. checks the database against the expected final state of every application;
5. prints a table and rewrites its section of bench/RESULTS.md.

Server sizing (2 cores): 4 gthread workers × 2 threads. A request here is about three
quarters Python (~15 ms of ORM work on this machine) and one quarter PostgreSQL, so
what limits it is the GIL: threads of one process take turns. At least one process
per core is needed; twice that lets one process run Python while another waits on
PostgreSQL, and two threads per process cover that wait inside a process too without
queueing four requests behind one GIL. The sweep (2×4, 4×2, 3×2, 2×2 at 2,000
applications, in RESULTS.md) agreed: 4×2 had the best max rate and the only p99
under 100 ms at half rate. `--workers/--threads` repeat it.
"""

import argparse
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "cohortos_bench_webhook"
UTC = timezone.utc
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")

TARGET_RATIO = 0.50
TARGET_P99_MS = 100.0


# --- the bodies --------------------------------------------------------------------------


def _iso_ms(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def chain_for(i, public_id):
    """Return the booking chain of application i: times and uids of its first and moved booking."""
    first_start = datetime(2026, 7, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=30 * i)
    return {
        "email": f"applicant{i:06d}@bench.example.org",
        "name": f"Applicant {i:06d}",
        "public_id": public_id,
        "uid_a": f"bA{i:06d}xQm3XyZp2RvT9wL",  # 22 characters, like Cal.com's short uuids
        "uid_b": f"bB{i:06d}tLc5HnJ2vQe6Rk",
        "ical": f"bA{i:06d}xQm3XyZp2RvT9wL@Cal.com",
        "a_start": first_start, "a_end": first_start + timedelta(minutes=30),
        "b_start": first_start + timedelta(days=60), "b_end": first_start + timedelta(days=60, minutes=30),
        # Sent in this order, a millisecond apart per application.
        "created_at": datetime(2026, 6, 1, tzinfo=UTC) + timedelta(milliseconds=i),
        "rescheduled_at": datetime(2026, 6, 2, tzinfo=UTC) + timedelta(milliseconds=i),
        "cancelled_at": datetime(2026, 6, 3, tzinfo=UTC) + timedelta(milliseconds=i),
    }


def bodies_for(i, chain):
    """Return {trigger: bytes} for application i's create, reschedule and cancel."""
    from tests.calcom_helpers import encode, sample, with_email

    metadata = {"videoCallUrl": f"https://app.cal.com/video/{chain['uid_a']}"}
    if i % 2:  # half are matched by metadata.application_id, half by the booker's email
        metadata["application_id"] = chain["public_id"]
    created = sample("booking_created", uid=chain["uid_a"], iCalUID=chain["ical"], bookingId=10_000_000 + i,
                     createdAt=_iso_ms(chain["created_at"]), startTime=_iso(chain["a_start"]),
                     endTime=_iso(chain["a_end"]), metadata=metadata)
    rescheduled = sample("booking_rescheduled", uid=chain["uid_b"], rescheduleUid=chain["uid_a"],
                         iCalUID=chain["ical"], bookingId=20_000_000 + i, rescheduleId=10_000_000 + i,
                         createdAt=_iso_ms(chain["rescheduled_at"]), startTime=_iso(chain["b_start"]),
                         endTime=_iso(chain["b_end"]), metadata=metadata)
    cancelled = sample("booking_cancelled", uid=chain["uid_b"], iCalUID=chain["ical"], bookingId=20_000_000 + i,
                       createdAt=_iso_ms(chain["cancelled_at"]),
                       startTime=chain["b_start"].isoformat(), endTime=chain["b_end"].isoformat())
    return {
        name: encode(with_email(data, chain["email"], chain["name"]))
        for name, data in (("created", created), ("rescheduled", rescheduled), ("cancelled", cancelled))
    }


def signed(path, body, secret):
    from scheduling.providers import calcom

    return (path, body, {"Content-Type": "application/json", calcom.SIGNATURE_HEADER: calcom.sign(body, secret)})


# --- setting up ----------------------------------------------------------------------------


WARM = 300


def seed(n_apps):
    """Create the benchmark cohort: n_apps applications plus WARM more for the warm-up; return it.

    The warm-up books the extra applications of the same cohort, and ANALYZE follows, so the
    planner starts with statistics that describe bookings of this cohort (an empty table's
    statistics make it pick the wrong (cohort, …) index until autovacuum catches up).
    """
    from django.db import connection

    from applications.models import Application, Cohort, Organization
    from bench.urls_bench import FLOOR_TABLE

    org = Organization.objects.create(name="Bench org", slug="bench-org")
    cohort = Cohort.objects.create(organization=org, name="Bench cohort")
    Cohort.objects.create(organization=org, name="Store-only cohort")  # for the yardstick phase
    Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_b{i:08d}", applicant_name=f"Applicant {i:06d}",
                     contact_email=f"applicant{i:06d}@bench.example.org", status="waiting_first_round",
                     current_stage="first_round") for i in range(n_apps + WARM)],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, "
                       "received_at timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)")
        cursor.execute("VACUUM ANALYZE")
    return cohort


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port, workers, threads, log_path):
    env = common.django_env(DB_NAME)
    command = [GUNICORN, "cohortos.wsgi:application", "--worker-class", "gthread",
               "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
               "--chdir", str(common.ROOT), "--keep-alive", "30", "--backlog", "2048",
               "--log-level", "warning", "--error-logfile", str(log_path)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(150):
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start listening within 15 s")


def stop_server(server):
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(5)


def cpu_seconds(pids):
    """Return the user+system CPU seconds used so far by the processes `pids` (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(server):
    children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    return [server.pid, *map(int, children)]


def postgres_pids():
    """Return the pids of the PostgreSQL backends serving the bench database (gunicorn's connections)."""
    import psycopg

    with psycopg.connect(common.database_url(DB_NAME), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            [DB_NAME]).fetchall()
    return [row[0] for row in rows]


def load(plan, port, concurrency, rate=None, workdir=None):
    """Run bench/loadgen.py in its own process over `plan`; return its outcome dict."""
    plan_path = Path(workdir) / "plan.pickle"
    out_path = Path(workdir) / "out.pickle"
    with open(plan_path, "wb") as f:
        pickle.dump(plan, f)
    command = [PYTHON, str(common.ROOT / "bench" / "loadgen.py"), str(plan_path), str(out_path),
               "--port", str(port), "--concurrency", str(concurrency)]
    if rate:
        command += ["--rate", f"{rate:.3f}"]
    subprocess.run(command, check=True, timeout=1200)
    with open(out_path, "rb") as f:
        return pickle.load(f)


def measure(name, outcome, n_planned, cpu=None):
    lat = [r[2] for r in outcome["results"]]
    ok = [r for r in outcome["results"] if r[1] == 200]
    stats = common.summary_ms(lat)
    return {
        "phase": name, "requests": n_planned, "ok": len(ok),
        "errors": n_planned - len(ok), "rps": len(outcome["results"]) / outcome["elapsed"] if outcome["elapsed"] else 0,
        **stats, "samples": outcome["errors"],
        "server_cpu_ms": cpu[0] * 1000 / n_planned if cpu else float("nan"),
        "pg_cpu_ms": cpu[1] * 1000 / n_planned if cpu else float("nan"),
        "load": os.getloadavg()[0],
    }


# --- checking the end state ---------------------------------------------------------------


def check_state(cohort, chains, cancelled, n_requests):
    """Compare every application and the delivery/booking/status-change counts with the expectation.

    Counts include the WARM warm-up bookings (one delivery, booking and status change each).
    """
    from applications.models import Application, StatusChange
    from scheduling.models import Booking, WebhookDelivery

    wrong = []
    rows = Application.objects.filter(cohort=cohort).values_list(
        "public_id", "status", "current_stage", "interview_booking_uid", "interview_start", "interview_end",
        "pending_booking_uid", "reschedule_requested")
    by_id = {row[0]: row for row in rows}
    for i, chain in enumerate(chains):
        row = by_id[chain["public_id"]]
        if i in cancelled:
            expected = (chain["public_id"], "waiting_first_round", "first_round", "", None, None, "", False)
        else:
            expected = (chain["public_id"], "first_round_scheduled", "first_round", chain["uid_b"],
                        chain["b_start"], chain["b_end"], "", False)
        if row != expected:
            wrong.append((i, row, expected))
    deliveries = WebhookDelivery.objects.filter(cohort=cohort)
    counts = {
        "applications": (len(by_id), len(chains) + WARM),
        "deliveries stored": (deliveries.count(), n_requests + WARM),
        "deliveries applied": (deliveries.filter(outcome="applied").count(), n_requests + WARM),
        "bookings": (Booking.objects.filter(cohort=cohort).count(), 2 * len(chains) + WARM),
        "status changes": (StatusChange.objects.filter(application__cohort=cohort).count(),
                           len(chains) + len(cancelled) + WARM),
        "applications as expected": (len(chains) - len(wrong), len(chains)),
    }
    return counts, wrong[:5]


# --- the run -------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description="Webhook throughput and latency vs a one-INSERT floor.")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="client connections at max rate")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()
    assert 0 < args.apps <= 200_000

    common.recreate_database(DB_NAME)
    common.setup_django(DB_NAME)
    from django.core.management import call_command
    from django.db import connection, connections

    call_command("migrate", verbosity=0)
    cohort = seed(args.apps)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    from applications.models import Application

    ids = dict(Application.objects.filter(cohort=cohort).values_list("applicant_name", "public_id"))
    chains = [chain_for(i, ids[f"Applicant {i:06d}"]) for i in range(args.apps)]
    warm_chains = [chain_for(i, ids[f"Applicant {i:06d}"]) for i in range(args.apps, args.apps + WARM)]
    from applications.models import Cohort

    store_cohort = Cohort.objects.get(name="Store-only cohort")
    connections.close_all()

    path, secret = cohort.webhook_path(), cohort.webhook_secret
    bodies = [bodies_for(i, c) for i, c in enumerate(chains)]
    half = args.apps // 2
    # Max-rate phase: every create, and (trailing by half the cohort) the first half's reschedules.
    ours_max = []
    for i in range(args.apps):
        ours_max.append(signed(path, bodies[i]["created"], secret))
        if i >= half:
            ours_max.append(signed(path, bodies[i - half]["rescheduled"], secret))
    cancelled = {i for i in range(args.apps) if i % 4 == 0}
    ours_half = [signed(path, bodies[i]["rescheduled"], secret) for i in range(half, args.apps)]
    ours_half += [signed(path, bodies[i]["cancelled"], secret) for i in sorted(cancelled)]
    n_floor = min(len(ours_max), 6000)
    floor_plan = [("/bench/floor/", bodies[i % args.apps]["created"], {"Content-Type": "application/json"})
                  for i in range(n_floor)]
    warm_plan = [signed(path, bodies_for(args.apps + k, c)["created"], secret) for k, c in enumerate(warm_chains)]
    warm_plan += floor_plan[:WARM]
    store_path = f"/bench/store-only/{store_cohort.webhook_key}/"
    store_plan = [signed(store_path, bodies[i]["created"], store_cohort.webhook_secret)
                  for i in range(min(args.apps, 6000))]

    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"bench_gunicorn_{port}.log"
    results = []
    print(f"gunicorn gthread {args.workers}×{args.threads} on 127.0.0.1:{port}; {args.apps} applications; "
          f"client concurrency {args.concurrency}", flush=True)
    server = start_server(port, args.workers, args.threads, log_path)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            load(warm_plan, port, args.concurrency, workdir=workdir)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            connections.close_all()
            for name, plan, rate in (("floor, max rate", floor_plan, None), ("ours, max rate", ours_max, None),
                                     ("floor, max rate (again)", floor_plan, None),
                                     ("yardstick: verify+store only, max rate", store_plan, None)):
                print(f"… {name}: {len(plan)} requests", flush=True)
                backends = postgres_pids()
                before = cpu_seconds(server_pids(server)), cpu_seconds(backends)
                outcome = load(plan, port, args.concurrency, workdir=workdir)
                cpu = (cpu_seconds(server_pids(server)) - before[0], cpu_seconds(backends) - before[1])
                results.append(measure(name, outcome, len(plan), cpu))
            ours_rps = results[1]["rps"]
            half_rate = ours_rps / 2
            name = f"ours, half our max ({half_rate:.0f} req/s)"
            print(f"… {name}: {len(ours_half)} requests", flush=True)
            # Open loop: enough connections that a slow answer never delays the next request.
            backends = postgres_pids()
            before = cpu_seconds(server_pids(server)), cpu_seconds(backends)
            outcome = load(ours_half, port, max(32, args.concurrency), rate=half_rate, workdir=workdir)
            cpu = (cpu_seconds(server_pids(server)) - before[0], cpu_seconds(backends) - before[1])
            results.append(measure(name, outcome, len(ours_half), cpu))
    finally:
        stop_server(server)

    counts, wrong = check_state(cohort, chains, cancelled, len(ours_max) + len(ours_half))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_floor")
        floor_rows = cursor.fetchone()[0]
    counts["floor rows"] = (floor_rows, 2 * n_floor + WARM)
    server_errors = log_path.read_text().count("Traceback") if log_path.exists() else 0

    floor_rps = max(results[0]["rps"], results[2]["rps"])
    ratio = ours_rps / floor_rps if floor_rps else 0
    half = results[4]
    errors = sum(r["errors"] for r in results)
    state_ok = all(got == want for got, want in counts.values())

    rows = [[r["phase"], r["requests"], r["errors"], f"{r['rps']:.0f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}",
             f"{r['p99']:.1f}", f"{r['max']:.0f}", f"{r['server_cpu_ms']:.2f}", f"{r['pg_cpu_ms']:.2f}",
             f"{r['load']:.1f}"]
            for r in results]
    runs = common.table(["phase", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms",
                         "gunicorn CPU ms/req", "PostgreSQL CPU ms/req", "load avg after"], rows)
    checks = common.table(["check", "result", "target", "verdict"], [
        ["our max rate / floor (best of two floor runs)", f"{ours_rps:.0f} / {floor_rps:.0f} = {ratio:.0%}",
         f"≥ {TARGET_RATIO:.0%}", common.verdict(ratio >= TARGET_RATIO)],
        ["p99 at half our max rate (from due time)", f"{half['p99']:.1f} ms", f"< {TARGET_P99_MS:.0f} ms",
         common.verdict(half["p99"] < TARGET_P99_MS)],
        ["errors (non-200 or no answer), all phases", f"{errors} (+{server_errors} server tracebacks)", "0",
         common.verdict(errors == 0 and server_errors == 0)],
        ["database = expected final state", "; ".join(f"{k} {got}/{want}" for k, (got, want) in counts.items()),
         "all equal", common.verdict(state_ok)],
    ])
    print()
    print(runs)
    print()
    print(checks)
    for problem in wrong:
        print("mismatch:", problem)
    for r in results:
        for sample in r["samples"][:3]:
            print("error:", r["phase"], sample)

    if not args.no_results:
        common.write_section("webhook_throughput", f"""
## Webhook throughput and latency (`bench/webhook_throughput.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
gunicorn gthread, {args.workers} workers × {args.threads} threads, DEBUG off, persistent connections
(CONN_MAX_AGE=3600); load generator `bench/loadgen.py` in its own process, {args.concurrency} keep-alive
connections at max rate, open loop at half rate (latency measured from each request's due time).
{args.apps:,} applications; signed BOOKING_CREATED for all, BOOKING_RESCHEDULED for all, BOOKING_CANCELLED
for every fourth; the floor is `bench/floor/`, one raw `INSERT` of the same bodies. Client, server and
PostgreSQL share the same {os.cpu_count()} cores, and so does other work on this machine (the 1-minute
load average after each phase is in the last column; above {os.cpu_count()} means requests queued for CPU).

{runs}

{checks}
""")
    if not args.keep:
        connections.close_all()
        common.drop_database(DB_NAME)
    return 0 if (ratio >= TARGET_RATIO and half["p99"] < TARGET_P99_MS and errors == 0 and state_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
