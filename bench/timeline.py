"""An application's timeline at thousands of entries: the application page, first, middle and last page.

    .venv/bin/python bench/timeline.py                 # about a minute
    .venv/bin/python bench/timeline.py --sizes 1000 --no-results

In-process through Django's test client (queries and rendering, no network), on
PostgreSQL in a fresh database `cohortos_bench_timeline`: one application whose
timeline holds N lines, half status changes and half timeline entries (booking
events), and an org admin. Times `applications:detail` at `?page=1`, the middle page
and the last page. Target: median under 100 ms at 50,000 lines, and the number of
queries the same at every size.
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "cohortos_bench_timeline"
ROUNDS = 15
TARGET_MS = 100.0


def grow(application, start, stop, now):
    from applications.models import StatusChange
    from applications.timeline import TimelineEntry

    half = range(start, stop, 2)
    StatusChange.objects.bulk_create(
        [StatusChange(application=application, old_status="waiting_first_round",
                      new_status="first_round_scheduled", created_at=now - timedelta(minutes=i))
         for i in half], batch_size=5000)
    TimelineEntry.objects.bulk_create(
        [TimelineEntry(application=application, kind="booking", at=now - timedelta(minutes=i + 1),
                       data={"trigger": "BOOKING_RESCHEDULED", "uid": f"uid{i}", "start": now.isoformat(),
                             "from_start": now.isoformat(), "by": "ada@example.org"})
         for i in half], batch_size=5000)


def timed(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(queries.captured_queries)


def main():
    parser = argparse.ArgumentParser(description="An application's timeline at scale.")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    common.recreate_database(DB_NAME)
    common.setup_django(DB_NAME)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from applications import timeline
    from applications.models import Application, Cohort, Membership, Organization

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench org", slug="bench-org")
    cohort = Cohort.objects.create(organization=org, name="Timeline cohort")
    user = get_user_model().objects.create_user("bench-admin", "admin@example.org", "x")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    application = Application.objects.create(cohort=cohort, applicant_name="Ada Lovelace",
                                             contact_email="ada@example.org", status="first_round_scheduled")
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    base = reverse("applications:detail", args=[cohort.slug, application.pk])
    now = timezone.now()

    rows, worst, query_counts = [], 0.0, set()
    have = 0
    for size in sizes:
        print(f"… growing the timeline to {size:,} lines", flush=True)
        grow(application, have, size, now)
        have = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        pages = -(-size // timeline.PAGE_SIZE)
        for label, page in [("page 1", 1), ("middle page", pages // 2 or 1), ("last page", pages)]:
            url = f"{base}?page={page}"
            for _ in range(3):
                timed(client, url)
            samples = [timed(client, url) for _ in range(ROUNDS)]
            ms = [s * 1000 for s, _ in samples]
            median = common.percentile(ms, 50)
            if size == sizes[-1]:
                worst = max(worst, median)
            query_counts.add(samples[0][1])
            rows.append([f"{size:,}", f"{label} ({page})", f"{median:.1f}", f"{common.percentile(ms, 95):.1f}",
                         samples[0][1]])
            print(common.table(["lines", "request", "median ms", "p95 ms", "queries"], rows[-1:]), flush=True)

    runs = common.table(["lines", "request", "median ms", "p95 ms", "queries"], rows)
    first = float(rows[0][2])
    checks = common.table(["check", "result", "target", "verdict"], [
        [f"slowest median at {sizes[-1]:,}", f"{worst:.1f} ms ({worst / first:.1f}× the first row)",
         f"< {TARGET_MS:.0f} ms", common.verdict(worst < TARGET_MS)],
        ["queries per page", ", ".join(str(q) for q in sorted(query_counts)), "the same at every size",
         common.verdict(len(query_counts) == 1)],
    ])
    print()
    print(runs)
    print()
    print(checks)
    if not args.no_results:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        common.write_section("timeline", f"""
## An application's timeline at scale (`bench/timeline.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
In-process (Django test client, DEBUG off) `GET applications:detail?page=…`; {ROUNDS} rounds each after 3
warm-ups; half the lines status changes, half booking events (one UNION query pages both).

{runs}

{checks}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(DB_NAME)
    ok = worst < TARGET_MS and len(query_counts) == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
