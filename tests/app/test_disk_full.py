"""A full disk: signers get a 503 with Retry-After and nothing is kept; `signing publish` says so in one line.

The instance lives on a small tmpfs of its own (needs root to mount one;
skipped otherwise), which the test fills with a file until the kernel says
ENOSPC, then empties again.
"""

import os
import subprocess
import sys

import pytest
from helpers import CHEAP_ARGON2, GENEROUS_RATE_LIMITS, Browser, Signer

from signing import create_app, db
from signing.models import Inbox

SIGNING = [sys.executable, "-c", "from signing.cli import main; main()"]
SLUG = "full"


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs to fill")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mountpoint)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mountpoint
    finally:
        if not db.database.is_closed():
            db.database.close()
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def fill(folder):
    """Write a file until the filesystem is full; return it (delete it to make room again)."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:
        return filler
    finally:
        os.close(descriptor)


def signing(instance, *args):
    env = {name: value for name, value in os.environ.items() if not name.startswith("SIGNING_")}
    # A batch of any size, so `publish` has something to write to the full disk.
    env.update(SIGNING_INSTANCE_PATH=str(instance), SIGNING_PUBLIC_URL="https://petitions.example.org")
    env.update(SIGNING_MIN_BATCH="1")
    env.update({f"SIGNING_{name}": str(value) for name, value in CHEAP_ARGON2.items()})
    return subprocess.run([*SIGNING, *args], env=env, capture_output=True, text=True, timeout=60)


def test_full_disk_is_a_503_for_signers_and_one_line_for_the_operator(small_disk, monkeypatch):
    monkeypatch.delenv("SIGNING_DATABASE_URL", raising=False)  # the SQLite file on the small disk, always
    instance = small_disk / "instance"
    assert signing(instance, "init").returncode == 0
    created = signing(instance, "petition", "create", SLUG, "--no-email", "--title", "Full", "--body", "Count us.")
    assert created.returncode == 0, created.stderr
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "PUBLISH_INTERVAL_SECONDS": 3600,
            "PAGE_CACHE_SECONDS": 0,
            "DEVELOPMENT": True,
            **CHEAP_ARGON2,
            **GENEROUS_RATE_LIMITS,
        }
    )
    browser = Browser(app.test_client(), mailbox=None)
    for name in ("Ann Waiting", "Bob Waiting", "Cy Waiting"):
        assert browser.sign(SLUG, Signer(name=name, email=None)).status_code == 200

    filler = fill(small_disk)
    refused = browser.sign(SLUG, Signer(name="Dee Refused", email=None))
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
    assert "Temporarily unavailable" in refused.get_data(as_text=True)

    published = signing(instance, "publish", "--now")
    assert published.returncode != 0
    assert published.stderr.strip().splitlines() == ["signing: database: database or disk is full"]

    filler.unlink()
    with db.database.connection_context():
        assert Inbox.select().count() == 3  # the refused signer left nothing
    assert browser.sign(SLUG, Signer(name="Dee Refused", email=None)).status_code == 200
    published = signing(instance, "publish", "--now")
    assert published.returncode == 0, published.stderr
    assert f"{SLUG}: log size 4, count 4" in published.stdout
