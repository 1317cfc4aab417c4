"""gunicorn settings for ``signing serve`` (``--config python:signing.gunicorn_conf``).

Meant to run behind a TLS-terminating reverse proxy (README, "Production"),
listening on loopback or a private interface. Anything here can be
overridden on gunicorn's command line or in ``GUNICORN_CMD_ARGS``.
"""

import logging
import os

from signing import logging_setup, serving

bind = [serving.DEFAULT_BIND]

# Processes, not threads, carry the load (serving.py says why cores + 1).
# Threads give each worker a second request to run while the first waits on
# the database or a slow client; Argon2id releases the GIL, so two hashes in
# one worker run on two cores.
workers = int(os.environ.get("WEB_CONCURRENCY") or serving.default_workers())
worker_class = "gthread"
threads = 2
# The whole server hashes no more at once than the host has cores, whichever
# workers run them (serving.py says why): lock files in a folder of this
# server's own, read by the app, which is loaded after this file.
if not os.environ.get("SIGNING_TAG_SLOTS_DIR"):  # an operator's folder may bound several servers together
    os.environ["SIGNING_TAG_SLOTS_DIR"] = serving.new_tag_slots_dir()
# Load the app once in the master (keys read once, workers fork ready to
# serve and share its code pages). It opens no database connection there.
preload_app = True

# A worker silent for this long is killed and replaced; one tag is ~20 ms.
timeout = 30
# On SIGTERM, requests in flight get this long to finish; new ones are refused.
graceful_timeout = 30
# Keep-alive towards the proxy (nginx `keepalive` in its upstream block).
keepalive = 5
# Replace each worker after a random 20,000-25,000 requests, so no slow
# leak or fragmentation can grow without bound during a long viral peak.
max_requests = 20000
max_requests_jitter = 5000
# The heartbeat file on tmpfs: a worker never blocks on disk to say it lives.
# gunicorn's documented choice; only its heartbeat file goes there, nothing of ours.
worker_tmp_dir = serving.TMPFS

# A petition form is a few hundred bytes; refuse anything absurd early.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# No access log: an access log is a list of who did what when. If one is
# ever switched on (--access-logfile), its format carries no client address
# (%(h)s), user agent, referrer or time, and no path either: a path may hold
# a confirmation token (/confirm/<token>).
accesslog = None
access_log_format = "%(m)s %(s)s %(B)s %(M)sms"
errorlog = "-"
loglevel = "info"
logconfig_dict = logging_setup.gunicorn_logconfig("INFO")
logger_class = logging_setup.NoAccessLineLogger
# Trust no X-Forwarded-* at the gunicorn level; the app's ProxyFix does that
# for exactly SIGNING_PROXY_COUNT proxies.
forwarded_allow_ips = ""
proc_name = "countersign"
# gunicorn >= 25 opens a control socket at one fixed path per user, which two
# instances on a host (or tests) would fight over; signals do the same job.
control_socket_disable = True


def on_exit(server):
    serving.remove_tag_slots_dir(os.environ.get("SIGNING_TAG_SLOTS_DIR"))


def on_starting(server):
    """Warn when Argon2id costs above glibc's mmap cap run without MALLOC_* settings."""
    from signing import config

    memory_kib = config.load()["ARGON2_MEMORY_KIB"]
    if memory_kib * 1024 > serving.GLIBC_MMAP_THRESHOLD_MAX_BYTES and not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        logging.getLogger("countersign").warning(
            "Argon2id memory %d KiB is above glibc's 32 MiB mmap threshold cap and MALLOC_MMAP_THRESHOLD_ "
            "is not set: every tag will map and unmap its memory (much slower). Start with `signing serve`, "
            "which sets it.",
            memory_kib,
        )
