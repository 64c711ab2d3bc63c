"""Where a webhook's CPU goes: the floor, verify + store, the whole apply, a redelivery; then statement by statement.

    .venv/bin/python bench/apply_breakdown.py            # about a minute
    .venv/bin/python bench/apply_breakdown.py --requests 300 --no-results

Why it exists: issue 15 asks for store + apply at 0.25 of the one-INSERT floor's rate,
and the rate follows CPU per request (bench/webhook_throughput.py: both are CPU-bound
on the two cores). This measures that CPU without HTTP or gunicorn, in one process, in
its own database (`cohortos_bench_breakdown` unless `--database` says otherwise):

1. Through Django's WSGI handler (every middleware, as gunicorn calls it), alternating
   in rounds: the floor view (one INSERT), the verify + store yardstick (what the view
   costs if it applied nothing), a BOOKING_CREATED matched by email or by the link (the
   real webhook URL: store + apply) and its byte-identical redelivery. CPU per request is
   this process's (`time.process_time`) plus its PostgreSQL backend's (/proc).
2. Statement by statement, in one more pass of applies after the timed rounds (so the
   clock's own cost is not in the table above): an execute wrapper reads this process's CPU
   clock around every statement, so the Python spent *before* a statement (building
   it, and the logic since the previous one) and *inside* it (psycopg) are told apart
   from PostgreSQL's own time. Means per request, in the order the statements run.
3. A byte-identical redelivery step by step (`redelivery_steps`): the whole request, the
   floor's, and each piece of the view (cohort cache, signature, parse, sha256, the row's
   values, the one statement, the response) timed apart: where its gap to the floor goes.
"""

import argparse
import io
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROUNDS = 4


def wsgi_post(handler, path, body, headers=None):
    """POST `body` to `path` through `handler` (a WSGIHandler); return the status line."""
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
               "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/json", **(headers or {})}
    status = []
    b"".join(handler(environ, lambda line, _headers: status.append(line)))
    return status[0]


def label_of(sql):
    """A statement's kind: its verb and first table ("SELECT scheduling_booking")."""
    words = sql.replace('"', "").split()
    verb = words[0].upper() if words else "?"
    table = next((w for i, w in enumerate(words) if i and words[i - 1].upper() in ("FROM", "INTO", "UPDATE")), "")
    return f"{verb} {table}".strip()


class StatementClock:
    """An execute wrapper: per statement, the CPU of this process before it and inside it."""

    def __init__(self):
        self.rows = []  # per request: [(label, python_before_s, inside_s)]
        self.last = None

    def start_request(self):
        self.rows.append([])
        self.last = time.process_time()

    def __call__(self, execute, sql, params, many, context):
        start = time.process_time()
        try:
            return execute(sql, params, many, context)
        finally:
            end = time.process_time()
            self.rows[-1].append((label_of(sql), start - self.last, end - start))
            self.last = end


