"""The orphan modal's search, the tab's change check and the CSV export at 10,000 and 100,000 applications.

    .venv/bin/python bench/orphan_search.py            # about 2 minutes
    .venv/bin/python bench/orphan_search.py --sizes 10000 --no-results

In-process through Django's test client (the server's work: queries and rendering, no
network), on PostgreSQL in a fresh database, `cohortos_bench_orphans` unless `--database` says otherwise: a cohort grown
to each size (varied names and emails, mixed statuses), one orphaned interview, and
an org admin. Times, round by round and alternating, the htmx requests the modal's
debounced search box sends (`orphans:candidates` with `?q=`: a surname, an email
fragment, a miss, and the empty query, the suggestions), the Applications tab's own
table fragment (`applications:list` with HX-Request) and its change check (the same
request with the fragment's ETag in If-None-Match: a 304). At the largest size it
streams the CSV export (`?format=csv`) in a separate process and reads that
process's peak memory (VmHWM).

Targets (issue 15): each orphan request at most the tab fragment's median at
100,000; the 304 at most a tenth of the fragment and constant as the cohort grows
(at most 1.5× its median at the smallest size, allowing for noise); the CSV export
streamed with a peak RSS under 150 MB.
"""

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROUNDS = 25
CHECK_SHARE = 0.10  # a 304 costs at most this share of a full fragment
CHECK_GROWTH = 1.5  # … and at most this much more at the largest size than at the smallest
CSV_RSS_MB = 150
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


class StaleETag(Exception):
    """A change check answered in full because the minute in its ETag had passed; .etag is the new one."""

    def __init__(self, etag):
        super().__init__(etag)
        self.etag = etag


def timed(client, url, status=200, **headers):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        response = client.get(url, HTTP_HX_REQUEST="true", **headers)
        elapsed = time.perf_counter() - start
    if status == 304 and response.status_code == 200:
        raise StaleETag(response["ETag"])
    assert response.status_code == status, (url, response.status_code)
    return elapsed, len(queries.captured_queries), response.get("ETag")


# Run in a child process (its own peak memory): log in, stream the export, print JSON.
# Peak RSS is VmHWM from /proc/self/status: getrusage's ru_maxrss would carry over this
# (large) parent's RSS at fork across exec and report it as the child's.
CSV_CHILD = """
import json, sys, django
def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
client = Client(SERVER_NAME="127.0.0.1")
client.force_login(get_user_model().objects.get(username="bench-admin"))
before = peak_kb()
response = client.get(sys.argv[1])
lines = size = 0
for piece in response.streaming_content:
    size += len(piece)
    lines += piece.count(b"\\n")
print(json.dumps({"streaming": response.streaming, "lines": lines, "bytes": size, "status": response.status_code,
                  "rss_before_kb": before, "rss_peak_kb": peak_kb()}))
"""


