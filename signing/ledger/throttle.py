"""A bound on Argon2id computations running at once in one process (DESIGN §11).

Every tag costs tens of milliseconds of a core and ARGON2_MEMORY_KIB of
memory (19 MiB at the default), by design. Without a bound, a flood of
signing requests on a threaded server would start as many hashes as it has
threads, each holding its own Argon2id memory, until the process runs out.
With it, at most ``slots`` tags are in progress at once in this process;
a request that finds every slot taken waits up to ``wait_seconds`` for one,
then gets ``TagsBusy``, which the web answers with a 503 and Retry-After
(errors.py) before anything is stored.

Slots are handed over first come, first served: a release gives the slot to
the longest waiter rather than to whoever asks next. So a paper import,
whose thread pool asks for a slot per row and waits as long as it takes,
interleaves with signers instead of starving them.
"""

import threading
from collections import deque
from contextlib import contextmanager

from .errors import TagsBusy

# What a 503 tells the client to wait before trying again.
BUSY_RETRY_AFTER_SECONDS = 5


class TagThrottle:
    def __init__(self, slots, wait_seconds):
        if slots < 1:
            raise ValueError("TAG_CONCURRENCY must be at least 1")
        if wait_seconds < 0:
            raise ValueError("TAG_WAIT_SECONDS must not be negative")
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._free = slots
        self._waiters = deque()

    def __repr__(self):
        return f"TagThrottle(slots={self.slots}, wait_seconds={self.wait_seconds})"

    @property
    def in_use(self):
        with self._lock:
            return self.slots - self._free

    @contextmanager
    def slot(self, patient=False):
        """Hold one slot for the block; ``patient`` waits as long as it takes (paper imports)."""
        self.acquire(None if patient else self.wait_seconds)
        try:
            yield
        finally:
            self.release()

    def acquire(self, timeout):
        """Take a slot within ``timeout`` seconds (None: no limit), or raise TagsBusy."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            handed = threading.Lock()
            handed.acquire()
            self._waiters.append(handed)
        if timeout is None:
            got = handed.acquire()
        elif timeout <= 0:
            got = handed.acquire(blocking=False)
        else:
            got = handed.acquire(timeout=timeout)
        if got:
            return
        with self._lock:
            try:
                self._waiters.remove(handed)
            except ValueError:
                # A release handed us the slot just as the wait ran out: it is ours.
                return
        raise TagsBusy()

    def release(self):
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()  # the slot passes straight to the longest waiter
            else:
                self._free += 1