def redelivery_steps(handler, path, cohort, body, headers, n=1000):
    """Time apart the steps of a byte-identical redelivery of `body` (already stored): [(step, µs)].

    Mean CPU of this process per call, over `n` calls of each step (PostgreSQL's own time is in
    the request table above): what a redelivery pays beyond the floor, piece by piece.
    """
    import hashlib

    from django.db import connection
    from django.http import JsonResponse

    from scheduling import views
    from scheduling.ingest import receive_delivery
    from scheduling.models import WebhookDelivery
    from scheduling.providers import calcom
    from scheduling.rows import _insert_statement

    event = calcom.parse(body)

    def row_values():
        return _insert_statement(WebhookDelivery(
            cohort=cohort, provider="calcom", body=body, sha256=hashlib.sha256(body).hexdigest(),
            trigger_event=event.trigger, booking_uid=event.uid, event_created_at=event.created_at,
            logical_key=event.logical_key))

    def round_trip():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    signature = headers["HTTP_X_CAL_SIGNATURE_256"]
    steps = [
        ("the whole request, through the WSGI handler", lambda: wsgi_post(handler, path, body, headers)),
        ("the floor's whole request, for comparison", lambda: wsgi_post(handler, "/bench/floor/", body)),
        ("cohort by webhook key (the per-process cache)", lambda: views.cohort_for_key(cohort.webhook_key)),
        ("verify the signature (HMAC-SHA256)", lambda: calcom.verify(body, signature, cohort.webhook_secret)),
        ("parse the body into a BookingEvent (provider parse)", lambda: calcom.parse(body)),
        ("sha256 of the body", lambda: hashlib.sha256(body).hexdigest()),
        ("build the row and its INSERT's values", row_values),
        ("receive_delivery: parse + the one statement (CTE)",
         lambda: receive_delivery(cohort, body, provider="calcom")),
        ("one round trip to PostgreSQL (SELECT 1), for scale", round_trip),
        ("the JSON response", lambda: JsonResponse({"outcome": "duplicate", "delivery": 1,
                                                    "detail": "Already received as delivery #1."})),
    ]
    rows = []
    for label, step in steps:
        step()
        start = time.process_time()
        for _ in range(n):
            step()
        rows.append((label, (time.process_time() - start) / n * 1e6))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind per round")
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-results", action="store_true")
    common.add_database_argument(parser, "breakdown")
    args = parser.parse_args()
    per_round = args.requests
    ours_count = per_round * (ROUNDS + 1) + 50  # the timed applies, the clocked pass, the warm-up
    needed = ours_count + per_round * ROUNDS  # and bodies of their own for the floor and the yardstick

    common.recreate_database(args.database)
    common.setup_django(args.database)
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection, connections
    from django.urls import reverse

    from applications.models import Application, Cohort
    from bench.webhook_throughput import bodies_for, chain_for, cpu_seconds, seed
    from scheduling.providers import calcom

    call_command("migrate", verbosity=0)
    cohort = seed(max(args.apps, needed))
    store_cohort = Cohort.objects.get(name="Store-only cohort")
    apps = list(Application.objects.filter(cohort=cohort).order_by("pk").values_list("public_id", flat=True))
    bodies = [bodies_for(i, chain_for(i, apps[i]))["created"] for i in range(needed)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    handler = WSGIHandler()
    ours = reverse("scheduling:calcom_webhook", args=[cohort.webhook_key])
    store = f"/bench/store-only/{store_cohort.webhook_key}/"

    def signed(secret, body):
        return {"HTTP_X_CAL_SIGNATURE_256": calcom.sign(body, secret)}

    for body in bodies[:50]:  # warm-up: imports, caches, the planner's statistics
        wsgi_post(handler, ours, body, signed(cohort.webhook_secret, body))
    clock = StatementClock()
    cpu = defaultdict(lambda: [0.0, 0.0, 0])  # kind -> [process s, backend s, requests]
    next_body, applied, spare = 50, list(range(50)), ours_count
    for _round in range(ROUNDS):
        kinds = [
            ("floor: one INSERT", lambda i: wsgi_post(handler, "/bench/floor/", bodies[i])),
            ("verify + store only (yardstick)",
             lambda i: wsgi_post(handler, store, bodies[i], signed(store_cohort.webhook_secret, bodies[i]))),
            ("webhook: store + apply (created)", None),
            ("webhook: byte-identical redelivery",
             lambda i: wsgi_post(handler, ours, bodies[i], signed(cohort.webhook_secret, bodies[i]))),
        ]
        for kind, call in kinds:
            if call is None:
                picks = list(range(next_body, next_body + per_round))
                next_body += per_round
            elif kind.startswith("webhook: byte"):
                picks = applied[-per_round:]
            else:  # bodies of their own (the yardstick's cohort takes each body once)
                picks = list(range(spare, spare + per_round))
                if kind.startswith("verify"):
                    spare += per_round
            p0, b0 = time.process_time(), cpu_seconds([backend])
            for i in picks:
                if call is None:
                    status = wsgi_post(handler, ours, bodies[i], signed(cohort.webhook_secret, bodies[i]))
                    applied.append(i)
                else:
                    status = call(i)
                assert status.startswith("200"), (kind, status)
            totals = cpu[kind]
            totals[0] += time.process_time() - p0
            totals[1] += cpu_seconds([backend]) - b0
            totals[2] += len(picks)

    # Statement by statement, in a pass of its own: the clock's own cost stays out of the table above.
    for i in range(next_body, next_body + per_round):
        clock.start_request()
        with connection.execute_wrapper(clock):
            status = wsgi_post(handler, ours, bodies[i], signed(cohort.webhook_secret, bodies[i]))
        assert status.startswith("200"), status

    last = applied[-1]
    steps = redelivery_steps(handler, ours, cohort, bodies[last], signed(cohort.webhook_secret, bodies[last]),
                             n=max(per_round, 100))

    floor = sum(cpu["floor: one INSERT"][:2]) / cpu["floor: one INSERT"][2]
    request_rows = []
    for kind, (process, pg, n) in cpu.items():
        total = (process + pg) / n
        request_rows.append([kind, f"{process / n * 1000:.2f}", f"{pg / n * 1000:.2f}", f"{total * 1000:.2f}",
                             f"{floor / total:.2f}"])

    # Statement by statement (the applies' first shape: every request of the sample has the same
    # statements in the same order when matched the same way; keep the commonest sequence).
    shapes = defaultdict(list)
    for row in clock.rows:
        shapes[tuple(label for label, *_ in row)].append(row)
    shape, rows = max(shapes.items(), key=lambda item: len(item[1]))
    statement_rows = []
    for position, label in enumerate(shape):
        before = sum(r[position][1] for r in rows) / len(rows) * 1000
        inside = sum(r[position][2] for r in rows) / len(rows) * 1000
        statement_rows.append([str(position + 1), label, f"{before:.3f}", f"{inside:.3f}"])
    python_in_statements = sum(float(r[2]) + float(r[3]) for r in statement_rows)
    total_apply = cpu["webhook: store + apply (created)"][0] / cpu["webhook: store + apply (created)"][2] * 1000

    requests_table = common.table(
        ["request (in-process, WSGI handler)", "Python CPU ms", "PostgreSQL CPU ms", "total CPU ms",
         "floor ÷ this (the rate ratio if CPU-bound)"], request_rows)
    statements_table = common.table(
        ["#", "statement", "Python CPU ms before it (building it, logic since the last)",
         "Python CPU ms inside it (psycopg)"], statement_rows)
    text = f"""{requests_table}

The apply's statements, in the clocked pass ({len(rows)} of {len(clock.rows)} applies had this sequence;
the others were matched another way): {python_in_statements:.2f} ms of this process's CPU up to the last
statement, against {total_apply:.2f} ms per unclocked request in all (the rest: the response, the
middleware after the view, and the clock's own cost).

{statements_table}

A byte-identical redelivery, step by step (this process's CPU, µs per call, each step timed apart
{max(per_round, 100)} times on a body already stored):

{common.table(["step", "Python CPU µs"], [[label, f"{us:.0f}"] for label, us in steps])}"""
    print(text)
    if not args.no_results:
        common.write_section("apply_breakdown", f"""
## Where a webhook's CPU goes (`bench/apply_breakdown.py`)

Run {common.now_utc()} on {common.machine_facts()}.
{ROUNDS} alternating rounds of {per_round} requests of each kind through Django's WSGI handler
(all middleware, no HTTP), {max(args.apps, needed):,} applications; CPU of this process and its
PostgreSQL backend per request.

{text}
""")
    connections.close_all()
    if not args.keep:
        common.drop_database(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
