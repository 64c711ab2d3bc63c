"""Deliveries in bursts, twice, out of order, malformed, or while a service is down.

Real services: the PostgreSQL-only tests are marked `postgres`; the Redis-down tests start
their own throwaway redis-server (never the shared one).
"""

import hashlib
import itertools
import json
import re
import socket
import time

import psycopg
import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from applications.models import Application, StatusChange
from orphans.models import OrphanedInterview
from scheduling.providers import calcom
from scheduling import services as scheduling_services
from scheduling import spool
from scheduling.models import Booking, WebhookDelivery

from .calcom_helpers import encode, post, post_together, sample, with_email
from .factories import ApplicationFactory, CohortFactory
from .redis_helpers import throwaway_broker  # noqa: F401 (a fixture)

OLD_UID, NEW_UID, LAST_UID = "k7Qm3XyZp2RvT9wLbN4sHd", "Pw8tLc5HnJ2vQe6RkMz3Ya", "Rz5nWq8TbK3mXe7YvL2pCd"
ICAL = "k7Qm3XyZp2RvT9wLbN4sHd@Cal.com"

# Everything about an application that deliveries decide.
STATE_FIELDS = (
    "status", "current_stage", "interview_start", "interview_end", "interview_meeting_url",
    "interview_booking_uid", "interview_time_zone", "interview_event_type", "interview_ended_at",
    "pending_booking_uid", "pending_start", "pending_end", "reschedule_requested", "reschedule_reason",
)


def state_of(application):
    return Application.objects.filter(pk=application.pk).values(*STATE_FIELDS).get()


# --- duplicate storm ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_fifty_times_at_once_has_exactly_one_effect(cohort, ada):
    body = encode(sample("booking_created"))
    responses = post_together([body] * 50, cohort)

    assert all(r is not None for r in responses), "a thread did not answer"
    assert sorted({r.status_code for r in responses}) == [200]
    outcomes = [r.json()["outcome"] for r in responses]
    assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == 49
    delivery = WebhookDelivery.objects.get()
    assert delivery.redeliveries == 49 and delivery.outcome == "applied" and delivery.attempts == 1
    assert Booking.objects.count() == 1
    assert StatusChange.objects.filter(application=ada).count() == 1
    ada.refresh_from_db()
    assert ada.status == "first_round_scheduled" and ada.interview_booking_uid == OLD_UID


# --- any order -----------------------------------------------------------------------------


def booking_chain():
    """Return the signed-sample bodies of one chain: create, reschedule, reschedule again, cancel."""
    second = sample("booking_rescheduled", uid=LAST_UID, rescheduleUid=NEW_UID, iCalSequence=2,
                    bookingId=9911, rescheduleId=9910, createdAt="2026-06-08T10:00:00.000Z",
                    startTime="2026-06-12T16:00:00Z", endTime="2026-06-12T16:30:00Z",
                    rescheduleStartTime="2026-06-11T15:00:00Z", rescheduleEndTime="2026-06-11T15:30:00Z")
    return {
        "create": encode(sample("booking_created")),
        "reschedule": encode(sample("booking_rescheduled")),
        "reschedule again": encode(second),
        "cancel": encode(sample("booking_cancelled", uid=LAST_UID, iCalSequence=3)),
    }


def final_state(client, order, bodies):
    """Deliver `bodies` in `order` to a fresh cohort's waiting applicant; return its state."""
    cohort = CohortFactory()
    application = ApplicationFactory(cohort=cohort, contact_email="ada.lovelace@example.org",
                                     public_id=f"app_7f3c2a91-{cohort.pk}", status="waiting_first_round")
    for name in order:
        response = post(client, cohort, bodies[name])
        assert response.status_code == 200, (name, response.content)
    return state_of(application)


FULL_CHAIN = ("create", "reschedule", "reschedule again", "cancel")
NO_CANCEL = ("create", "reschedule", "reschedule again")


