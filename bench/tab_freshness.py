"""Benchmark: how fresh the Applications tab stays, and what that costs (issue 12).

    .venv/bin/python bench/tab_freshness.py              # cohorts of 10,000 and 100,000 applications

On PostgreSQL, in the database bench/applications_tab.py builds (reused; created if
missing). In-process through Django's test client (the server's work: queries and
rendering, not the network). Prints, side by side per cohort size:

- the table fragment the tab polls, rendered in full vs answered 304 (If-None-Match
  holds the cohort's current change stamp), medians, queries and the ratio
  (target: a 304 costs at most a tenth of a full fragment at 100,000);
- the first page sorted "Needs action first" (the default, a CASE rank in SQL) vs
  "Last updated" (an index);
- how long a new booking takes to show on an open tab: a booking posted through the
  webhook at a random moment of the 5-second poll cycle, then the poll's conditional
  GET, timed (wait for the next poll + the measured response; target: within 5 s);
- Export CSV of the whole cohort: time, rows, and the peak Python memory while
  streaming it (tracemalloc), 10,000 vs 100,000 rows (target: constant memory).
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.applications_tab import DEFAULT_URL, build_cohort, setup_django  # noqa: E402

POLL_SECONDS = 5
HX = {"HTTP_HX_REQUEST": "true"}


def timed(client, url, expect, **headers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.get(url, secure=True, **headers)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        elapsed = (time.perf_counter() - started) * 1000
    assert expect is None or response.status_code == expect, (url, response.status_code)
    return elapsed, len(ctx), response, body


def median_of(client, url, expect, rounds, **headers):
    for _ in range(2):
        timed(client, url, expect, **headers)
    runs = [timed(client, url, expect, **headers) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), runs[0][1], runs[0][2]


def not_modified_ms(client, url, rounds):
    """Return (median ms, queries) of a conditional GET of `url` while nothing changes.

    The ETag also moves with the minute (labels like "Now" do): a round that crosses a
    minute is answered 200; it is re-read and that round taken again.
    """
    runs = []
    etag = timed(client, url, 200, **HX)[2]["ETag"]
    while len(runs) < rounds + 2:
        ms, queries, response, _ = timed(client, url, None, HTTP_IF_NONE_MATCH=etag, **HX)
        if response.status_code == 304:
            runs.append((ms, queries))
        else:
            etag = response["ETag"]
    runs = runs[2:]  # warm-up
    return statistics.median(ms for ms, _ in runs), runs[0][1]


def fragment_costs(client, cohort, rounds):
    from django.urls import reverse

    url = reverse("applications:list", args=[cohort.slug])
    full_ms, full_q, _ = median_of(client, url, 200, rounds, **HX)
    nm_ms, nm_q = not_modified_ms(client, url, rounds)
    badge = reverse("applications:orphan_badge", args=[cohort.slug])
    badge_ms, badge_q, _ = median_of(client, badge, 200, rounds, **HX)
    badge_nm, badge_nm_q = not_modified_ms(client, badge, rounds)
    action_ms, action_q, _ = median_of(client, url, 200, rounds)
    updated_ms, updated_q, _ = median_of(client, url + "?sort=updated", 200, rounds)
    return {
        "table fragment": (full_ms, full_q, nm_ms, nm_q),
        "orphan badge": (badge_ms, badge_q, badge_nm, badge_nm_q),
        "sort": (action_ms, action_q, updated_ms, updated_q),
    }


def booking_latency(client, cohort, trials, rng):
    """Post a booking at a random point of the poll cycle; return [seconds until the tab shows it]."""
    from django.urls import reverse

    from scheduling.providers import calcom

    template = json.loads((ROOT / "tests/fixtures/calcom/calcom_booking_created.json").read_text())
    url = reverse("applications:list", args=[cohort.slug]) + "?sort=updated"
    waiting = list(cohort.applications.filter(status="waiting_first_round").order_by("?")[:trials])
    latencies = []
    for n, application in enumerate(waiting):
        etag = timed(client, url, 200, **HX)[2]["ETag"]
        body = json.loads(json.dumps(template))
        payload = body["payload"]
        payload["uid"] = f"fresh{uuid.uuid4().hex[:16]}"  # new on every run (the cohorts are reused)
        payload["iCalUID"] = payload["uid"] + "@Cal.com"
        payload["metadata"] = {"application_id": application.public_id}
        raw = json.dumps(body).encode()
        posted = client.post(cohort.webhook_path(), data=raw, content_type="application/json", secure=True,
                             HTTP_X_CAL_SIGNATURE_256=calcom.sign(raw, cohort.webhook_secret))
        assert posted.json()["outcome"] == "applied", posted.json()
        # The page's next poll comes 0–5 s after the booking (uniform phase), then must show it.
        wait = rng.uniform(0, POLL_SECONDS)
        ms, _, polled, html = timed(client, url, 200, HTTP_IF_NONE_MATCH=etag, **HX)
        assert f'id="application-{application.pk}"' in html.decode(), "the booked row leads 'Last updated'"
        latencies.append(wait + ms / 1000)
    return latencies


def csv_cost(client, cohort):
    from django.urls import reverse

    url = reverse("applications:list", args=[cohort.slug]) + "?hide_declined=0&format=csv"

    def stream():
        rows = size = 0
        for chunk in client.get(url, secure=True).streaming_content:
            rows += chunk.count(b"\n")
            size += len(chunk)
        return rows, size

    started = time.perf_counter()
    rows, size = stream()
    elapsed = time.perf_counter() - started
    # Memory on a second pass: tracemalloc slows every allocation several times over.
    tracemalloc.start()
    stream()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, rows - 1, size, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--trials", type=int, default=20, help="bookings for the latency measurement")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    setup_django(args.database_url)

    from django.contrib.auth import get_user_model
    from django.test import Client

    users = get_user_model()
    user = users.objects.filter(username="bench").first() or users.objects.create_superuser(
        "bench", "bench@example.org", "bench-password"
    )
    cohorts = [build_cohort(slug, size, user) for slug, size in (("bench-10k", 10_000), ("bench-100k", 100_000))]
    client = Client()
    client.force_login(user)
    rng = random.Random(12)
    results = {}
    for cohort in cohorts:
        n = cohort.applications.count()
        results[n] = {
            **fragment_costs(client, cohort, args.rounds),
            "latency": booking_latency(client, cohort, args.trials, rng),
            "csv": csv_cost(client, cohort),
        }

    sizes = sorted(results)
    print(f"\nTab freshness, in-process, medians of {args.rounds} (ms; queries in brackets)")
    header = "".join(f"{f'{n:,} apps':>26}" for n in sizes)
    print(f"{'':<34}{header}")
    for key in ("table fragment", "orphan badge"):
        line_full = "".join(f"{results[n][key][0]:>20.1f} ({results[n][key][1]:>2})" for n in sizes)
        line_304 = "".join(f"{results[n][key][2]:>20.1f} ({results[n][key][3]:>2})" for n in sizes)
        ratio = "".join(f"{results[n][key][2] / results[n][key][0]:>26.3f}" for n in sizes)
        print(f"{key + ', full 200':<34}{line_full}")
        print(f"{key + ', 304 unchanged':<34}{line_304}")
        print(f"{'  ratio 304 / full (target ≤ 0.1)':<34}{ratio}")
    print(f"{'page, Needs action first':<34}" + "".join(f"{results[n]['sort'][0]:>20.1f} ({results[n]['sort'][1]:>2})" for n in sizes))
    print(f"{'page, Last updated':<34}" + "".join(f"{results[n]['sort'][2]:>20.1f} ({results[n]['sort'][3]:>2})" for n in sizes))
    print("\nA new booking on an open tab (5 s polls, random phase; s)")
    for n in sizes:
        lat = sorted(results[n]["latency"])
        print(f"  {n:>7,} apps: median {statistics.median(lat):.2f}, max {lat[-1]:.2f} over {len(lat)} bookings"
              f" (was 43 s with the 60 s full refresh)")
    print("\nExport CSV of the whole cohort (streamed)")
    for n in sizes:
        elapsed, rows, size, peak = results[n]["csv"]
        print(f"  {n:>7,} apps: {rows:,} rows, {size / 1e6:.1f} MB in {elapsed:.1f} s; "
              f"peak Python memory {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
