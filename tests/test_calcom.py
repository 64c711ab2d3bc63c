import json
from datetime import datetime, timezone

import pytest

from scheduling.providers import calcom

from .calcom_helpers import SAMPLES, encode, sample, with_email

UTC = timezone.utc


def test_signature_matches_the_known_answer_for_the_ping_sample():
    body = (SAMPLES / "calcom_ping.json").read_bytes()
    expected = "671df5c0d550951ff25dc2f1f0c7547778fe6bbcf11f3499ae7d0ef008cfe887"
    assert calcom.sign(body, "cohortos-test-secret") == expected
    assert calcom.verify(body, expected, "cohortos-test-secret")
    assert calcom.verify(body, expected.upper(), "cohortos-test-secret")


@pytest.mark.parametrize("signature", [None, "", "no-secret-provided", "sha256=abc", "0" * 64])
def test_verify_refuses_missing_placeholder_and_wrong_signatures(signature):
    assert not calcom.verify(b"{}", signature, "secret")


def test_verify_refuses_a_signature_made_with_another_secret():
    assert not calcom.verify(b"{}", calcom.sign(b"{}", "other"), "secret")


def test_parse_created_sample():
    event = calcom.parse(encode(sample("booking_created")))
    assert event.trigger == "BOOKING_CREATED"
    assert event.uid == "k7Qm3XyZp2RvT9wLbN4sHd"
    assert event.ical_uid == "k7Qm3XyZp2RvT9wLbN4sHd@Cal.com"
    assert event.ical_sequence == 0
    assert event.start == datetime(2026, 6, 9, 14, 0, tzinfo=UTC)
    assert event.end == datetime(2026, 6, 9, 14, 30, tzinfo=UTC)
    assert event.created_at == datetime(2026, 6, 2, 16, 21, 7, 482000, tzinfo=UTC)
    assert event.email == "ada.lovelace@example.org"
    assert event.name == "Ada Lovelace"
    assert event.time_zone == "Europe/London"
    assert event.meeting_url == "https://meet.google.com/xqv-trbn-kfo"
    assert event.application_id == "app_7f3c2a91"
    assert event.event_type == "first-round-interview"
    assert event.logical_key == "BOOKING_CREATED:k7Qm3XyZp2RvT9wLbN4sHd:2026-06-02T16:21:07.482000+00:00"


def test_parse_rescheduled_sample_keeps_the_link_to_the_old_booking():
    event = calcom.parse(encode(sample("booking_rescheduled")))
    assert (event.uid, event.reschedule_uid) == ("Pw8tLc5HnJ2vQe6RkMz3Ya", "k7Qm3XyZp2RvT9wLbN4sHd")
    assert event.application_id == ""
    assert event.ical_sequence == 1


def test_parse_cancelled_sample_with_plus_zero_offset_times():
    event = calcom.parse(encode(sample("booking_cancelled")))
    assert event.start == datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
    assert event.meeting_url == ""  # no metadata on cancel, and location is not a URL
    assert event.request_reschedule is False
    assert event.reason.startswith("I have accepted another offer")


def test_parse_rejected_sample_with_fractional_seconds():
    event = calcom.parse(encode(sample("booking_rejected")))
    assert event.start == datetime(2026, 6, 16, 13, 0, tzinfo=UTC)
    assert event.ical_uid == "" and event.ical_sequence is None
    assert event.reason.startswith("The final-round panel is full")


def test_parse_flat_meeting_ended_body():
    event = calcom.parse(encode(sample("meeting_ended")))
    assert event.trigger == "MEETING_ENDED"
    assert event.uid == "Qh2sXe7WmN4bTy9KpR5cLd"
    assert event.reschedule_uid == "Vj6kDa3PfM8nZs2QwT7gHb"  # from fromReschedule
    assert event.email == "emmy.noether@example.org"
    assert event.end == datetime(2026, 6, 12, 12, 30, tzinfo=UTC)


def test_parse_wrapped_meeting_ended_body():
    flat = sample("meeting_ended")
    wrapped = {"triggerEvent": "MEETING_ENDED", "createdAt": "2026-06-12T12:31:00.000Z",
               "payload": {k: v for k, v in flat.items() if k != "triggerEvent"}}
    event = calcom.parse(encode(wrapped))
    assert event.uid == "Qh2sXe7WmN4bTy9KpR5cLd"
    assert event.created_at == datetime(2026, 6, 12, 12, 31, tzinfo=UTC)


