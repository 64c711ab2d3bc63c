"""Run callables at the same moment from threads with their own database connections."""

import threading


def run_together(*calls, timeout=120):
    """Run each callable in its own thread, all released at once by a barrier.

    Returns their results in order; a call that raised gives its exception, one
    that never finished within `timeout` seconds gives None. Each thread closes its
    database connections, so PostgreSQL sessions do not outlive the test.
    """
    from django.db import connections

    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, call):
        try:
            barrier.wait(30)
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the result under test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
