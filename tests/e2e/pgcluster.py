"""A throwaway PostgreSQL cluster of the test's own, which the test may stop and start.

The suite's shared server (COUNTERSIGN_TEST_DATABASE_URL) must never be
stopped: an outage test makes its own cluster on a free loopback port, as
``.ci/run`` does, owned by the ``postgres`` user. It needs root and Debian's
PostgreSQL binaries; without them the test is skipped, saying why.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest
from helpers import free_port


def _binaries():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))
    return found[-1] if found else None


class Cluster:
    def __init__(self):
        bindir = _binaries()
        if bindir is None:
            pytest.skip("needs Debian's PostgreSQL (/usr/lib/postgresql/*/bin) for a cluster of its own")
        if os.geteuid() != 0:
            pytest.skip("needs root to run a PostgreSQL cluster of its own as the postgres user")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("needs the postgres user to run a PostgreSQL cluster of its own")
        self.bindir = bindir
        self.port = free_port()
        # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 folders.
        self.datadir = tempfile.mkdtemp(prefix="countersign-pg-")
        os.chown(self.datadir, owner.pw_uid, owner.pw_gid)
        self.log_path = os.path.join(self.datadir, "server.log")
        self._run("initdb", "-D", self.datadir, "-A", "trust", "-U", "countersign", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "countersign", "countersign")
        self.url = f"postgresql://countersign@127.0.0.1:{self.port}/countersign"

    def _run(self, program, *args):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", os.path.join(self.bindir, program), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self):
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.datadir} -c fsync=off"
        self._run("pg_ctl", "-D", self.datadir, "-l", self.log_path, "-w", "-o", options, "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")

    def close(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.datadir, ignore_errors=True)
