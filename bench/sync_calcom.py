"""Sync 10,000 bookings from a loopback fake of Cal.com API v2, against one webhook apply.

    .venv/bin/python bench/sync_calcom.py                    # 10,000 bookings
    .venv/bin/python bench/sync_calcom.py --bookings 2000 --no-results   # a quick look

In its own database `cohortos_bench_sync` (dropped afterwards), on loopback only:
1. a cohort with one application per booking (plus 500 for the webhook yardstick);
2. the yardstick: 500 BOOKING_CREATED webhook bodies applied in-process through
   `receive_calcom_delivery` (store + apply), median and mean per delivery;
3. a fake API (bench/fake_calcom_api.py) serving 10,000 accepted bookings in API v2's shape
   (half matched by metadata.application_id, half by email) on a loopback port;
4. sync #1: every booking was missed by the webhooks (10,000 changes); sync #2: the same
   bookings again over the same 30-day window, nothing changed (what `sync_calcom --days 30`
   costs when the webhooks missed nothing; the hourly sync fetches only what changed). Each is timed
   end to end (HTTP paging included) and per booking, and compared with one webhook apply.
"""

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = common.database_name("sync")  # --database changes it

UTC = timezone.utc
YARDSTICK = 500


def api_booking(i, public_id, now):
    """Booking i in API v2's shape (API_V2.md §4), created and updated in the last days."""
    from tests.calcom_api_fake import sample_bookings

    booking = sample_bookings()[0]
    start = datetime(2026, 7, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=30 * i)
    created = now - timedelta(days=5) + timedelta(milliseconds=20 * i)
    email = f"applicant{i:06d}@bench.example.org"
    uid = f"sY{i:06d}nC3XyZp2RvT9wLbN"[:22]
    booking.update(
        id=700_000 + i, uid=uid, icsUid=f"{uid}@Cal.com", start=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        end=(start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        createdAt=created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        updatedAt=(created + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        title=f"First-round interview between Dorothy Vaughan and Applicant {i:06d}",
        metadata={"application_id": public_id} if i % 2 else {},
    )
    booking["attendees"][0].update(name=f"Applicant {i:06d}", email=email, displayEmail=email)
    booking["bookingFieldsResponses"].update(name=f"Applicant {i:06d}", email=email, displayEmail=email)
    return booking


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results", action="store_true")
    common.add_database_argument(parser, "sync")
    args = parser.parse_args()
    global DB_NAME  # noqa: PLW0603 - the helpers above read it
    DB_NAME = args.database

    common.recreate_database(DB_NAME)
    common.setup_django(DB_NAME)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone as dj_timezone

    call_command("migrate", verbosity=0)
    try:
        lines = run(args, settings, connection, dj_timezone)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            common.drop_database(DB_NAME)
    text = "\n".join(lines)
    print(text)
    if not args.no_results:
        common.write_section("sync_calcom", f"""
## Cal.com API sync (issue 10): `bench/sync_calcom.py`

Run {common.now_utc()} on {common.machine_facts()}.

{text}
""")


def run(args, settings, connection, dj_timezone):
    from applications.models import Application, Cohort, Organization
    from bench.fake_calcom_api import serve_in_thread
    from bench.webhook_throughput import bodies_for, chain_for
    from scheduling import sync
    from scheduling.ingest import receive_calcom_delivery
    from scheduling.models import SyncRun
    from tests.calcom_api_fake import API_KEY, FakeCalcomApi

    n = args.bookings
    org = Organization.objects.create(name="Sync bench", slug="sync-bench")
    cohort = Cohort.objects.create(organization=org, name="Sync bench cohort")
    cohort.set_calcom_api_key(API_KEY)
    apps = Application.objects.bulk_create(
        [Application(cohort=cohort, public_id=f"app_s{i:08d}", applicant_name=f"Applicant {i:06d}",
                     contact_email=f"applicant{i:06d}@bench.example.org", status="waiting_first_round",
                     current_stage="first_round") for i in range(n + YARDSTICK)],
        batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    # The yardstick: webhook bodies for the extra applications, stored and applied in-process.
    per_webhook = []
    for j in range(YARDSTICK):
        i = n + j
        body = bodies_for(i, chain_for(i, apps[i].public_id))["created"]
        t = time.perf_counter()
        receive_calcom_delivery(cohort, body)
        per_webhook.append(time.perf_counter() - t)
    webhook_ms = statistics.median(per_webhook) * 1000

    now = dj_timezone.now()
    api = FakeCalcomApi([api_booking(i, apps[i].public_id, now) for i in range(n)])
    server, settings.CALCOM_API_URL = serve_in_thread(api)
    rows = []
    try:
        for label in ("sync #1: every booking missed", "sync #2: the same bookings, nothing changed"):
            run_ = sync.start_sync(cohort, trigger=SyncRun.Trigger.COMMAND)
            requests_before = len(api.requests)
            t = time.perf_counter()
            # A 30-day window both times (#2 would otherwise fetch only what changed since #1).
            run_ = sync.run_sync(run_.pk, since=now - timedelta(days=30))
            elapsed = time.perf_counter() - t
            assert run_.status == "succeeded", run_.error
            per = elapsed / max(run_.bookings_checked, 1) * 1000
            rows.append([label, f"{run_.bookings_checked:,}", f"{run_.changes_made:,}",
                         str(len(api.requests) - requests_before), f"{elapsed:.1f} s", f"{per:.2f} ms",
                         f"{per / webhook_ms:.2f}×"])
    finally:
        server.shutdown()
        server.server_close()
    scheduled = Application.objects.filter(cohort=cohort, status="first_round_scheduled").count()
    lines = [
        f"{n:,} accepted bookings served by a loopback fake of GET /v2/bookings (pages of 250, two sweeps: "
        f"created, updated); {n + YARDSTICK:,} applications in the cohort. One webhook apply "
        f"(`receive_calcom_delivery`, store + apply, in-process, median of {YARDSTICK}): "
        f"**{webhook_ms:.2f} ms**.",
        "",
        common.table(["run", "bookings checked", "changes made", "API requests", "time", "per booking",
                      "per booking ÷ one webhook apply"], rows),
        "",
        f"After the runs: {scheduled:,} applications scheduled (expected {n + YARDSTICK:,}).",
    ]
    return lines


if __name__ == "__main__":
    main()