def test_the_chain_in_order_ends_unscheduled_or_on_the_last_time(client, db):
    bodies = booking_chain()
    cancelled = final_state(client, FULL_CHAIN, bodies)
    assert cancelled["status"] == "waiting_first_round"
    assert cancelled["interview_booking_uid"] == "" and cancelled["interview_start"] is None
    moved = final_state(client, NO_CANCEL, bodies)
    assert moved["status"] == "first_round_scheduled"
    assert moved["interview_booking_uid"] == LAST_UID
    assert moved["interview_start"].isoformat() == "2026-06-12T16:00:00+00:00"


@pytest.mark.parametrize("order", [
    *itertools.permutations(FULL_CHAIN), *itertools.permutations(NO_CANCEL),
], ids=lambda order: " > ".join(order))
def test_a_booking_chain_in_any_order_ends_as_in_order(client, db, order):
    bodies = booking_chain()
    in_order = final_state(client, tuple(n for n in FULL_CHAIN if n in order), bodies)
    assert final_state(client, order, bodies) == in_order


# --- fuzz: signed bodies of every odd shape ------------------------------------------------

PAYLOAD_KEYS = sorted(set(sample("booking_created")["payload"]) | set(sample("booking_cancelled")["payload"])
                      | {"rescheduleUid", "requestReschedule", "bookingUid", "fromReschedule"})
TRIGGERS = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_REQUESTED", "BOOKING_CANCELLED",
            "BOOKING_REJECTED", "MEETING_ENDED", "MEETING_STARTED", "PING", "RECORDING_READY"]
BAD_DATES = [
    "2026-13-45T25:61:00Z", "0000-00-00T00:00:00Z", "2026-06-09", "2026-06-09T14:00:00",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "+275760-09-13T00:00:00Z",
    "2026-06-09T14:00:00.123456789Z", "2026-06-09T14:00:00Z\u0000", "2026-06-09 14:00", "", " ",
    "1e10", "NaN", "2026-06-09T14:00:00+25:00", "2026-W24-2T14:00Z", "\U0001f600",
]
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=20),  # surrogates and controls too
    st.sampled_from(["\u0000", "\u202e\u0644\u0627", "A\u0301\u0301\u0301", "\ufeff", "\U0010ffff",
                     "ada.lovelace@example.org", "ADA.LOVELACE@EXAMPLE.ORG ", "a@b", "@", "app_7f3c2a91",
                     "<script>alert(1)</script>", "'; DROP TABLE scheduling_booking; --", "%s%s%(x)s"]),
    st.sampled_from(BAD_DATES),
)
numbers = st.one_of(st.integers(), st.integers(min_value=-2**80, max_value=2**80),
                    st.floats(allow_nan=False, allow_infinity=False))
leaves = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(PAYLOAD_KEYS), st.text(max_size=10)), children, max_size=5),
    max_leaves=25,
)
dates = st.one_of(st.sampled_from(BAD_DATES), st.datetimes().map(lambda d: d.isoformat()),
                  st.datetimes().map(lambda d: d.isoformat() + "Z"), numbers, st.none())


@st.composite
def random_envelopes(draw):
    """An envelope whose payload has Cal.com's keys with values of any type."""
    payload = draw(st.dictionaries(st.sampled_from(PAYLOAD_KEYS), json_values, max_size=12))
    for key in ("startTime", "endTime"):
        if draw(st.booleans()):
            payload[key] = draw(dates)
    envelope = {"triggerEvent": draw(st.one_of(st.sampled_from(TRIGGERS), json_values)),
                "createdAt": draw(dates), "payload": payload}
    for key in draw(st.sets(st.sampled_from(list(envelope)))):
        del envelope[key]
    return envelope


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


