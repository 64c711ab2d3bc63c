"""Benchmark: the Applications tab against Django admin's changelist for the same cohort.

    .venv/bin/python bench/applications_tab.py            # a cohort of 10,000 applications
    .venv/bin/python bench/applications_tab.py --large    # and one of 100,000

Runs on PostgreSQL in its own database (--database-url or BENCH_DATABASE_URL; default
the bench server's `<BENCH_DB_PREFIX>tab`, cohortos_bench_tab, created if missing), builds
the cohorts once (reused on the next run), then times, round by round and side by
side, our tab's first page, a status-filtered page and a search against the admin
changelist for the same cohort with the same filter. Prints medians, the ratio
(ours / admin, lower is better) and each page's query count. In-process through
Django's test client: it measures the server's work (queries + rendering), not
the network. Targets (issue 3): under 100 ms median for the first page at 10,000,
and no slower than the admin. Not quite like for like: the admin renders 100 rows a
page (its list_per_page) and no chip counts; the tab renders 50 rows, the per-status
counts and the Pipeline column.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

DEFAULT_URL = common.database_url(common.database_name("tab"))

FIRST = ["Ada", "Alan", "Barbara", "Claude", "Dorothy", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
         "Joan", "Katherine", "Leslie", "Margaret", "Niklaus", "Olga", "Radia", "Sophie", "Tim",
         "Valerie", "Whitfield", "Yukihiro", "Annie", "Donald", "Evelyn", "John", "Lynn", "Marvin",
         "Shafi", "Ken", "Adele", "Bjarne", "Emmy", "Mary", "Rosalind", "Kurt", "Emil", "Hilbert"]
LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Hodgkin", "Dijkstra", "Allen", "Hopper", "Lamarr",
        "Sutherland", "Clarke", "Johnson", "Lamport", "Hamilton", "Wirth", "Taussky", "Perlman",
        "Wilson", "Berners-Lee", "Taylor", "Diffie", "Matsumoto", "Easley", "Knuth", "Boyd",
        "Backus", "Conway", "Minsky", "Goldwasser", "Thompson", "Goldberg", "Stroustrup", "Noether",
        "Somerville", "Franklin", "Godel", "Post", "Church", "Kleene", "Floyd"]


def setup_django(database_url):
    os.environ["DATABASE_URL"] = database_url
    # Production-like: no DEBUG query log, no debug toolbar script.
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cohortos.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    create_database(database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_database(database_url):
    """Create the benchmark's PostgreSQL database if it does not exist yet."""
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def build_cohort(slug, size, user):
    """Return the cohort `slug` with `size` applications, creating them on the first run."""
    from django.db import connection, transaction
    from django.utils import timezone

    from applications.models import Application, Cohort, Membership, Organization, StatusChange
    from orphans.models import OrphanedInterview
    from scheduling.status import Status, stage_for

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench", "time_zone": "Europe/London"})
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": "admin"})
    cohort = Cohort.objects.filter(slug=slug).first()
    if cohort and cohort.applications.count() == size:
        return cohort
    if cohort:
        cohort.delete()
    cohort = Cohort.objects.create(organization=org, name=f"Bench {size:,}", slug=slug)
    print(f"building {slug}: {size:,} applications…", flush=True)
    rng = random.Random(size)
    now = timezone.now()
    # Roughly a real cohort's shape: most still early, a tail of decisions.
    weights = {
        Status.NEW: 20, Status.WAITING_FIRST_ROUND: 20, Status.FIRST_ROUND_SCHEDULED: 12,
        Status.NEEDS_FIRST_DECISION: 8, Status.WAITING_SECOND_ROUND: 6, Status.SECOND_ROUND_SCHEDULED: 5,
        Status.NEEDS_FINAL_DECISION: 4, Status.ACCEPTED: 5, Status.WAITLIST: 5, Status.DECLINED: 15,
    }
    statuses, cum = list(weights), list(weights.values())
    batch = 5000
    with transaction.atomic():
        for start in range(0, size, batch):
            rows = []
            for i in range(start, min(start + batch, size)):
                first, last = rng.choice(FIRST), rng.choice(LAST)
                status = rng.choices(statuses, cum)[0]
                updated = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
                scheduled = status in (Status.FIRST_ROUND_SCHEDULED, Status.SECOND_ROUND_SCHEDULED)
                start_at = now + timedelta(hours=rng.randint(-72, 24 * 21)) if scheduled else None
                rows.append(Application(
                    cohort=cohort, applicant_name=f"{first} {last}",
                    contact_email=f"{first}.{last}.{i}@example.org".lower(),
                    public_id=f"app_{slug}_{i}", status=status, current_stage=stage_for(status),
                    interview_start=start_at,
                    interview_end=start_at + timedelta(minutes=30) if start_at else None,
                    interview_time_zone="Europe/Paris" if start_at else "",
                    interview_meeting_url="https://meet.example/x" if start_at else "",
                    reschedule_requested=status == Status.WAITING_FIRST_ROUND and i % 50 == 0,
                    reschedule_reason="Host travelling" if i % 50 == 0 else "",
                    created_at=updated - timedelta(days=3), updated_at=updated,
                ))
            Application.objects.bulk_create(rows)
        # Every application that is not new got there through move_to: one history row each.
        changes = [
            StatusChange(application_id=pk, old_status=Status.NEW, new_status=status, created_at=updated)
            for pk, status, updated in cohort.applications.exclude(status=Status.NEW)
            .values_list("pk", "status", "updated_at").iterator()
        ]
        StatusChange.objects.bulk_create(changes, batch_size=batch)
        OrphanedInterview.objects.bulk_create(
            OrphanedInterview(cohort=cohort, booking_uid=f"orphan-{slug}-{n}", email=f"o{n}@example.org")
            for n in range(3)
        )
    # What autovacuum would do soon after a real import: statistics, and the visibility
    # map that lets COUNT(*) GROUP BY status run as an index-only scan.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE applications_application")
        cursor.execute("VACUUM ANALYZE applications_statuschange")
    return cohort


