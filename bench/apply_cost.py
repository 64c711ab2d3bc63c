"""Apply cost per webhook as the cohort grows: 1,000 → 10,000 → 100,000 applications.

    .venv/bin/python bench/apply_cost.py              # about 2 minutes
    .venv/bin/python bench/apply_cost.py --sizes 1000,10000 --no-results

In-process on PostgreSQL (a fresh database `cohortos_bench_apply`), without HTTP: at
each size, 1,000 calls of `scheduling.ingest.receive_calcom_delivery` (store + match +
apply, one delivery each): 500 BOOKING_CREATED for applications never booked (half
matched by `metadata.application_id`, half by the booker's email only) then the 500
BOOKING_RESCHEDULED of those bookings (matched through the booking chain). Half the
cohort already has a booking and a tenth has an alternate email, so every table the
matching reads grows with the cohort. Statistics are refreshed (ANALYZE) after each
growth, as autovacuum would.

It then EXPLAINs every SELECT one apply runs, at each size, and fails a size whose
plans read a growing table sequentially (a Seq Scan from 10,000 rows up, or any scan
that filters out more than 200 rows). Target: the median at 100,000 within 1.5× of
the median at 1,000 (flat), and index scans only.
"""

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "cohortos_bench_apply"
APPLIES = 1000
FLAT_FACTOR = 1.5
FILTERED_ROWS_LIMIT = 200
# Tables whose size grows with the cohort: a sequential scan of one is a cost that grows.
GROWING = ("applications_application", "applications_applicationemail", "scheduling_booking",
           "scheduling_webhookdelivery", "applications_statuschange", "orphans_orphanedinterview")


def grow(cohort, start, stop):
    """Add applications start..stop-1 to `cohort`: every even one booked already, every tenth with an alternate email."""
    from applications.models import Application, ApplicationEmail
    from scheduling.models import Booking

    apps = Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_c{i:08d}", applicant_name=f"Applicant {i:07d}",
                     contact_email=f"applicant{i:07d}@bench.example.org", status="waiting_first_round",
                     current_stage="first_round") for i in range(start, stop)],
        batch_size=5000,
    )
    Booking.objects.bulk_create(
        [Booking(cohort=cohort, application=a, uid=f"old{a.public_id}", ical_uid=f"old{a.public_id}@Cal.com",
                 state=Booking.State.ACCEPTED, email=a.contact_email)
         for n, a in enumerate(apps, start) if n % 2 == 0],
        batch_size=5000,
    )
    ApplicationEmail.objects.bulk_create(
        [ApplicationEmail(application=a, email=f"alt{n:07d}@bench.example.org")
         for n, a in enumerate(apps, start) if n % 10 == 0],
        batch_size=5000,
    )


def analyze():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def bodies(i, public_id):
    from bench.webhook_throughput import bodies_for, chain_for

    chain = chain_for(i, public_id)
    chain["email"] = f"applicant{i:07d}@bench.example.org"
    return bodies_for(i, chain)


