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

Under ``signing serve`` the processes also share one bound for the host
(``HostSlots``): no more hashes at once than cores, whichever workers run
them. More in flight than cores only evict each other from the caches; and a
bound per worker instead would leave cores idle whenever one worker holds
most of the keep-alive connections, or runs a paper import, while the others
have nothing to hash.
"""

import fcntl
import itertools
import os
import threading
from collections import deque
from contextlib import contextmanager, nullcontext

from .errors import TagsBusy

# What a 503 tells the client to wait before trying again.
BUSY_RETRY_AFTER_SECONDS = 5


class HostSlots:
    """At most ``count`` holders at once among every process that uses ``directory``.

    One lock file per slot, held with ``flock`` on a descriptor of its own, so
    two threads of one process exclude each other too, and the kernel frees a
    slot the moment its holder exits, however it exits: a worker killed in
    the middle of a hash takes nothing with it.

    Signers come before paper imports across processes, as the in-process
    queue puts them side by side within one: a signer that has to wait holds
    a shared lock on a queue file while it waits, and an import takes each
    slot only once it can hold that file exclusively, so an import in one
    worker never keeps a signer in another waiting for more than one hash.
    """

    def __init__(self, directory, count):
        if count < 1:
            raise ValueError("a host needs at least one tag slot")
        self.directory = directory
        self.paths = [os.path.join(directory, f"tag-slot-{number}") for number in range(count)]
        self.queue_path = os.path.join(directory, "signers-waiting")
        self._turns = itertools.count()
        for path in (*self.paths, self.queue_path):  # a folder that cannot hold them fails here, not in a request
            os.close(self._open(path))

    def __repr__(self):
        return f"HostSlots({self.directory!r}, {len(self.paths)})"

    @contextmanager
    def held(self, patient=False):
        """Hold one slot for the block; ``patient`` (paper imports) lets waiting signers go first."""
        descriptor = self._take(patient)
        try:
            yield
        finally:
            os.close(descriptor)  # closing the last descriptor of a lock releases it

    def _take(self, patient):
        if patient:
            os.close(self._locked(self.queue_path, fcntl.LOCK_EX))  # waits while any signer waits
        # Callers start at different slots, so they do not all queue on the first.
        start = (os.getpid() + next(self._turns)) % len(self.paths)
        order = self.paths[start:] + self.paths[:start]
        for path in order:
            try:
                return self._locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
        # Every slot is busy: wait on one, sleeping in the kernel (the GIL is released).
        # Each holder lets go within one hash, so this wait is short.
        if patient:
            return self._locked(order[0], fcntl.LOCK_EX)
        waiting = self._locked(self.queue_path, fcntl.LOCK_SH)
        try:
            return self._locked(order[0], fcntl.LOCK_EX)
        finally:
            os.close(waiting)

    def _locked(self, path, operation):
        """A new descriptor of ``path`` holding ``operation``'s lock."""
        descriptor = self._open(path)
        try:
            fcntl.flock(descriptor, operation)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    def _open(self, path):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            # The folder went (a tmpfs cleaner, logind's RemoveIPC): make it again
            # rather than refuse signatures. Holders of the old files may briefly
            # exceed the bound, which only costs speed.
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class TagThrottle:
    def __init__(self, slots, wait_seconds, host=None):
        if slots < 1:
            raise ValueError("TAG_CONCURRENCY must be at least 1")
        if wait_seconds < 0:
            raise ValueError("TAG_WAIT_SECONDS must not be negative")
        self.slots = slots
        self.wait_seconds = wait_seconds
        self.host = host
        self._lock = threading.Lock()
        self._free = slots
        self._waiters = deque()

    def __repr__(self):
        return f"TagThrottle(slots={self.slots}, wait_seconds={self.wait_seconds}, host={self.host!r})"

    @property
    def in_use(self):
        with self._lock:
            return self.slots - self._free

    @contextmanager
    def slot(self, patient=False):
        """Hold one slot for the block; ``patient`` waits as long as it takes (paper imports)."""
        self.acquire(None if patient else self.wait_seconds)
        try:
            with self.host.held(patient) if self.host is not None else nullcontext():
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
