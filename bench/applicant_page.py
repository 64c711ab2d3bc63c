"""The applicant's page, /i/<token>/, as the cohort grows: 1,000 → 50,000 applications.

    .venv/bin/python bench/applicant_page.py                 # about a minute
    .venv/bin/python bench/applicant_page.py --sizes 1000,100000 --keep

In-process on PostgreSQL (a fresh database `cohortos_bench_applicant`), DEBUG off,
through Django's test client (middleware, CSRF, rate limit, template; no socket). Every
application has a page token and round 1 is configured (the page builds the bound
booking link). At each size, on applications spread through the cohort: 300 GETs of a
waiting applicant's page, 300 GETs of an unknown token (the 404), and 100 "I've booked"
POSTs (each on its own application: the whole booking path, status change included),
with the admin's application page (GET) alongside as the yardstick. Target: the page's
median at the largest size within 1.5× of the smallest (flat), and under the admin page's.
"""

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = common.database_name("applicant")  # --database changes it

GETS, POSTS = 300, 100
FLAT_FACTOR = 1.5


def grow(cohort, start, stop):
    """Add applications start..stop-1 (waiting for round 1), each with its page token."""
    from applications.models import Application
    from scheduling.models import ApplicantToken

    apps = Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_p{i:08d}", applicant_name=f"Applicant {i:07d}",
                     contact_email=f"applicant{i:07d}@bench.example.org", status="waiting_first_round",
                     current_stage="first_round") for i in range(start, stop)],
        batch_size=5000,
    )
    ApplicantToken.objects.bulk_create(
        [ApplicantToken(application=a, key=f"bench-token-{a.public_id}-{'x' * 20}",
                        expires_at=a.created_at + timedelta(days=90)) for a in apps],
        batch_size=5000,
    )


def timed(call, n):
    out = []
    for i in range(n):
        began = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - began)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,50000")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    common.add_database_argument(parser, "applicant")
    args = parser.parse_args()
    global DB_NAME  # noqa: PLW0603 - the helpers above read it
    DB_NAME = args.database
    sizes = [int(s) for s in args.sizes.split(",")]

    common.recreate_database(DB_NAME)
    common.setup_django(DB_NAME)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    # The limits would stop a benchmark by design; their cost (three cache counters) stays in.
    settings.APPLICANT_RATE_PER_IP = settings.APPLICANT_RATE_PER_TOKEN = "1000000/m"
    settings.APPLICANT_POST_RATE_PER_TOKEN = "1000000/h"

    from applications.models import Cohort, Membership, Organization
    from django.contrib.auth import get_user_model
    from scheduling.models import InterviewRound

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    org = Organization.objects.create(name="Bench org", slug="bench-org", time_zone="Europe/London")
    cohort = Cohort.objects.create(organization=org, name="Applicant-page cohort")
    InterviewRound.objects.create(cohort=cohort, number=1, booking_url="https://calendar.app.google/bench")
    admin = get_user_model().objects.create_user("bench-admin", password="x")
    Membership.objects.create(user=admin, organization=org, role=Membership.Role.ADMIN)
    applicant = Client(REMOTE_ADDR="10.1.2.3", HTTP_HOST="127.0.0.1")
    staff = Client(HTTP_HOST="127.0.0.1")
    staff.force_login(admin)
    day = (timezone.now() + timedelta(days=10)).date().isoformat()

    rows, medians, have = [], {}, 0
    for size in sizes:
        print(f"… growing the cohort to {size:,} applications", flush=True)
        grow(cohort, have, size)
        have = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        step = max(size // (GETS + POSTS), 1)
        picks = [f"app_p{(k * step) % size:08d}" for k in range(GETS + POSTS)]
        from applications.models import Application

        apps = {a.public_id: a for a in Application.objects.filter(cohort=cohort, public_id__in=picks)}
        token = lambda i: f"bench-token-{picks[i]}-{'x' * 20}"  # noqa: E731

        def page(i):
            assert applicant.get(f"/i/{token(i)}/").status_code == 200

        def gone(i):
            assert applicant.get(f"/i/no-such-token-{i}/").status_code == 404

        def booked(i):
            response = applicant.post(f"/i/{token(GETS + i)}/booked/",
                                      {"date": day, "time": "10:00", "time_zone": "Europe/London"})
            assert response.status_code == 303, response.status_code

        def admin_page(i):
            a = apps[picks[i]]
            assert staff.get(f"/cohorts/{cohort.slug}/applications/{a.pk}/").status_code == 200

        t = {"page": timed(page, GETS), "404": timed(gone, GETS), "booked": timed(booked, POSTS),
             "admin": timed(admin_page, GETS)}
        ms = lambda xs, q: common.percentile(xs, q) * 1000  # noqa: E731
        medians[size] = {k: statistics.median(v) * 1000 for k, v in t.items()}
        rows.append([f"{size:,}"] + [f"{ms(t[k], 50):.2f} / {ms(t[k], 95):.2f}"
                                     for k in ("page", "404", "booked", "admin")])
        print(common.table(["applications", "page p50/p95 ms", "404 p50/p95 ms", "I've booked p50/p95 ms",
                            "admin page p50/p95 ms"], rows[-1:]), flush=True)

    growth = medians[sizes[-1]]["page"] / medians[sizes[0]]["page"]
    versus_admin = medians[sizes[-1]]["page"] / medians[sizes[-1]]["admin"]
    print()
    print(common.table(["applications in cohort", "applicant page p50 / p95 ms", "unknown token (404)",
                        "I've booked (POST, whole booking path)", "admin's application page"], rows))
    print()
    print(common.table(["check", "result", "target", "verdict"], [
        [f"page median at {sizes[-1]:,} / at {sizes[0]:,}", f"{growth:.2f}×", f"≤ {FLAT_FACTOR}×",
         common.verdict(growth <= FLAT_FACTOR)],
        [f"page median / admin page median at {sizes[-1]:,}", f"{versus_admin:.2f}×", "< 1×",
         common.verdict(versus_admin < 1)],
    ]))
    print(f"\n{common.machine_facts(pg_version)}")
    connections.close_all()
    if not args.keep:
        common.drop_database(DB_NAME)
    return 0 if growth <= FLAT_FACTOR and versus_admin < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