@st.composite
def mutated_samples(draw):
    """A real Cal.com sample with a few of its values replaced, deleted, or made huge."""
    data = sample(draw(st.sampled_from(["booking_created", "booking_rescheduled", "booking_cancelled",
                                        "booking_requested", "booking_rejected", "meeting_ended", "ping"])))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        *parent_path, key = draw(st.sampled_from(paths))
        parent = data
        for step in parent_path:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "date", "delete", "huge"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif action == "huge":
            # Up to 1.1 MB of UTF-8 each: over the 1 MiB limit, a body is refused with 413 unread.
            unit = draw(st.sampled_from(["x", "é", "\U0001f600", "ada.lovelace@example.org "]))
            parent[key] = unit * (draw(st.sampled_from([5_000, 300_000, 1_100_000])) // len(unit.encode()))
        elif action == "date":
            parent[key] = draw(dates)
        else:
            parent[key] = draw(json_values)
    return data


@st.composite
def samples_with_odd_text(draw):
    """A valid sample whose string values (names, titles, uids, zones…) carry odd unicode."""
    data = sample(draw(st.sampled_from(["booking_created", "booking_rescheduled", "booking_cancelled",
                                        "booking_requested", "meeting_ended"])))
    strings = [p for p in _paths(data) if p and isinstance(_get(data, p), str)]
    for path in draw(st.lists(st.sampled_from(strings), min_size=1, max_size=4, unique=True)):
        *parent_path, key = path
        original = _get(data, path)
        odd = draw(st.text(st.characters(exclude_categories=()), min_size=1, max_size=8))
        _get(data, parent_path)[key] = draw(st.sampled_from([odd, original + odd, odd + original]))
    return data


def _get(data, path):
    for step in path:
        data = data[step]
    return data


def _serialise(data, ascii_only):
    text = json.dumps(data, ensure_ascii=ascii_only, separators=(",", ":"))
    # Lone surrogates cannot be UTF-8: sent as such they make a body that is not UTF-8 at all.
    return text.encode("utf-8", errors="surrogatepass")


bodies = st.one_of(
    st.builds(_serialise, samples_with_odd_text(), st.booleans()),
    st.builds(_serialise, mutated_samples(), st.booleans()),
    st.builds(_serialise, random_envelopes(), st.booleans()),
    st.builds(_serialise, json_values, st.booleans()),
    st.binary(max_size=300),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"triggerEvent":"BOOKING_CREATED","payload":' * 50,
                     b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
                     b'\xef\xbb\xbf{"triggerEvent":"PING","payload":{}}']),
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])


@FUZZ
@given(body=bodies)
def test_any_signed_body_is_stored_and_never_answered_with_a_5xx(client, cohort, ada, body):
    response = post(client, cohort, body)

    if len(body) > 1024 * 1024:
        # Refused on its Content-Length before it is read (scheduling/bodies.py): nothing to store.
        assert response.status_code == 413, response.content[:300]
        assert not WebhookDelivery.objects.filter(sha256=hashlib.sha256(body).hexdigest()).exists()
        return
    assert response.status_code in (200, 400), (response.status_code, response.content[:500], body[:300])
    assert response.json()["outcome"] in {"applied", "orphaned", "ignored", "duplicate", "rejected"}
    stored = WebhookDelivery.objects.get(cohort=cohort, sha256=hashlib.sha256(body).hexdigest())
    assert stored.body_bytes == body


@pytest.mark.parametrize("field", ["name", "eventTitle", "uid", "timeZone", "videoCallUrl", "triggerEvent",
                                   "no createdAt"])
def test_a_lone_surrogate_escape_is_stored_and_answered_not_a_500(client, cohort, ada, field):
    """Regression (found by the fuzz test): `\\ud83d` in a string made the row unstorable → 500, body lost."""
    data = sample("booking_created")
    half_an_emoji = "\ud83d"
    if field == "name":
        with_email(data, "ada.lovelace@example.org", f"Ada {half_an_emoji}")
    elif field == "timeZone":
        data["payload"]["attendees"][0]["timeZone"] = f"Europe/London{half_an_emoji}"
    elif field == "videoCallUrl":
        data["payload"]["metadata"]["videoCallUrl"] = f"https://meet.google.com/{half_an_emoji}"
    elif field == "triggerEvent":
        data["triggerEvent"] = f"BOOKING_CREATED{half_an_emoji}"
    elif field == "no createdAt":
        del data["createdAt"]
        data["payload"]["title"] = half_an_emoji
    else:
        data["payload"][field] = f"x{half_an_emoji}"
    body = json.dumps(data).encode()  # ASCII: the surrogate travels as a \\ud83d escape
    assert b"\\ud83d" in body

    response = post(client, cohort, body)

    assert response.status_code in (200, 400), response.content
    assert WebhookDelivery.objects.get(sha256=hashlib.sha256(body).hexdigest()).body_bytes == body


