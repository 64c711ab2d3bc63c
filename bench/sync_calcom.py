"""Sync 10,000 bookings from a loopback fake of Cal.com API v2, against one webhook apply.

    .venv/bin/python bench/sync_calcom.py                    # 10,000 bookings
    .venv/bin/python bench/sync_calcom.py --bookings 2000 --no-results   # a quick look

In its own database `cohortos_bench_sync` (dropped afterwards), on loopback only:
1. a cohort with one application per booking (plus 500 for the webhook yardstick);
2. the yardstick: 500 BOOKING_CREATED webhook bodies applied in-process through
   `receive_calcom_delivery` (store + apply), 20 untimed, then half before the syncs and half
   after them (a drifting machine weighs on both sides), mean and median per delivery;
3. a fake API (bench/fake_calcom_api.py, in its own process) serving 10,000 accepted bookings in
   API v2's shape (half matched by metadata.application_id, half by email) on a loopback port;
4. sync #1: every booking was missed by the webhooks (10,000 changes); sync #2: the same
   bookings again over the same 30-day window, nothing changed (what `sync_calcom --days 30`
   costs when the webhooks missed nothing; the hourly sync fetches only what changed). Each is timed
   end to end (HTTP paging included); its CPU per booking (this process and its PostgreSQL
   backend) is compared with one webhook apply's. Target (issue 15): no more than one apply.
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
WARM = 20  # of the yardstick's applications, applied untimed first


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
        lines, met = run(args, settings, connection, dj_timezone)
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
    return 0 if met else 1


def backend_pid(connection):
    """Return the pid of this process's PostgreSQL backend."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def cpu_now(backend):
    """Return (this process's CPU seconds, its PostgreSQL backend's CPU seconds, wall seconds)."""
    from bench.webhook_throughput import cpu_seconds

    return time.process_time(), cpu_seconds([backend]), time.perf_counter()


def start_fake(bookings, workdir):
    """Serve `bookings` from bench/fake_calcom_api.py in its own process; return (process, base URL).

    Its own process, so the fake's JSON encoding neither counts as the sync's CPU nor
    competes with it for this process's GIL.
    """
    import json
    import socket
    import subprocess

    from bench.webhook_throughput import free_port

    path = Path(workdir) / "bookings.json"
    path.write_text(json.dumps(bookings))
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fake_calcom_api.py"), "--port",
                                str(port), "--bookings", str(path), "--keep-dates"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}/v2"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the fake Cal.com API did not start within 30 s")


def run(args, settings, connection, dj_timezone):
    import tempfile

    from applications.models import Application, Cohort, Organization
    from bench.webhook_throughput import bodies_for, chain_for
    from scheduling import sync
    from scheduling.ingest import receive_calcom_delivery
    from scheduling.models import SyncRun
    from tests.calcom_api_fake import API_KEY

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
    backend = backend_pid(connection)

    # The yardstick: webhook bodies for the extra applications, stored and applied in-process.
    bodies = [bodies_for(n + j, chain_for(n + j, apps[n + j].public_id))["created"] for j in range(YARDSTICK)]
    for body in bodies[:WARM]:  # first calls (imports, caches, plans) would flatter the sync's ratio
        receive_calcom_delivery(cohort, body)
    bodies = bodies[WARM:]
    # Half the yardstick before the syncs, half after: a machine whose speed drifts during the
    # minutes of a sync (a shared VM's neighbours) then weighs on both sides of the ratio alike.
    halves = (bodies[:len(bodies) // 2], bodies[len(bodies) // 2:])
    per_webhook, yardstick = [], []

    def measure_webhooks(part):
        cpu0, pg0, wall0 = cpu_now(backend)
        for body in part:
            t = time.perf_counter()
            receive_calcom_delivery(cohort, body)
            per_webhook.append(time.perf_counter() - t)
        cpu1, pg1, wall1 = cpu_now(backend)
        yardstick.append((cpu1 - cpu0 + pg1 - pg0, wall1 - wall0, len(part)))

    measure_webhooks(halves[0])
    now = dj_timezone.now()
    rows, cpus = [], []
    with tempfile.TemporaryDirectory() as workdir:
        fake, settings.CALCOM_API_URL = start_fake([api_booking(i, apps[i].public_id, now) for i in range(n)],
                                                   workdir)
        try:
            for label in ("sync #1: every booking missed", "sync #2: the same bookings, nothing changed"):
                run_ = sync.start_sync(cohort, trigger=SyncRun.Trigger.COMMAND)
                cpu0, pg0, wall0 = cpu_now(backend)
                # A 30-day window both times (#2 would otherwise fetch only what changed since #1).
                run_ = sync.run_sync(run_.pk, since=now - timedelta(days=30))
                cpu1, pg1, wall1 = cpu_now(backend)
                assert run_.status == "succeeded", run_.error
                # Both runs must have listed every booking, and the first changed each, the second none:
                # a run that fetched nothing would look cheap.
                assert run_.bookings_checked == n, (label, run_.bookings_checked)
                assert run_.changes_made == (n if label.startswith("sync #1") else 0), (label, run_.changes_made)
                checked = run_.bookings_checked
                cpu = (cpu1 - cpu0 + pg1 - pg0) / checked * 1000
                cpus.append(cpu)
                rows.append([label, f"{run_.bookings_checked:,}", f"{run_.changes_made:,}", str(run_.pages_fetched),
                             f"{wall1 - wall0:.1f} s", f"{(wall1 - wall0) / checked * 1000:.2f} ms", f"{cpu:.2f} ms"])
        finally:
            fake.terminate()
            fake.wait(10)
    measure_webhooks(halves[1])
    webhook = {"cpu": sum(y[0] for y in yardstick) / len(bodies) * 1000,
               "wall": sum(y[1] for y in yardstick) / len(bodies) * 1000,
               "median": statistics.median(per_webhook) * 1000,
               "halves": [y[0] / y[2] * 1000 for y in yardstick]}
    ratios = [cpu / webhook["cpu"] for cpu in cpus]
    for row, ratio in zip(rows, ratios):
        row.append(f"{ratio:.2f}×")
    scheduled = Application.objects.filter(cohort=cohort, status="first_round_scheduled").count()
    lines = [
        f"{n:,} accepted bookings served by a loopback fake of GET /v2/bookings in its own process (pages of "
        f"250, two sweeps: created, updated); {n + YARDSTICK:,} applications in the cohort. CPU is this "
        f"process's plus its PostgreSQL backend's. One webhook apply (`receive_calcom_delivery`, store + "
        f"apply, in-process, {len(bodies)} of them after {WARM} untimed, half before the syncs and half after): "
        f"**{webhook['cpu']:.2f} ms CPU** ({webhook['halves'][0]:.2f} ms before, {webhook['halves'][1]:.2f} ms after), "
        f"{webhook['wall']:.2f} ms wall on average (median {webhook['median']:.2f} ms).",
        "",
        common.table(["run", "bookings checked", "changes made", "API pages", "time", "wall per booking",
                      "CPU per booking", "CPU per booking ÷ one webhook apply's"], rows),
        "",
        common.table(["check", "result", "target", "verdict"], [
            [f"CPU per booking of a sync of {n:,}, the costlier run ÷ one webhook apply's",
             f"{max(ratios):.2f}×", "≤ 1×", common.verdict(max(ratios) <= 1.0)]]),
        "",
        f"After the runs: {scheduled:,} applications scheduled (expected {n + YARDSTICK:,}).",
    ]
    return lines, max(ratios) <= 1.0 and scheduled == n + YARDSTICK


if __name__ == "__main__":
    sys.exit(main())