def csv_export(db_name, url):
    """Stream `url` (the CSV export) in a child process; return its JSON report (peak RSS in KiB)."""
    out = subprocess.run([sys.executable, "-c", CSV_CHILD, url], env=common.django_env(db_name),
                         capture_output=True, text=True, timeout=900, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description="The orphan modal's search at scale.")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds per request and size")
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

    tab = reverse("applications:list", args=[cohort.slug])
    rows, medians, have = [], {}, 0
    for size in sizes:
        print(f"… growing the cohort to {size:,} applications (load average {common.load_average()})", flush=True)
        grow(cohort, have, size)
        have = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        # The 304 sends the ETag of the fragment fetched just before it (the stamp includes the
        # viewer's day, so a stale one would get a 200).
        etag = {"value": client.get(tab, HTTP_HX_REQUEST="true")["ETag"]}
        requests = [("tab: table fragment", tab, 200, lambda: {}),
                    ("tab: change check (304)", tab, 304, lambda: {"HTTP_IF_NONE_MATCH": etag["value"]})]
        requests += [(f"orphan: {label}", f"{base}?q={q}" if q else base, 200, lambda: {}) for label, q in QUERIES]
        samples = {label: [] for label, *_ in requests}
        for round_number in range(3 + args.rounds):  # 3 warm-ups; alternating, so load hits every request alike
            for label, url, status, headers in requests:
                try:
                    sample = timed(client, url, status, **headers())
                except StaleETag as stale:
                    # The ETag carries the viewer's minute: one taken just before a minute turned
                    # is rightly answered in full. Take the new one and time the check again.
                    etag["value"] = stale.etag
                    sample = timed(client, url, status, **headers())
                if label == "tab: table fragment":
                    etag["value"] = sample[2]
                if round_number >= 3:
                    samples[label].append(sample)
        for label, *_ in requests:
            ms = [s * 1000 for s, *_ in samples[label]]
            medians[size, label] = common.percentile(ms, 50)
            rows.append([f"{size:,}", label, f"{medians[size, label]:.1f}", f"{common.percentile(ms, 95):.1f}",
                         samples[label][0][1]])
        print(common.table(["applications", "request", "median ms", "p95 ms", "queries"], rows[-len(requests):]),
              flush=True)

    big, small = sizes[-1], sizes[0]
    fragment = medians[big, "tab: table fragment"]
    slowest_label = max((label for (size, label) in medians if size == big and label.startswith("orphan")),
                        key=lambda label: medians[big, label])
    slowest = medians[big, slowest_label]
    check_big, check_small = medians[big, "tab: change check (304)"], medians[small, "tab: change check (304)"]
    print(f"… streaming the CSV export of {big:,} applications in a child process", flush=True)
    # hide_declined=0: every application of the cohort, not the tab's default view (declined hidden).
    export = csv_export(args.database, f"{tab}?format=csv&hide_declined=0")
    peak_mb = export["rss_peak_kb"] / 1024
    ok = {
        "orphans": slowest <= fragment,
        "check share": check_big <= CHECK_SHARE * fragment,
        "check flat": check_big <= CHECK_GROWTH * check_small,
        "csv": (export["streaming"] and export["status"] == 200 and peak_mb < CSV_RSS_MB
                and export["lines"] == big + 1),  # a header line and one line per application
    }
    runs = common.table(["applications", "request", "median ms", "p95 ms", "queries"], rows)
    checks = common.table(["check", "result", "target", "verdict"], [
        [f"slowest orphan request at {big:,} ({slowest_label}) vs the tab's table fragment",
         f"{slowest:.1f} vs {fragment:.1f} ms", "≤ the fragment", common.verdict(ok["orphans"])],
        [f"the tab's 304 / its full fragment at {big:,}", f"{check_big:.1f} / {fragment:.1f} ms = "
         f"{check_big / fragment:.3f}", f"≤ {CHECK_SHARE}", common.verdict(ok["check share"])],
        [f"the tab's 304 at {big:,} / at {small:,}", f"{check_big:.2f} / {check_small:.2f} ms = "
         f"{check_big / check_small:.2f}×", f"≤ {CHECK_GROWTH}× (constant, within noise)",
         common.verdict(ok["check flat"])],
        [f"CSV export of {big:,} applications: streamed, peak RSS of the serving process",
         f"{'streamed' if export['streaming'] else 'NOT streamed'}, {export['lines']:,} lines (a header and "
         f"{big:,} applications expected), "
         f"{export['bytes'] / 1e6:.1f} MB sent; peak {peak_mb:.0f} MB (after start-up {export['rss_before_kb'] / 1024:.0f} MB)",
         f"streamed, < {CSV_RSS_MB} MB", common.verdict(ok["csv"])],
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
## The orphan modal's search, the tab's change check, the CSV export (`bench/orphan_search.py`)

Run {common.now_utc()} on {common.machine_facts(pg_version)}.
In-process (Django test client, DEBUG off) with `HX-Request`: `orphans:candidates?q=…` as the modal's search
box sends it, the tab's table fragment and its 304; {args.rounds} alternating rounds after 3 warm-ups each; one
orphan, an org admin, mixed statuses. The CSV export streamed in a child process (its peak RSS).

{runs}

{checks}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(args.database)
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