def test_parse_ping_and_unknown_triggers_without_requiring_booking_fields():
    assert calcom.parse(encode(sample("ping"))).trigger == "PING"
    event = calcom.parse(b'{"triggerEvent":"RECORDING_READY","payload":{}}')
    assert event.trigger == "RECORDING_READY"


def test_booker_email_prefers_responses_then_attendees_trimmed_and_lowercased():
    data = sample("booking_created")
    data["payload"]["responses"]["email"]["value"] = "  Ada.Lovelace@Example.ORG "
    assert calcom.parse(encode(data)).email == "ada.lovelace@example.org"
    del data["payload"]["responses"]["email"]
    data["payload"]["attendees"][0]["email"] = "ADA@example.org"
    assert calcom.parse(encode(data)).email == "ada@example.org"


def test_meeting_url_falls_back_to_a_url_location():
    data = sample("booking_created", metadata={}, location="https://zoom.us/j/123")
    assert calcom.parse(encode(data)).meeting_url == "https://zoom.us/j/123"
    data = sample("booking_created", metadata={}, location="221B Baker Street")
    assert calcom.parse(encode(data)).meeting_url == ""


def test_split_name_field_is_joined():
    data = sample("booking_created")
    data["payload"]["responses"]["name"]["value"] = {"firstName": "Ada", "lastName": "King"}
    assert calcom.parse(encode(data)).name == "Ada King"


BAD_BODIES = [
    (b"not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object, not an array"),
    (b'{"payload": {}}', "Missing triggerEvent"),
    (b'{"triggerEvent": 5, "payload": {}}', "triggerEvent must be a string"),
    (b'{"triggerEvent": "BOOKING_CREATED"}', "Missing payload"),
    (b'{"triggerEvent": "BOOKING_CREATED", "payload": []}', "payload must be a JSON object"),
    (encode(sample("booking_created", uid=None)), "Missing payload.uid"),
    (encode(sample("booking_created", uid=42)), "payload.uid must be a string"),
    (encode(sample("booking_created", startTime="next tuesday")), "payload.startTime is not an ISO-8601"),
    (encode(sample("booking_created", startTime="2026-06-09T14:00:00")), "payload.startTime is not an ISO-8601"),
    (encode(sample("booking_created", endTime=None)), "Missing payload.endTime"),
    (encode(sample("booking_created", endTime="2026-06-09T13:00:00Z")), "payload.endTime is before"),
    (encode(sample("booking_created", createdAt="yesterday")), "createdAt is not an ISO-8601"),
    (encode(sample("booking_created", uid="u" * 65)), "payload.uid is longer than 64"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES)
def test_parse_names_the_problem(body, message):
    with pytest.raises(calcom.ParseError, match=message):
        calcom.parse(body)


def test_parse_rejects_a_booking_without_a_usable_email():
    data = sample("booking_created")
    data["payload"]["responses"]["email"]["value"] = "not-an-email"
    data["payload"]["attendees"] = []
    with pytest.raises(calcom.ParseError, match="No usable booker email"):
        calcom.parse(encode(data))


def test_ical_sequence_as_a_digit_string_is_read_and_junk_is_ignored():
    assert calcom.parse(encode(sample("booking_created", iCalSequence="3"))).ical_sequence == 3
    assert calcom.parse(encode(sample("booking_created", iCalSequence="x"))).ical_sequence is None


def test_non_ascii_signature_does_not_verify():
    assert not calcom.verify(b"{}", "é" * 64, "secret")


def test_nul_characters_are_dropped_and_overlong_emails_are_unusable():
    data = with_email(sample("booking_created"), "ada.lovelace@example.org", "Ada\u0000 Lovelace")
    assert calcom.parse(encode(data)).name == "Ada Lovelace"
    long_email = "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "org"
    data = with_email(sample("booking_created"), long_email)
    with pytest.raises(calcom.ParseError, match="No usable booker email"):
        calcom.parse(encode(data))


def test_no_show_updates_are_named_by_booking_uid():
    body = {"triggerEvent": "BOOKING_NO_SHOW_UPDATED", "createdAt": "2026-06-12T13:00:00.000Z",
            "payload": {"bookingUid": "A" * 22, "bookingId": 1}}
    assert calcom.parse(encode(body)).uid == "A" * 22


def test_without_created_at_the_logical_key_survives_reserialisation():
    data = sample("booking_created", createdAt=None)
    compact = calcom.parse(encode(data))
    pretty = calcom.parse(json.dumps(data, indent=2).encode())
    assert compact.logical_key == pretty.logical_key
    assert compact.logical_key.startswith("BOOKING_CREATED:k7Qm3XyZp2RvT9wLbN4sHd:sha256=")