# --- PostgreSQL connection lost mid-request ----------------------------------------------


def _terminate(pid):
    """Terminate backend `pid` from a separate connection and wait until it is gone."""
    params = {k: v for k, v in connection.get_connection_params().items()
              if k in ("dbname", "user", "password", "host", "port")}
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is None:
                return
            time.sleep(0.02)


def _cut_connection_in(monkeypatch, module, name):
    """Make `module.name` terminate the caller's own database connection once, then carry on."""
    original = getattr(module, name)
    calls = []

    def cut_then_continue(*args, **kwargs):
        if not calls:
            calls.append(name)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            _terminate(pid)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, cut_then_continue)
    return calls


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("module", "name", "stored_first"), [
    (calcom, "parse", False),  # before the delivery is stored
    (scheduling_services, "merge_booking_event", True),  # stored, mid-apply
    (scheduling_services, "sync_application", True),  # stored, booking merged, status not yet moved
])
def test_losing_the_database_mid_request_spools_the_body_and_the_drain_applies_it_once(
        client, cohort, ada, monkeypatch, module, name, stored_first):
    body = encode(sample("booking_created"))
    calls = _cut_connection_in(monkeypatch, module, name)

    response = post(client, cohort, body)
    assert calls == [name]
    assert response.status_code == 202 and response.json()["outcome"] == "spooled"
    monkeypatch.undo()
    connections.close_all()  # the test's own handle is the dead one

    assert WebhookDelivery.objects.filter(outcome="received").count() == (1 if stored_first else 0)
    assert StatusChange.objects.count() == 0 and Booking.objects.count() == 0
    assert state_of(ada)["status"] == "waiting_first_round"

    assert spool.drain_spool().imported == {"applied": 1}
    assert post(client, cohort, body).json()["outcome"] == "duplicate"
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "applied" and delivery.redeliveries == (2 if stored_first else 1)
    assert StatusChange.objects.filter(application=ada).count() == 1
    assert Booking.objects.count() == 1
    state = state_of(ada)
    assert state["status"] == "first_round_scheduled" and state["interview_booking_uid"] == OLD_UID


# --- matching stays an index lookup as the cohort grows ----------------------------------


@pytest.mark.postgres
def test_matching_by_email_reads_indexes_not_the_whole_cohort(client, cohort):
    """Regression: `contact_email = … OR pk IN (alternates)` filtered every application of the cohort."""
    Application.objects.bulk_create([
        Application(cohort=cohort, public_id=f"app_many{i:05d}", applicant_name=f"A {i}",
                    contact_email=f"many{i:05d}@example.org", status="waiting_first_round")
        for i in range(3000)
    ])
    target = ApplicationFactory(cohort=cohort, contact_email="ada.lovelace@example.org", status="new")
    target.alternate_emails.create(email="countess@example.org")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE applications_application, applications_applicationemail")

    for email in ("ada.lovelace@example.org", "countess@example.org"):
        body = with_email(sample("booking_created", metadata={}, uid=f"U{email[:10]}", iCalUID=""), email)
        with CaptureQueriesContext(connection) as captured:
            assert post(client, cohort, body).json()["outcome"] == "applied"
        reads = [q["sql"] for q in captured.captured_queries
                 if q["sql"].startswith("SELECT") and '"applications_application"' in q["sql"]]
        for sql in reads:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql.replace("%", "%%"))
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert not re.search(r"Seq Scan on applications_application\b", plan), plan
            removed = [int(line.split(":")[1]) for line in plan.splitlines() if "Rows Removed by Filter" in line]
            assert max(removed, default=0) < 100, plan


# --- Redis down ------------------------------------------------------------------------------


