"""The in-process SQLite writer lock hands over first come, first served."""

from __future__ import annotations

import threading

from controlplane.database import _FairLock


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = _FairLock()
    assert lock.acquire(1)
    order: list[int] = []
    queued = threading.Semaphore(0)

    def waiter(n: int) -> None:
        queued.release()
        assert lock.acquire(10)
        order.append(n)
        lock.release()

    threads = []
    for n in range(8):
        thread = threading.Thread(target=waiter, args=(n,))
        thread.start()
        queued.acquire()
        # The waiter is queued once it waits on its turn; wait for that, not for time.
        while len(lock._waiters) < n + 1:
            threading.Event().wait(0.001)
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(8))


def test_timeout_leaves_the_queue() -> None:
    lock = _FairLock()
    assert lock.acquire(1)
    assert not lock.acquire(0.05)
    assert not lock._waiters
    lock.release()
    assert lock.acquire(0.05)
