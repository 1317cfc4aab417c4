"""Production serving: how many workers, which allocator settings, and the gunicorn command.

Used by ``signing serve`` (which checks keys and schema, then replaces itself
with gunicorn) and by ``signing/gunicorn_conf.py``.

Workers. gunicorn's usual advice, 2 × cores + 1, is for workers that mostly
wait on the network or a database. Here almost all of a signing request is
Argon2id, pure CPU: a worker per core already keeps every core busy, and
more workers only slice the same cores finer, so each signature takes longer,
and each extra hash in flight holds its own Argon2id memory (19 MiB at the
default). One worker more than the cores fills the gaps while a worker waits
for PostgreSQL or the client, without oversubscribing the cores enough to
matter. Override with ``--workers`` or ``WEB_CONCURRENCY``.

Argon2id in flight. The whole server computes at most one tag per core at
once, whichever workers compute them (``ledger.throttle.HostSlots``, lock
files in a folder of the server's own from ``new_tag_slots_dir``). Letting
every thread of every worker hash at once put six 19 MiB hashes on two
cores, which evict each other from the caches: measured here, 27 CPU ms per
signature against 23-24 (BENCHMARKS.md). A bound per worker (one tag each)
did about as well for signing, but left a core idle whenever one worker held most
of the keep-alive connections, or ran a paper import, while the others had
nothing to hash.

The glibc trap. glibc serves a large ``malloc`` with a fresh ``mmap`` and
gives it back with ``munmap`` on ``free``, unless the request is under its
mmap threshold. The threshold starts at 128 KiB and rises to the size of
the largest chunk freed so far, but never above 32 MiB. Argon2id allocates
its whole memory cost for every hash, so with a cost above 32 MiB every tag
maps, page-faults in and unmaps all of it again: measured here about 1.5×
slower, ~10,000 page faults per tag at 40 MiB (see BENCHMARKS.md). Setting the
threshold by hand stops that, but it also turns off glibc's matching rise of
the trim threshold, so the freed memory at the top of the heap would be
handed back (and faulted in again) on every tag: both must be set. ``serve``
sets them from the largest Argon2id memory cost it may have to compute
(the configured one, and every open petition's) unless the environment
already has them. MALLOC_ARENA_MAX caps per-thread arenas (gthread workers),
which otherwise each keep their own high-water mark of Argon2id buffers.
"""

import os
import shutil
import sys
import tempfile

MIB = 1024 * 1024
GLIBC_MMAP_THRESHOLD_MAX_BYTES = 32 * MIB
MALLOC_ARENA_MAX = 2
WSGI_APP = "signing.wsgi:app"
GUNICORN_CONFIG = "python:signing.gunicorn_conf"
DEFAULT_BIND = "127.0.0.1:8000"
# Memory-backed, so a worker never waits on a disk to take a lock or say it lives.
TMPFS = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108
TAG_SLOTS_PREFIX = "countersign-tag-slots-"


def cpu_count():
    """Cores this process may run on (respects taskset/cgroup CPU sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(cores=None):
    """cores + 1 (see the module docstring for why not 2 × cores + 1)."""
    return (cores or cpu_count()) + 1


def new_tag_slots_dir(parent=TMPFS):
    """A fresh folder for this server's Argon2id lock files, on tmpfs where there is one.

    Named after this process (gunicorn's master), so that a later server can
    tell the folders of servers that died without ``on_exit`` (SIGKILL, the
    OOM killer) and clear them before making its own.
    """
    parent = parent or tempfile.gettempdir()
    for name in os.listdir(parent):
        owner = _tag_slots_owner(name)
        if owner is not None and not _process_exists(owner):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{TAG_SLOTS_PREFIX}{os.getpid()}-", dir=parent)


def _tag_slots_owner(name):
    """The pid in a ``new_tag_slots_dir`` folder's name, or None for any other name."""
    if not name.startswith(TAG_SLOTS_PREFIX):
        return None
    pid, dash, _random = name[len(TAG_SLOTS_PREFIX) :].partition("-")
    return int(pid) if dash and pid.isdigit() else None


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def remove_tag_slots_dir(path):
    """Remove a folder ``new_tag_slots_dir`` made; leave any other alone (an operator's own)."""
    if path and os.path.basename(path).startswith(TAG_SLOTS_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def malloc_environment(argon2_memory_kib, environ=None):
    """The MALLOC_* variables to add to ``environ`` for Argon2id at ``argon2_memory_kib``.

    Leaves alone any the operator already set. The mmap threshold is put
    above the Argon2id buffer with room for a second one in flight, and the
    trim threshold at twice that, which is what glibc's own dynamic rule
    would choose if it were not capped at 32 MiB.
    """
    environ = os.environ if environ is None else environ
    buffer_bytes = argon2_memory_kib * 1024
    threshold = max(GLIBC_MMAP_THRESHOLD_MAX_BYTES, buffer_bytes + 4 * MIB)
    wanted = {
        "MALLOC_ARENA_MAX": str(MALLOC_ARENA_MAX),
        "MALLOC_MMAP_THRESHOLD_": str(threshold),
        "MALLOC_TRIM_THRESHOLD_": str(2 * threshold),
    }
    return {name: value for name, value in wanted.items() if name not in environ}


def gunicorn_argv(bind=DEFAULT_BIND):
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, "--bind", bind, WSGI_APP]


def workers_environment(workers):
    """``WEB_CONCURRENCY`` for a chosen worker count: gunicorn_conf.py reads it to share out the Argon2id slots."""
    return {"WEB_CONCURRENCY": str(workers)} if workers else {}


def run_in_gunicorn(app, bind, **settings):
    """Serve ``app``, already built, with gunicorn in this process (``signing witness serve``).

    gunicorn's documented way to run an application object; the settings are
    those of gunicorn_conf.py that matter for a small server: no access log,
    addresses kept out of the error log, no control socket.
    """
    from gunicorn.app.base import BaseApplication

    from . import logging_setup

    class Server(BaseApplication):
        def load_config(self):
            options = {
                "bind": [bind],
                "accesslog": None,
                "errorlog": "-",
                "logconfig_dict": logging_setup.gunicorn_logconfig("INFO"),
                "logger_class": logging_setup.NoAccessLineLogger,
                "forwarded_allow_ips": "",
                "control_socket_disable": True,
                **settings,
            }
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    Server().run()


def exec_gunicorn(argv, extra_environment):
    """Replace this process with gunicorn (so signals reach gunicorn's master directly).

    The allocator reads MALLOC_* once, when the process starts: they must be
    in the environment gunicorn is started with, not set from inside it.
    """
    environ = dict(os.environ)
    environ.update(extra_environment)
    sys.stdout.flush()
    sys.stderr.flush()
    # Our own interpreter with fixed arguments (gunicorn_argv); no shell involved.
    os.execve(argv[0], argv, environ)  # noqa: S606  # nosec B606
