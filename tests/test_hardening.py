"""Webhook bodies (size known before reading, read against a clock), security headers, masked logs."""

import io
import logging
import time

import pytest
from django.test import Client

from scheduling.providers import calcom
from scheduling.log_masking import mask_webhook_keys
from scheduling.models import WebhookDelivery

from .calcom_helpers import encode, post, sample


class ExplodingInput:
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


class TrickleInput:
    """A wsgi.input handing out `chunk` bytes per read, each after `pause` seconds."""

    def __init__(self, body, chunk=4096, pause=0.3):
        self.stream, self.chunk, self.pause = io.BytesIO(body), chunk, pause

    def read(self, size=-1):
        time.sleep(self.pause)
        return self.stream.read(min(self.chunk, size) if size and size > 0 else self.chunk)

    readline = read


def _raw_post(client, cohort, **meta):
    return client.generic("POST", cohort.webhook_path(), **meta)


def test_a_content_length_over_one_mib_is_refused_with_413_before_a_byte_is_read(client, cohort):
    response = _raw_post(client, cohort, CONTENT_LENGTH="2147483648", CONTENT_TYPE="application/json",
                         **{"wsgi.input": ExplodingInput()})
    assert response.status_code == 413
    assert "2147483648 bytes; the limit is 1048576 bytes (1 MiB)" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_body_of_exactly_one_mib_is_read(client, cohort, ada):
    body = encode(sample("ping"))
    body += b" " * (1024 * 1024 - len(body))
    response = post(client, cohort, body)
    assert response.status_code == 200, response.content[:300]
    assert WebhookDelivery.objects.get().body_bytes == body


def test_one_byte_over_the_limit_is_413(client, cohort):
    body = encode(sample("ping"))
    body += b" " * (1024 * 1024 + 1 - len(body))
    assert post(client, cohort, body).status_code == 413
    assert not WebhookDelivery.objects.exists()


def test_a_chunked_body_without_content_length_gets_411_not_a_signature_error(client, cohort):
    body = encode(sample("booking_created"))
    response = _raw_post(client, cohort, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked",
                         HTTP_X_CAL_SIGNATURE_256=calcom.sign(body, cohort.webhook_secret),
                         **{"wsgi.input": io.BytesIO(body)})
    assert response.status_code == 411
    assert "Content-Length" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_content_length_that_is_not_a_number_is_400(client, cohort):
    response = _raw_post(client, cohort, CONTENT_LENGTH="12abc", **{"wsgi.input": ExplodingInput()})
    assert response.status_code == 400 and "not a number" in response.json()["error"]


def test_a_body_shorter_than_its_content_length_is_400(client, cohort):
    response = _raw_post(client, cohort, CONTENT_LENGTH="5000", **{"wsgi.input": io.BytesIO(b"{}")})
    assert response.status_code == 400 and "ended after 2 of the 5000 bytes" in response.json()["error"]


def test_a_trickled_body_is_cut_off_at_the_read_deadline(client, cohort, settings):
    settings.WEBHOOK_READ_SECONDS = 1
    body = encode(sample("booking_created")) + b" " * 40_000
    started = time.monotonic()
    response = _raw_post(client, cohort, CONTENT_LENGTH=str(len(body)),
                         HTTP_X_CAL_SIGNATURE_256=calcom.sign(body, cohort.webhook_secret),
                         **{"wsgi.input": TrickleInput(body)})
    elapsed = time.monotonic() - started
    assert response.status_code == 408
    assert "did not arrive within 1 seconds" in response.json()["error"]
    assert elapsed < 2.0  # the deadline plus at most one slow read
    assert not WebhookDelivery.objects.exists()


def test_a_body_that_arrives_in_time_in_small_pieces_is_applied(client, cohort, ada, settings):
    settings.WEBHOOK_READ_SECONDS = 5
    body = encode(sample("booking_created"))
    response = _raw_post(client, cohort, CONTENT_LENGTH=str(len(body)), CONTENT_TYPE="application/json",
                         HTTP_X_CAL_SIGNATURE_256=calcom.sign(body, cohort.webhook_secret),
                         **{"wsgi.input": TrickleInput(body, chunk=500, pause=0.01)})
    assert response.status_code == 200 and response.json()["outcome"] == "applied"


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_pages_carry_a_csp_without_inline_script_and_a_permissions_policy(client, path):
    response = client.get(path)
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    policy = response["Permissions-Policy"]
    assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy


def test_our_templates_have_no_inline_script_or_style(admin_client, cohort, ada):
    pages = [f"/cohorts/{cohort.slug}/applications/", f"/cohorts/{cohort.slug}/applications/{ada.pk}/",
             f"/cohorts/{cohort.slug}/orphans/", "/settings/", "/"]
    for page in pages:
        html = admin_client.get(page).content.decode()
        for opening in html.split("<script")[1:]:
            assert " src=" in opening.split(">", 1)[0], (page, opening[:200])
        assert " style=" not in html and "<style" not in html, page
        assert " on" not in "".join(t.split(">", 1)[0] for t in html.split("<")).replace(" one", ""), page


# --- logs ----------------------------------------------------------------------------------------


def test_mask_keeps_the_last_four_characters_of_every_webhook_key():
    line = 'POST /webhooks/calcom/AbCdEfGhIjKlMnOp1234/ 403 and "GET /webhooks/calendly/zzzzWXYZ?x=1"'
    assert mask_webhook_keys(line) == 'POST /webhooks/calcom/…1234/ 403 and "GET /webhooks/calendly/…WXYZ?x=1"'


def test_the_webhook_key_never_reaches_our_log_output(client, cohort):
    handler = next(h for h in logging.getLogger().handlers
                   if any(type(f).__name__ == "MaskWebhookKeys" for f in h.filters))
    buffer = io.StringIO()
    saved = handler.setStream(buffer)
    try:
        assert post(client, cohort, encode(sample("booking_created")), signature="sha256=bad").status_code == 403
        assert client.post("/webhooks/calcom/NoSuchKeyButSecret9876/", data=b"{}",
                           content_type="application/json").status_code == 404
        logging.getLogger("django.request").warning("Forbidden: %s", cohort.webhook_path())
    finally:
        handler.setStream(saved)
    output = buffer.getvalue()
    assert output, "nothing was logged"
    assert cohort.webhook_key not in output and "NoSuchKeyButSecret9876" not in output
    assert f"/webhooks/calcom/…{cohort.webhook_key[-4:]}/" in output
    assert "/webhooks/calcom/…9876/" in output


def test_runserver_request_lines_are_masked_too():
    logger = logging.getLogger("django.server")
    assert not logger.propagate
    assert any(any(type(f).__name__ == "MaskWebhookKeys" for f in h.filters) for h in logger.handlers)


def test_a_post_with_neither_length_nor_chunking_has_an_empty_body(cohort):
    response = _raw_post(Client(), cohort, CONTENT_LENGTH="")
    assert response.status_code == 403  # an empty body, checked like any other: it is not signed