def _queued_messages(redis):
    """Return the number of messages waiting in Celery's default queue on the throwaway Redis."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as conn:
        conn.sendall(b"*2\r\n$4\r\nLLEN\r\n$6\r\ncelery\r\n")
        reply = conn.recv(64)
    assert reply.startswith(b":"), reply
    return int(reply[1:].split(b"\r\n")[0])


def _deliver_timed(client, cohort, count, tag):
    """POST `count` fresh bookings (half orphaned, half matched); return [(status, seconds)]."""
    timings = []
    for i in range(count):
        if i % 2:
            application = ApplicationFactory(cohort=cohort, contact_email=f"{tag}{i}@example.org",
                                             status="waiting_first_round")
            email = application.contact_email
        else:
            email = f"stranger-{tag}{i}@example.org"  # no application: an orphaned interview
        uid = f"{tag}{i:04d}".ljust(22, "x")
        body = with_email(sample("booking_created", uid=uid, iCalUID=f"{uid}@Cal.com", metadata={}), email)
        start = time.perf_counter()
        response = post(client, cohort, body)
        timings.append((response.status_code, time.perf_counter() - start))
    return timings


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_with_redis_down_deliveries_still_answer_2xx_quickly_and_nothing_is_lost(client, cohort, throwaway_broker,
                                                                                 outage):
    """Stopped: connections are refused. Hung (SIGSTOP): they hang until the socket timeout."""
    up = _deliver_timed(client, cohort, 10, "up")
    if outage == "stopped":
        throwaway_broker.stop()
        assert not throwaway_broker.is_up()
    else:
        throwaway_broker.pause()
    down = _deliver_timed(client, cohort, 10, "down")
    if outage == "stopped":
        throwaway_broker.start()
    else:
        throwaway_broker.resume()
    back = _deliver_timed(client, cohort, 4, "back")

    for phase in (up, down, back):
        assert [status for status, _ in phase] == [200] * len(phase)
    up_median = sorted(t for _, t in up)[len(up) // 2]
    down_times = sorted(t for _, t in down)
    # "Normal latency": no broker timeout on the request path, except that a hung broker may
    # cost the first request that meets it its socket timeout (2 s; orphans.tasks' breaker).
    assert down_times[len(down) // 2] < 3 * up_median + 0.05, (up_median, down_times)
    assert down_times[-2] < 1.0, down_times
    assert down_times[-1] < (1.0 if outage == "stopped" else 3.5), down_times

    deliveries = WebhookDelivery.objects.filter(cohort=cohort)
    assert deliveries.count() == 24
    assert set(deliveries.values_list("outcome", flat=True)) == {"applied", "orphaned"}
    assert OrphanedInterview.objects.filter(cohort=cohort).count() == 12
    assert Application.objects.filter(cohort=cohort, status="first_round_scheduled").count() == 12


@pytest.mark.django_db(transaction=True)
def test_orphans_recorded_while_redis_is_down_are_alerted_once_it_is_back(client, cohort, throwaway_broker,
                                                                          mailoutbox):
    """Issue 4's design: publish after commit, best effort; the beat sweep sends what was not published.

    The restarted throwaway Redis keeps no data, so even the alerts published before the
    outage are gone from the queue: the sweep has to find every one of them in the database.
    """
    from orphans import alerts
    from datetime import timedelta

    from django.utils import timezone

    up = _deliver_timed(client, cohort, 4, "up")
    assert _queued_messages(throwaway_broker) == 2  # one alert task per orphan, published after commit
    throwaway_broker.stop()
    down = _deliver_timed(client, cohort, 6, "down")
    throwaway_broker.start()
    back = _deliver_timed(client, cohort, 2, "back")
    assert all(status == 200 for status, _ in up + down + back)
    orphans = OrphanedInterview.objects.filter(cohort=cohort)
    assert orphans.count() == 6 and set(orphans.values_list("alert_state", flat=True)) == {"pending"}
    assert not mailoutbox

    later = timezone.now() + alerts.ALERT_GRACE + timedelta(seconds=1)
    alerts.send_pending_alerts(now=later)

    assert set(orphans.values_list("alert_state", flat=True)) == {"sent"}
    sent_text = "\n".join(m.body for m in mailoutbox)
    assert all(email in sent_text for email in orphans.values_list("email", flat=True))
    assert {tuple(m.to) for m in mailoutbox} == {("org_admin@example.org",)}
    count = len(mailoutbox)
    alerts.send_pending_alerts(now=later + alerts.ALERT_GRACE)
    assert len(mailoutbox) == count  # a second sweep alerts nobody twice