def explain_apply(cohort, body, size):
    """Apply `body` once, capturing its queries; EXPLAIN ANALYZE each SELECT; return problems found."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from scheduling.ingest import receive_calcom_delivery

    with CaptureQueriesContext(connection) as captured:
        receive_calcom_delivery(cohort, body)
    problems, selects = [], 0
    for query in captured.captured_queries:
        sql = query["sql"]
        if not sql.startswith("SELECT"):
            continue
        selects += 1
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql.replace("%", "%%"))
                plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        for table in GROWING:
            # Below 10,000 rows a sequential scan can be the planner's right choice.
            if f"Seq Scan on {table}" in plan and size >= 10_000:
                problems.append(f"Seq Scan on {table}: {sql[:160]}…\n{plan}")
        # An index scan that filters most of what it reads is a sequential scan in disguise.
        removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
        if removed and max(removed) > FILTERED_ROWS_LIMIT:
            problems.append(f"{max(removed)} rows read and filtered out: {sql[:160]}…\n{plan}")
    return selects, problems


def run_size(cohort, first, size):
    """Apply 500 creates and their 500 reschedules for the odd applications from `first`; return timings."""
    from applications.models import Application

    from scheduling.ingest import receive_calcom_delivery

    picks = list(range(first, first + APPLIES, 2))  # odd: never booked
    ids = dict(Application.objects.filter(public_id__in=[f"app_c{i:08d}" for i in picks])
               .values_list("public_id", "pk"))
    assert len(ids) == len(picks)
    prepared = [bodies(i, f"app_c{i:08d}") for i in picks]
    timings = {"created": [], "rescheduled": []}
    for kind in ("created", "rescheduled"):
        for body in prepared:
            start = time.perf_counter()
            _, result = receive_calcom_delivery(cohort, body[kind])
            timings[kind].append(time.perf_counter() - start)
            assert result.outcome == "applied", result
    return timings


def main():
    parser = argparse.ArgumentParser(description="Apply cost per webhook at growing cohort sizes.")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    assert sizes == sorted(sizes) and sizes[-1] <= 1_000_000

    common.recreate_database(DB_NAME)
    common.setup_django(DB_NAME)
    from django.core.management import call_command
    from django.db import connection, connections

    from applications.models import Cohort, Organization

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    org = Organization.objects.create(name="Bench org", slug="bench-org")
    cohort = Cohort.objects.create(organization=org, name="Apply-cost cohort")

    rows, summary, all_problems = [], {}, {}
    have = 0
    for size in sizes:
        print(f"… growing the cohort to {size:,} applications", flush=True)
        grow(cohort, have, size)
        have = size
        analyze()
        # Measure on never-booked (odd) applications spread through the cohort.
        first = 1 if size <= APPLIES else size // 2 + 1
        first -= first % 2 == 0
        timings = run_size(cohort, first, size)
        every = timings["created"] + timings["rescheduled"]
        ms = lambda xs, q: common.percentile(xs, q) * 1000  # noqa: E731
        summary[size] = statistics.median(every) * 1000
        # One more apply, EXPLAINed: a new booking for an application booked before (even index).
        selects, problems = explain_apply(cohort, bodies(first + 1, f"app_c{first + 1:08d}")["created"], size)
        all_problems[size] = problems
        rows.append([f"{size:,}", len(every), f"{ms(every, 50):.2f}", f"{ms(every, 95):.2f}",
                     f"{ms(timings['created'], 50):.2f} / {ms(timings['created'], 95):.2f}",
                     f"{ms(timings['rescheduled'], 50):.2f} / {ms(timings['rescheduled'], 95):.2f}",
                     f"{selects} SELECTs, {'all indexed' if not problems else f'{len(problems)} scans of a growing table'}"])
        print(common.table(["applications", "applies", "median ms", "p95 ms", "created p50/p95",
                            "rescheduled p50/p95", "EXPLAIN"], rows[-1:]), flush=True)

    growth = summary[sizes[-1]] / summary[sizes[0]]
    flat = growth <= FLAT_FACTOR
    indexed = not any(all_problems.values())
    runs = common.table(["applications in cohort", "applies", "median ms", "p95 ms", "created p50 / p95 ms",
                         "rescheduled p50 / p95 ms", "EXPLAIN of one apply"], rows)
    checks = common.table(["check", "result", "target", "verdict"], [
        [f"median at {sizes[-1]:,} / median at {sizes[0]:,}", f"{growth:.2f}×", f"≤ {FLAT_FACTOR}× (flat)",
         common.verdict(flat)],
        ["scans of growing tables (Seq Scan, or > 200 rows filtered) in an apply's SELECTs",
         str(sum(len(p) for p in all_problems.values())), "0", common.verdict(indexed)],
    ])
    print()
    print(runs)
    print()
    print(checks)
    for size, problems in all_problems.items():
        for problem in problems:
            print(f"at {size}: {problem}")
    if not args.no_results:
        common.write_section("apply_cost", f"""
## Apply cost as the cohort grows (`bench/apply_cost.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
In-process `receive_calcom_delivery` (store + match + apply) on PostgreSQL, no HTTP, DEBUG off:
{APPLIES:,} applies per size (500 BOOKING_CREATED, half matched by metadata and half by email only, then
their 500 BOOKING_RESCHEDULED, matched through the chain). Half of the cohort already has a booking and
a tenth an alternate email. Times are wall-clock per call on a machine shared with other work.

{runs}

{checks}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(DB_NAME)
    return 0 if flat and indexed else 1


if __name__ == "__main__":
    sys.exit(main())
