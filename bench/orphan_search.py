"""The orphan modal's search at scale: its candidates fragment with 10,000 and 100,000 applications.

    .venv/bin/python bench/orphan_search.py            # about 2 minutes
    .venv/bin/python bench/orphan_search.py --sizes 10000 --no-results

In-process through Django's test client (the server's work: queries and rendering, no
network), on PostgreSQL in a fresh database, `cohortos_bench_orphans` unless `--database` says otherwise: a cohort grown
to each size (varied names and emails, mixed statuses), one orphaned interview, and
an org admin. Times the htmx request the modal's debounced search box sends
(`orphans:candidates` with `?q=`): a surname, an email fragment, a miss, and the empty
query (suggestions). Target: median under 100 ms at 100,000 (the tab's own target).
"""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROUNDS = 25
TARGET_MS = 100.0
FIRST = ["Ada", "Alan", "Barbara", "Claude", "Dorothy", "Edsger", "Frances", "Grace", "Hedy", "Ivan", "Joan",
         "Katherine", "Leslie", "Margaret", "Niklaus", "Olga", "Radia", "Sophie", "Tim", "Valerie"]
LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Hodgkin", "Dijkstra", "Allen", "Hopper", "Lamarr",
        "Sutherland", "Clarke", "Johnson", "Lamport", "Hamilton", "Wirth", "Taussky", "Perlman", "Knuth"]
STATUSES = ["new", "waiting_first_round", "first_round_scheduled", "needs_first_decision",
            "waiting_second_round", "accepted", "declined"]
QUERIES = [("surname 'lovelace'", "lovelace"), ("email fragment 'ada.l'", "ada.l"),
           ("no match 'zzqx'", "zzqx"), ("suggestions (empty q)", "")]


def grow(cohort, start, stop):
    from applications.models import Application

    rng = random.Random(start)
    Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_o{i:08d}",
                     applicant_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                     contact_email=f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{i}@example.org",
                     status=(status := rng.choice(STATUSES)), current_stage="intake" if status == "new" else "first_round")
         for i in range(start, stop)],
        batch_size=5000,
    )


def timed(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url, HTTP_HX_REQUEST="true")
        elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(queries.captured_queries)


def main():
    parser = argparse.ArgumentParser(description="The orphan modal's search at scale.")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--keep", action="store_true")
    common.add_database_argument(parser, "orphans")
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    common.recreate_database(args.database)
    common.setup_django(args.database)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.urls import reverse

    from applications.models import Cohort, Membership, Organization
    from orphans.models import OrphanedInterview

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench org", slug="bench-org")
    cohort = Cohort.objects.create(organization=org, name="Orphan-search cohort")
    user = get_user_model().objects.create_user("bench-admin", "admin@example.org", "x")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.ADMIN)
    orphan = OrphanedInterview.objects.create(cohort=cohort, booking_uid="OrphanUid0000000000000",
                                              email="ada.lovelace@gmail.com", name="Ada Lovelace")
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    base = reverse("orphans:candidates", args=[cohort.slug, orphan.pk])

    rows, worst = [], 0.0
    have = 0
    for size in sizes:
        print(f"… growing the cohort to {size:,} applications", flush=True)
        grow(cohort, have, size)
        have = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for label, q in QUERIES:
            url = f"{base}?q={q}" if q else base
            for _ in range(3):
                timed(client, url)  # warm templates and connections
            samples = [timed(client, url) for _ in range(ROUNDS)]
            ms = [s * 1000 for s, _ in samples]
            median = common.percentile(ms, 50)
            if size == sizes[-1]:
                worst = max(worst, median)
            rows.append([f"{size:,}", label, f"{median:.1f}", f"{common.percentile(ms, 95):.1f}", samples[0][1]])
            print(common.table(["applications", "request", "median ms", "p95 ms", "queries"], rows[-1:]), flush=True)

    runs = common.table(["applications", "request", "median ms", "p95 ms", "queries"], rows)
    checks = common.table(["check", "result", "target", "verdict"], [
        [f"slowest median at {sizes[-1]:,}", f"{worst:.1f} ms", f"< {TARGET_MS:.0f} ms",
         common.verdict(worst < TARGET_MS)],
    ])
    print()
    print(runs)
    print()
    print(checks)
    if not args.no_results:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        common.write_section("orphan_search", f"""
## The orphan modal's search at scale (`bench/orphan_search.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
In-process (Django test client, DEBUG off) `GET orphans:candidates?q=…` with `HX-Request`, as the modal's
search box sends it; {ROUNDS} rounds each after 3 warm-ups; one orphan, an org admin, mixed statuses.

{runs}

{checks}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(args.database)
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
