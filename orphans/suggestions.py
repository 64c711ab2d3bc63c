"""Which applications may be an orphaned interview's applicant: suggestions and search.

Suggestions are drawn from the orphan's own name and email (see reasons_for) and
ranked by how much each reason weighs; search is the orphan modal's search box.
"""

import re

from django.db.models import Case, IntegerField, Q, Value, When

from applications.models import normalize_email
from scheduling.status import CLOSED, WAITING, Status

# Same domain says little at a mail provider everybody uses.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
    "icloud.com", "me.com", "proton.me", "protonmail.com", "aol.com", "gmx.de", "gmx.net",
    "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com",
})
SUGGESTIONS = 3
# Candidates one orphan's query fetches at most before ranking (a very common surname).
SUGGESTION_POOL = 50

SAME_NAME = "same name"
SAME_SURNAME = "same surname"
SAME_DOMAIN = "same email domain"
ONE_CHARACTER_OFF = "email differs by one character"
# How much each reason weighs in the ranking; waiting applications only break ties.
WEIGHT = {SAME_NAME: 4, ONE_CHARACTER_OFF: 4, SAME_SURNAME: 2, SAME_DOMAIN: 1}


def _waiting_first():
    """An ORDER BY key: waiting for an interview (0), new (1), anything else (2)."""
    return Case(When(status__in=list(WAITING), then=Value(0)), When(status=Status.NEW, then=Value(1)),
                default=Value(2), output_field=IntegerField())


def _words(text):
    return [w for w in re.split(r"[\W_\d]+", text.lower()) if len(w) >= 2]


def _split_email(email):
    local, _, domain = normalize_email(email).partition("@")
    return local, domain


def _one_edit_apart(a, b):
    """Return True when `a` and `b` differ by exactly one inserted, deleted or replaced character."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _one_edit_regex(email):
    """Return a regex matching every string one edit away from `email` (and `email` itself)."""
    alternatives = set()
    for i in range(len(email) + 1):
        alternatives.add(re.escape(email[:i]) + "." + re.escape(email[i:]))  # one inserted
        if i < len(email):
            alternatives.add(re.escape(email[:i]) + "." + re.escape(email[i + 1:]))  # one replaced
            alternatives.add(re.escape(email[:i] + email[i + 1:]))  # one deleted
    return "^(" + "|".join(sorted(alternatives)) + ")$"


def surname(name, email=""):
    """Return the orphan's surname: the last word of its name (of its email's local part if nameless)."""
    words = _words(name) or _words(_split_email(email)[0])
    return words[-1] if words and len(words[-1]) >= 2 else ""


def reasons_for(orphan, application):
    """Return why `application` may be `orphan`'s applicant: a list of reason sentences (maybe empty).

    Only the orphan's own name and email count: same name, same surname, the same
    email domain (webmail domains count for nothing), an email one character off.
    """
    reasons = []
    name = " ".join(_words(orphan.name))
    app_words = _words(application.applicant_name)
    if name and name == " ".join(app_words):
        reasons.append(SAME_NAME)
    family = surname(orphan.name, orphan.email)
    if family and app_words and app_words[-1] == family and SAME_NAME not in reasons:
        reasons.append(SAME_SURNAME)
    _, domain = _split_email(orphan.email)
    if domain and domain not in FREE_MAIL_DOMAINS and _split_email(application.contact_email)[1] == domain:
        reasons.append(SAME_DOMAIN)
    if _one_edit_apart(normalize_email(orphan.email), application.contact_email):
        reasons.append(ONE_CHARACTER_OFF)
    return reasons


def suggest_for(orphan, *, limit=SUGGESTIONS):
    """Return up to `limit` open applications of the orphan's cohort that may be its applicant.

    Drawn from this orphan alone (see reasons_for), so they never depend on which
    other orphans are listed. Each Application carries `.reasons` (sentences).
    Ranked by the weight of their reasons (reasons_for, WEIGHT); equal weights keep
    the query's order, which ranks by the database's estimate of that weight (a
    same name there also scores its surname), then waiting for an interview first,
    then the most recently updated. One query, every sign served by an index.
    """
    email = normalize_email(orphan.email)
    _, domain = _split_email(email)
    signs = []  # (condition, weight): the database ranks by their sum, so a flood of weak ones waits
    name = " ".join(_words(orphan.name))
    if name:
        signs.append((Q(applicant_name__iexact=orphan.name.strip()), WEIGHT[SAME_NAME]))
    family = surname(orphan.name, email)
    if family:
        signs.append((Q(applicant_name__iendswith=f" {family}") | Q(applicant_name__iexact=family),
                      WEIGHT[SAME_SURNAME]))
    # Every sign is one the trigram indexes answer (UPPER(col) LIKE …, stored emails are
    # lower-case so i-lookups change nothing), so PostgreSQL reads the matching rows, not
    # the cohort: a sign it cannot index makes it filter every row (a regex alone: 830 ms
    # at 100,000 applications, bench/orphan_search.py).
    if domain and domain not in FREE_MAIL_DOMAINS:
        signs.append((Q(contact_email__iendswith=f"@{domain}"), WEIGHT[SAME_DOMAIN]))
    if email and len(email) <= 100:
        # One edit leaves the first half or the second half whole: those two LIKEs find the
        # few rows the regex then checks exactly.
        half = len(email) // 2
        near = Q(contact_email__istartswith=email[:half]) | Q(contact_email__iendswith=email[half:])
        signs.append((near & Q(contact_email__regex=_one_edit_regex(email)), WEIGHT[ONE_CHARACTER_OFF]))
    if not signs:
        return []
    found = Q()
    weight = Value(0)
    for condition, points in signs:
        found |= condition
        weight = weight + Case(When(condition, then=Value(points)), default=Value(0),
                               output_field=IntegerField())
    pool = (orphan.cohort.applications.exclude(status__in=list(CLOSED)).filter(found)
            .annotate(weight=weight)
            .order_by("-weight", _waiting_first(), "-updated_at", "pk")[:SUGGESTION_POOL])
    ranked = []
    for position, application in enumerate(pool):
        application.reasons = reasons_for(orphan, application)
        if application.reasons:
            ranked.append((-sum(WEIGHT[r] for r in application.reasons), position, application))
    ranked.sort(key=lambda item: item[:2])
    return [application for _, _, application in ranked[:limit]]


def suggest_applications(cohort, orphans, *, limit=SUGGESTIONS):
    """Return {orphan pk: [Application, …]}: each orphan's own suggestions (suggest_for), one query each."""
    result = {}
    for orphan in orphans:
        orphan.cohort = cohort
        result[orphan.pk] = suggest_for(orphan, limit=limit)
    return result


def search_applications(cohort, text, *, limit=10):
    """Return up to `limit` of `cohort`'s applications whose name or email contains `text`.

    Waiting for an interview first, then new, then the rest (closed ones
    included, for the view to show as not matchable). Empty text finds nothing.
    """
    text = (text or "").strip()
    if not text:
        return []
    return list(cohort.applications.search(text).order_by(_waiting_first(), "applicant_name", "pk")[:limit])
