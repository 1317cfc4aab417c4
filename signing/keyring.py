"""The instance's keys, loaded once at start-up from files outside the database."""

from dataclasses import dataclass
from pathlib import Path

from crypto import keys
from crypto.errors import InvalidKey, KeyFileError
from crypto.treehead import key_id


@dataclass(frozen=True, repr=False)
class Keyring:
    master_key: bytes
    log_key: keys.Ed25519PrivateKey

    def __repr__(self):
        # Never let a traceback or a debugger print the key bytes.
        return f"Keyring(log key {self.log_key_id})"

    @property
    def log_public_key(self) -> bytes:
        return keys.log_public_key_bytes(self.log_key)

    @property
    def log_key_id(self) -> str:
        return key_id(self.log_public_key)

    def petition_subkey(self, petition, purpose: str) -> bytes:
        """The petition's key for one purpose; raises InvalidKey once shredded or on a wrong master key."""
        if petition.wrapped_key is None:
            raise InvalidKey(f"petition {petition.slug} has been shredded: its key no longer exists")
        petition_key = keys.unwrap_petition_key(self.master_key, bytes(petition.wrapped_key), petition.slug)
        return keys.derive_subkey(petition_key, purpose)

    def wrap_new_petition_key(self, slug: str) -> bytes:
        return keys.wrap_petition_key(self.master_key, keys.new_petition_key(), slug)


def create_missing(master_key_file, log_key_file):
    """Create whichever key file does not exist yet; return the names created."""
    created = []
    master_path, log_path = Path(master_key_file), Path(log_key_file)
    for path in (master_path, log_path):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not master_path.exists():
        keys.create_master_key_file(master_path)
        created.append(str(master_path))
    if not log_path.exists():
        keys.create_log_key_file(log_path)
        created.append(str(log_path))
    return created


def pending_master_key_file(master_key_file) -> Path:
    """Where the next master key waits while ``rotate_master_key`` runs."""
    path = Path(master_key_file)
    return path.with_name(path.name + ".new")


def load(master_key_file, log_key_file) -> Keyring:
    if pending_master_key_file(master_key_file).exists():
        raise InvalidKey(
            f"a master key rotation was interrupted ({pending_master_key_file(master_key_file)} exists); "
            "run `signing rotate-master-key` again to finish it"
        )
    return Keyring(keys.load_master_key(master_key_file), keys.load_log_key(log_key_file))


def rotate_master_key(master_key_file, rewrap_stored_keys):
    """Replace the master key: a new one is made, ``rewrap_stored_keys(old, new)`` moves every
    stored key under it (one transaction), then the new key is written over the old file.

    Safe to run again after a crash at any point: the new key waits in
    ``master.key.new`` until the end, and re-wrapping skips what the new key
    opens already (so it does not need the old key once everything moved).
    """
    path, pending = Path(master_key_file), pending_master_key_file(master_key_file)
    new = keys.load_master_key(pending) if pending.exists() else keys.create_master_key_file(pending)
    try:
        old = keys.load_master_key(path)
    except KeyFileError:
        old = None  # overwritten half-way by an interrupted run: everything is under the new key already
    rewrap_stored_keys(old, new)
    keys.overwrite_key_file(path, new)
    pending.unlink()

