"""Slow-body attackers and a login-page prober, for tests/test_slow_bodies.py and bench/slow_bodies.py.

`slow_body_attack` opens `connections` sockets that each POST to `path` with a
declared Content-Length and trickle the body at `rate` bytes per second, while the
calling thread GETs `probe_path` every 0.25 s and times each answer. Loopback only.
"""

import select
import socket
import statistics
import threading
import time


def _trickle(host, port, path, content_length, rate, stop, outcome):
    """POST `path` and trickle its body until the server answers or `stop` is set; record what happened."""
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as exc:
        outcome.update(status=f"connect failed: {exc}", seconds=0.0)
        return
    try:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {content_length}\r\n\r\n").encode())
        sent = 0
        while not stop.is_set() and sent < content_length:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered (or closed) before the body was complete
            piece = min(rate, content_length - sent)
            sock.sendall(b" " * piece)
            sent += piece
            stop.wait(1.0)
        sock.settimeout(0.5)
        head = sock.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
        outcome.update(status=head or "closed", seconds=time.monotonic() - started, sent=sent)
    except OSError as exc:
        outcome.update(status=f"{type(exc).__name__}", seconds=time.monotonic() - started)
    finally:
        sock.close()


def _probe(host, port, path, timeout):
    """GET `path`; return (seconds, status code or None on timeout/error)."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                head += chunk
            status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    except (OSError, ValueError, IndexError):
        return time.monotonic() - started, None
    return time.monotonic() - started, status


def slow_body_attack(host, port, path, *, connections=12, content_length=1024 * 1024, rate=1024,
                     seconds=15.0, probe_path="/accounts/login/", probe_timeout=10.0):
    """Run the attack for `seconds` while probing; return a summary dict.

    Keys: probes (list of (seconds, status)), max_s, median_s, failed (probes
    without a 200 answer), attackers (each one's final status line and seconds).
    """
    stop = threading.Event()
    outcomes = [{} for _ in range(connections)]
    threads = [threading.Thread(target=_trickle, args=(host, port, path, content_length, rate, stop, o), daemon=True)
               for o in outcomes]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every attacker connected and holding its request
    probes, deadline = [], time.monotonic() + seconds - 1.0
    while time.monotonic() < deadline:
        probes.append(_probe(host, port, probe_path, probe_timeout))
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(10)
    latencies = [s for s, _ in probes]
    return {
        "probes": probes,
        "max_s": max(latencies),
        "median_s": statistics.median(latencies),
        "failed": sum(1 for _, status in probes if status != 200),
        "attackers": outcomes,
    }


def describe(label, summary):
    """Return one line summing up `summary` for a report."""
    statuses = sorted({o.get("status", "?") for o in summary["attackers"]})
    return (f"{label}: {len(summary['probes'])} login probes, median {summary['median_s'] * 1000:.0f} ms, "
            f"max {summary['max_s'] * 1000:.0f} ms, {summary['failed']} failed; attackers ended with {statuses}")
