"""A throwaway PostgreSQL cluster on loopback, started the way .ci/run starts CI's.

Uses Debian's server binaries (/usr/lib/postgresql/*/bin). As root, the
cluster runs as the ``postgres`` user (``runuser``), as in CI. Its data
directory is a temporary folder removed on stop. ``fsync=off``: only bulk
loading gets faster; the benchmarks read from a warm cache either way.
"""

import glob
import os
import shutil
import subprocess
import tempfile

PORT = 54331  # CI uses 54329; developers' scratch clusters 54330


def server_binaries():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return found[-1] if found else None


class Cluster:
    def __init__(self, port=PORT):
        self.bin = server_binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.port = port
        self.data = tempfile.mkdtemp(prefix="countersign-bench-pg.")
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.data, "postgres")

    def _run(self, *args):
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=120)

    def start(self):
        self._run(f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "countersign", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", f"{self.data}/server.log", "-w", "-o", options, "start")
        return self

    def create_database(self, name):
        self._run(f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "countersign", name)
        return f"postgresql://countersign@127.0.0.1:{self.port}/{name}"

    def stop(self):
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.data, ignore_errors=True)
