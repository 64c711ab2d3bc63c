"""A fake of Cal.com API v2's `GET /v2/bookings`, for tests (`responses`) and a loopback server.

Behaves as ../shared/calcom/API_V2.md describes, for what the sync uses: Bearer
auth (401 in the HttpExceptionFilter shape for another key), `cal-api-version`
(without 2024-08-13 the legacy shape comes back, silently, §0), the
afterCreatedAt / afterUpdatedAt / eventTypeIds filters, one sort key, take/skip
paging with the computed `pagination` block (§3). Bookings are API v2 objects (§4).
"""

import copy
import json
import math
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SAMPLES = Path(__file__).parent / "fixtures" / "calcom"
API_KEY = "cal_test_0f3a9c2b7d4e41a8b6c5d9e2f1a0b3c4"


@cache
def _load(name):
    return json.loads((SAMPLES / f"api_v2_{name}.json").read_text())


def sample_bookings():
    """Return a fresh list of the seven sample bookings (pages 1 and 2 of the shared samples)."""
    return copy.deepcopy(_load("bookings_page1")["data"] + _load("bookings_page2")["data"])


def error_body(name):
    """Return the sample error body `name` ("error_401", "error_429") as a dict."""
    return copy.deepcopy(_load(name))


@cache
def _when(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class FakeCalcomApi:
    """In-memory bookings answered like Cal.com API v2; `requests` records each query (dicts)."""

    def __init__(self, bookings=None, *, api_key=API_KEY):
        self.bookings = list(sample_bookings() if bookings is None else bookings)
        self.api_key = api_key
        self.requests = []

    def answer(self, method, url, headers):
        """Return (status, headers dict, body dict) for one request."""
        if method != "GET" or not urlsplit(url).path.rstrip("/").endswith("/v2/bookings"):
            return 404, {}, {"status": "error", "error": {"code": "NotFoundException", "message": "Cannot GET"}}
        params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        self.requests.append(params)
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth != f"Bearer {self.api_key}":
            return 401, {}, error_body("error_401")
        version = headers.get("cal-api-version") or headers.get("Cal-Api-Version")
        rows = self._filter(params)
        if version != "2024-08-13":
            return 200, {}, {"status": "success", "data": {"bookings": rows}}  # legacy shape
        take, skip = int(params.get("take", 100)), int(params.get("skip", 0))
        total = len(rows)
        page = rows[skip:skip + take]
        pages = math.ceil(total / take) if total else 0
        pagination = {
            "returnedItems": max(0, min(total - skip, take)), "totalItems": total, "itemsPerPage": take,
            "remainingItems": max(0, min(total - (skip + take), total)),
            "currentPage": 0 if not total else max(1, min(skip // take + 1, pages)), "totalPages": pages,
            "hasNextPage": skip + take < total, "hasPreviousPage": skip > 0,
        }
        headers = {"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "119",
                   "X-RateLimit-Reset-Default": "60"}
        return 200, headers, {"status": "success", "data": page, "pagination": pagination}

    def _filter(self, params):
        rows = self.bookings
        if params.get("eventTypeIds"):
            wanted = {int(i) for i in params["eventTypeIds"].split(",")}
            rows = [b for b in rows if b.get("eventTypeId") in wanted]
        if params.get("afterCreatedAt"):
            bound = _when(params["afterCreatedAt"])
            rows = [b for b in rows if _when(b["createdAt"]) >= bound]
        if params.get("afterUpdatedAt"):
            bound = _when(params["afterUpdatedAt"])
            rows = [b for b in rows if b.get("updatedAt") and _when(b["updatedAt"]) >= bound]
        for key, field in (("sortStart", "start"), ("sortEnd", "end"), ("sortCreated", "createdAt"),
                           ("sortUpdatedAt", "updatedAt")):
            if key in params:  # only the first sort key present applies (§2)
                return sorted(rows, key=lambda b: b.get(field) or "", reverse=params[key] == "desc")
        return sorted(rows, key=lambda b: b["start"])

    def register(self, rsps, base_url="https://api.cal.com/v2"):
        """Answer `base_url`/bookings from this fake in a `responses.RequestsMock`."""
        import re

        def callback(request):
            status, headers, body = self.answer(request.method, request.url, request.headers)
            return status, headers, json.dumps(body)

        rsps.add_callback("GET", re.compile(re.escape(base_url) + r"/bookings(\?.*)?$"), callback=callback,
                          content_type="application/json")