def timed(client, url, **headers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        # As production sees it behind TLS (the SSL redirect would answer plain HTTP with 301).
        response = client.get(url, secure=True, **headers)
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(ctx)


def bench_cohort(client, cohort, rounds):
    """Time each (our URL, admin URL) pair `rounds` times, interleaved; print a table."""
    from django.urls import reverse

    ours = reverse("applications:list", args=[cohort.slug])
    admin = reverse("admin:applications_application_changelist") + f"?cohort__id__exact={cohort.pk}"
    cases = [
        ("first page", ours, admin),
        ("status filter", ours + "?status=waiting_first_round",
         admin + "&status__exact=waiting_first_round"),
        ("search 'lovelace'", ours + "?q=lovelace", admin + "&q=lovelace"),
        ("search 'ada.l'", ours + "?q=ada.l", admin + "&q=ada.l"),
    ]
    extra = [("table fragment (htmx poll)", ours, {"HTTP_HX_REQUEST": "true"})]
    print(f"\n{cohort.name}: {cohort.applications.count():,} applications, {rounds} rounds each")
    print(f"{'page':<28}{'ours ms':>10}{'admin ms':>10}{'ratio':>8}{'queries':>10}")
    for label, our_url, admin_url in cases:
        for _ in range(3):  # warm connections, caches and template loading
            timed(client, our_url), timed(client, admin_url)
        our_ms, admin_ms = [], []
        for _ in range(rounds):
            ms, our_q = timed(client, our_url)
            our_ms.append(ms)
            ms, admin_q = timed(client, admin_url)
            admin_ms.append(ms)
        a, b = statistics.median(our_ms), statistics.median(admin_ms)
        print(f"{label:<28}{a:>10.1f}{b:>10.1f}{a / b:>8.2f}{f'{our_q}/{admin_q}':>10}")
    for label, url, headers in extra:
        timed(client, url, **headers)
        samples = [timed(client, url, **headers) for _ in range(rounds)]
        print(f"{label:<28}{statistics.median(s for s, _ in samples):>10.1f}{'':>10}{'':>8}"
              f"{samples[0][1]:>10}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", action="store_true", help="also a cohort of 100,000 applications")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("This benchmark targets PostgreSQL: pass --database-url postgres://…")
    setup_django(args.database_url)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    users = get_user_model()
    user = users.objects.filter(username="bench").first() or users.objects.create_superuser(
        "bench", "bench@example.org", "bench-password"
    )
    sizes = [("bench-10k", 10_000)] + ([("bench-100k", 100_000)] if args.large else [])
    cohorts = [build_cohort(slug, size, user) for slug, size in sizes]
    client = Client()
    client.force_login(user)
    print(f"PostgreSQL {connection.pg_version // 10000}, database {connection.settings_dict['NAME']}; "
          "ratio = ours / admin (below 1: ours is faster); queries = ours/admin")
    for cohort in cohorts:
        bench_cohort(client, cohort, args.rounds)


if __name__ == "__main__":
    main()
