"""Load generator: POST a prepared list of requests to a loopback server; run as its own process.

    python bench/loadgen.py PLAN.pickle OUT.pickle --port 8765 --concurrency 8 [--rate 200]

PLAN is a pickled list of (path, body bytes, headers dict). Each of `concurrency`
threads keeps one HTTP/1.1 keep-alive connection (http.client: far less client
CPU per request than `requests`, which matters when client and server share two
cores) and takes the next request from a shared counter.

- Without --rate (closed loop): every thread sends its next request as soon as the
  previous one answered; this finds the maximum rate.
- With --rate R (open loop): request i is due at start + i/R. Its latency is measured
  from that due time, not from when a thread got round to sending it, so a server
  that falls behind shows up in the percentiles (no coordinated omission).

OUT is a pickled dict: {"results": [(i, status, latency_s, service_s, end_s)], "elapsed": s,
"errors": [str]} with times relative to the start.
"""

import argparse
import http.client
import itertools
import pickle
import threading
import time

MAX_SECONDS = 900  # a hard bound on any one run


def run(plan, host, port, concurrency, rate=None):
    counter = itertools.count()
    results = [None] * len(plan)
    errors = []
    t0 = time.perf_counter() + 0.2  # let every thread connect first
    deadline = t0 + MAX_SECONDS

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            while True:
                i = next(counter)
                if i >= len(plan) or time.perf_counter() > deadline:
                    return
                path, body, headers = plan[i]
                due = t0 + i / rate if rate else None
                now = time.perf_counter()
                if due is not None and due > now:
                    time.sleep(due - now)
                sent = time.perf_counter()
                if due is None:
                    due = sent
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"request {i}: {type(exc).__name__}: {exc}")
                    status = 0
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                end = time.perf_counter()
                results[i] = (i, status, end - due, end - sent, end - t0)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(MAX_SECONDS + 60)
    done = [r for r in results if r is not None]
    first_start = min((r[4] - r[2] for r in done), default=0.0)
    elapsed = max((r[4] for r in done), default=0.0) - max(first_start, 0.0)
    return {"results": done, "elapsed": elapsed, "errors": errors[:20], "missing": len(plan) - len(done)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan")
    parser.add_argument("out")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=None)
    args = parser.parse_args()
    assert args.host in ("127.0.0.1", "localhost", "::1"), "loopback only"
    with open(args.plan, "rb") as f:
        plan = pickle.load(f)
    outcome = run(plan, args.host, args.port, args.concurrency, args.rate)
    with open(args.out, "wb") as f:
        pickle.dump(outcome, f)


if __name__ == "__main__":
    main()
