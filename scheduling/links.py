"""Booking links bound to one application and round, and the signed reference they carry.

A ref is "<public_id>.<round>.<mac>": the application's public id, the round
(1 or 2) and 16 characters of an HMAC-SHA256 keyed per cohort (Django's
`salted_hmac` with the cohort's pk in the salt, over SECRET_KEY and its
fallbacks). It is stable (the same application and round always give the same
ref), cannot be forged or moved to another application, round or cohort without
SECRET_KEY, and is about 35 characters: well inside Cal.com's metadata values and
the 128 characters Cronofy allows in correlation_id (PROTOCOL.md §2, §8, §9).
"""

import base64
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.crypto import salted_hmac

MAC_CHARS = 16  # 96 bits of the MAC: forging one means guessing 2**96 values
_REF = re.compile(r"^(?P<public_id>[A-Za-z0-9_-]{1,64})\.(?P<round>[12])\.(?P<mac>[A-Za-z0-9_-]{%d})$" % MAC_CHARS)
# Links sent before refs existed carried the bare public id ("app_" + 12 hex digits: 48 random
# bits, not guessable the way a primary key is).
_BARE_PUBLIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

CALCOM, CALENDLY, CRONOFY, OTHER = "calcom", "calendly", "cronofy", "other"


def _mac(cohort_id, public_id, round_number, secret=None):
    digest = salted_hmac(
        f"cohortos.scheduling.links.ref:cohort={cohort_id}", f"{public_id}.{round_number}",
        secret=secret, algorithm="sha256",
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def make_ref(application, round_number):
    """Return the signed ref (str, ~35 chars) naming `application` and round 1 or 2.

    Raises ValueError for another round number.
    """
    if round_number not in (1, 2):
        raise ValueError(f"Round must be 1 or 2, not {round_number!r}.")
    mac = _mac(application.cohort_id, application.public_id, round_number)
    return f"{application.public_id}.{round_number}.{mac}"


@dataclass(frozen=True)
class RefCheck:
    """What a `metadata.application_id` value says, checked against one cohort.

    `kind`: "signed" (a valid ref: `public_id` and `round` are set), "bare" (an
    old link's bare public id: `public_id` set, `round` None), "number" (a numeric
    primary key, which never matches any more), "invalid" (a ref whose MAC does not
    verify for this cohort: tampered, or another cohort's; or text of no known
    shape) or "" (no value).
    """

    kind: str
    public_id: str = ""
    round: int | None = None

    @property
    def problem(self):
        """Return a sentence for sync health when the value was ignored, else ""."""
        if self.kind == "number":
            return ("The booking's link reference is a bare application number, which is never accepted "
                    "(anyone could type one), so it was ignored: only the booking chain and the email "
                    "were used to match it.")
        if self.kind == "invalid":
            return ("The booking's link reference is not valid for this cohort (changed by hand, or from "
                    "another cohort's link), so it was ignored: only the booking chain and the email were "
                    "used to match it.")
        return ""


def check_ref(cohort, value):
    """Check `value` (the booking's `metadata.application_id`, a str) for `cohort`; return a RefCheck.

    Only a ref whose MAC verifies names an application; numeric primary keys never
    do (anyone could type `?metadata[application_id]=17`). A bare public id is
    accepted for links sent before refs existed.
    """
    value = (value or "").strip()
    if not value:
        return RefCheck("")
    if value.isdigit():
        return RefCheck("number")
    found = _REF.match(value)
    if found:
        public_id, round_number, mac = found["public_id"], int(found["round"]), found["mac"]
        for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
            if hmac.compare_digest(mac, _mac(cohort.pk, public_id, round_number, secret=secret)):
                return RefCheck("signed", public_id, round_number)
        return RefCheck("invalid")
    if _BARE_PUBLIC_ID.match(value):
        return RefCheck("bare", value)
    return RefCheck("invalid")


def provider_for(url):
    """Return which scheduler serves booking page `url`: "calcom", "calendly", "cronofy" or "other".

    Cal.com can be self-hosted under any domain, so an unknown https host counts as
    Cal.com; Google appointment pages take no query parameters ("other").
    """
    host = (urlsplit(url).hostname or "").lower()
    if host == "calendly.com" or host.endswith(".calendly.com"):
        return CALENDLY
    if host.endswith("cronofy.com"):
        return CRONOFY
    if host in ("calendar.google.com", "calendar.app.google") or host.endswith(".google.com"):
        return OTHER
    return CALCOM


def booking_link(application, interview_round):
    """Return `interview_round`'s booking URL bound to `application` (a str, https).

    Prefills the applicant's name and email and carries the signed ref: Cal.com
    `name`, `email`, `metadata[application_id]` and the hidden question
    `application-id` (kept on reschedules, PROTOCOL.md §2); Calendly `name`,
    `email`, `utm_content`; Cronofy `email`, `name`, `correlation_id`. A Google
    appointment page takes no parameters and is returned as it is (such bookings
    match by email). Query parameters already on the URL are kept.
    """
    url = interview_round.booking_url
    provider = provider_for(url)
    if provider == OTHER:
        return url
    ref = make_ref(application, interview_round.number)
    person = [("name", application.applicant_name), ("email", application.contact_email)]
    extra = {
        CALCOM: [("metadata[application_id]", ref), ("application-id", ref)],
        CALENDLY: [("utm_content", ref)],
        CRONOFY: [("correlation_id", ref)],
    }[provider]
    parts = urlsplit(url)
    ours = {key for key, _ in person + extra}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode(kept + person + extra, safe="[]")  # readable metadata[application_id]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def link_for(application):
    """Return (InterviewRound, link) for the round `application` waits for, or (None, "").

    The round is 1 for `new` and `waiting_first_round`, 2 for `waiting_second_round`
    (see rounds.round_waited_for); there is no link when that round is not configured.
    """
    from .rounds import configured_round, round_waited_for

    number = round_waited_for(application.status)
    interview_round = configured_round(application.cohort_id, number) if number else None
    if interview_round is None:
        return None, ""
    return interview_round, booking_link(application, interview_round)


def applicant_page_url(application):
    """Return the absolute URL of `application`'s own applicant page (`/i/<token>/`).

    Invitations render it as `{{ applicant_page }}`; it issues the applicant's token
    when they have no working one (scheduling.applicant.applicant_page_url).
    """
    from .applicant import applicant_page_url as page_url

    return page_url(application)
