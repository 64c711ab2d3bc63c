"""Statements per webhook request, counted the way issue 15 counts them.

    .venv/bin/python bench/statements.py          # about 20 seconds
    .venv/bin/python bench/statements.py -v       # and print every statement

In-process on PostgreSQL (a fresh database, `cohortos_bench_statements` unless
`--database` says otherwise), DEBUG off, autocommit as in production: each case is
one POST through Django's test client to the real webhook URL, wrapped in
`CaptureQueriesContext`, so BEGIN, COMMIT, savepoints and the after-commit work all
count. The cases: a BOOKING_CREATED matched by email; the same bytes again (a
byte-identical redelivery); its BOOKING_RESCHEDULED (matched through the chain);
the reschedule's BOOKING_CANCELLED. For the redelivery it also counts the ERROR
lines PostgreSQL logged for this connection (a failed INSERT logs one each time).

The cohort has `--apps` applications (default 10,000). Each case but the last runs
in a process that has the cohort cached (scheduling/webhook_keys.py: a redelivery
just before); the last shows a cold process (+2: the cohort and its rounds).
Targets (issue 15): at most 12 statements for the created booking, at most 3 for
the redelivery, not counting issue 13's audit rows (as tests/test_statement_counts.py),
each answered 200 with its expected outcome, and no ERROR (an unreadable log is a miss).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

TARGETS = {"created, matched by email": 12, "byte-identical redelivery": 3}


def main():
    parser = argparse.ArgumentParser(description="Statements per webhook request.")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every statement")
    common.add_database_argument(parser, "statements")
    args = parser.parse_args()

    common.recreate_database(args.database)
    common.setup_django(args.database)
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from applications.models import Application, Cohort, Organization
    from bench.webhook_throughput import bodies_for, chain_for, errors_logged, postgres_log, signed

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench org", slug="bench-org")
    cohort = Cohort.objects.create(organization=org, name="Statements cohort")
    Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_s{i:08d}", applicant_name=f"Applicant {i:06d}",
                     contact_email=f"applicant{i:06d}@bench.example.org", status="waiting_first_round",
                     current_stage="first_round") for i in range(args.apps)],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    client = Client(HTTP_HOST="127.0.0.1")
    log = postgres_log()

    def post(body):
        path, data, headers = signed(cohort.webhook_path(), body, cohort.webhook_secret)
        return client.post(path, data=data, content_type="application/json",
                           headers={k: v for k, v in headers.items() if k != "Content-Type"})

    # Warm up (imports, caches, prepared plans) on other applications, as a running server would be.
    for i in (2, 4, 6):
        warm = bodies_for(i, chain_for(i, f"app_s{i:08d}"))
        post(warm["created"]), post(warm["created"]), post(warm["rescheduled"])
    from scheduling.webhook_keys import forget_all

    i = args.apps // 2 * 2  # even: no metadata, matched by email only
    i = min(i, args.apps - 2)
    bodies = bodies_for(i, chain_for(i, f"app_s{i:08d}"))
    rows, ok, listings = [], True, []
    cold = bodies_for(i + 1, chain_for(i + 1, f"app_s{i + 1:08d}"))["created"]
    for name, body in (("created, matched by email", bodies["created"]),
                       ("byte-identical redelivery", bodies["created"]),
                       ("rescheduled, matched by the chain", bodies["rescheduled"]),
                       ("cancelled", bodies["cancelled"]),
                       ("created, in a process that has not seen the cohort yet", cold)):
        if name.startswith("created, in a process"):
            forget_all()  # the key → cohort cache is empty: the cohort and its rounds are read
        else:
            post(warm["created"])  # a redelivery just before: this process has the cohort cached
        offset = log.stat().st_size if log else 0
        with CaptureQueriesContext(connection) as captured:
            response = post(body)
        errors = errors_logged(log, offset, [pid])
        count = len(captured.captured_queries)
        # Issue 13's audit rows (timeline entries, simple-history's historical tables) ride on top.
        audit = sum(1 for q in captured.captured_queries
                    if "timelineentry" in q["sql"].lower() or '"scheduling_historical' in q["sql"].lower()
                    or '"applications_historical' in q["sql"].lower() or '"orphans_historical' in q["sql"].lower())
        target = TARGETS.get(name)
        outcome = response.json().get("outcome")
        expected = "duplicate" if name == "byte-identical redelivery" else "applied"
        # A refused or failed request runs few statements: it meets nothing. Nor does a redelivery
        # whose ERROR lines could not be counted (the log unreadable).
        met = target is None or (count - audit <= target and response.status_code == 200 and outcome == expected)
        if name == "byte-identical redelivery" and (errors is None or errors):
            met = False
        ok &= met
        rows.append([name, response.status_code, outcome, count, audit, count - audit,
                     f"≤ {target}" if target else "—",
                     "unknown (log not readable)" if errors is None else len(errors),
                     common.verdict(met) if target else ""])
        listings.append((name, [q["sql"] for q in captured.captured_queries]))

    report = common.table(["request", "HTTP", "outcome", "statements", "of which audit rows (issue 13)",
                           "apply's own", "target (apply's own)", "PostgreSQL ERRORs", "verdict"], rows)
    print(report)
    if args.verbose:
        for name, sqls in listings:
            print(f"\n{name}:")
            for n, sql in enumerate(sqls, 1):
                print(f"  {n:2}. {sql[:220]}")
    if not args.no_results:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        statements = "\n".join(f"{n}. `{sql[:160]}`" for n, sql in enumerate(listings[0][1], 1))
        common.write_section("statements", f"""
## Statements per webhook request (`bench/statements.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
One POST each through Django's test client to the webhook URL, autocommit as in production, counted by
`CaptureQueriesContext` (BEGIN, COMMIT and after-commit work included); {args.apps:,} applications.

{report}

The created booking's statements:

{statements}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(args.database)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
