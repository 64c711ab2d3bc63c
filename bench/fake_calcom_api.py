"""A loopback fake of Cal.com API v2's `GET /v2/bookings`, to point a local Cohort-OS at.

    .venv/bin/python bench/fake_calcom_api.py --port 8765                 # the seven sample bookings, moved to now
    .venv/bin/python bench/fake_calcom_api.py --port 8765 --bookings my_bookings.json

Then run the app with `CALCOM_API_URL=http://127.0.0.1:8765/v2`, give a cohort the API key
this prints (Cohort settings → Cal.com API sync) and press "Sync now", or run
`.venv/bin/python manage.py sync_calcom <cohort slug>`. The answers follow
../shared/calcom/API_V2.md as tests/calcom_api_fake.py implements it (Bearer key, the
`cal-api-version` header, afterCreatedAt/afterUpdatedAt/eventTypeIds, take/skip paging).
`--bookings` takes a JSON list of API v2 booking objects (or a `{"data": [...]}` page).
Loopback only; nothing here talks to Cal.com.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.calcom_api_fake import API_KEY, FakeCalcomApi  # noqa: E402


def shift_to_now(bookings, now=None):
    """Move every time of `bookings` (API v2 objects) so the latest change was an hour ago.

    The samples are from June 2026; a first sync only looks 30 days back.
    """
    from datetime import datetime, timedelta, timezone

    def parse(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    def fmt(moment):
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    now = now or datetime.now(timezone.utc)
    latest = max(parse(b.get("updatedAt") or b["createdAt"]) for b in bookings)
    delta = now - timedelta(hours=1) - latest
    for booking in bookings:
        for key in ("start", "end", "createdAt", "updatedAt"):
            if booking.get(key):
                booking[key] = fmt(parse(booking[key]) + delta)
    return bookings


def make_server(api, port=0):
    """Return a ThreadingHTTPServer on 127.0.0.1:`port` (0: any free port) answering from `api`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status, headers, body = api.answer("GET", self.path, self.headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve_in_thread(api):
    """Start a fake on a free loopback port in a daemon thread; return (server, base URL ending /v2)."""
    server = make_server(api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v2"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--bookings", type=Path, help="JSON file of API v2 booking objects")
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--keep-dates", action="store_true",
                        help="serve the bookings' own dates (default: moved so the latest change was an hour ago)")
    args = parser.parse_args()
    bookings = None
    if args.bookings:
        loaded = json.loads(args.bookings.read_text())
        bookings = loaded["data"] if isinstance(loaded, dict) else loaded
    api = FakeCalcomApi(bookings, api_key=args.api_key)
    if not args.keep_dates:
        shift_to_now(api.bookings)
    server = make_server(api, args.port)
    print(f"Fake Cal.com API v2 with {len(api.bookings)} bookings on http://127.0.0.1:{args.port}/v2")
    print(f"API key: {args.api_key}")
    print(f"Run the app with CALCOM_API_URL=http://127.0.0.1:{args.port}/v2")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
