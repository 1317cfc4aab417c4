"""Each petition's log as C2SP checkpoints (crypto/note.py), and the witnesses asked to cosign them.

A petition's log is named ``<origin prefix>/<slug>``; its checkpoints are
signed by the instance's log key under that name, so its verifier key
("vkey") differs per petition though the key is one. A checkpoint is signed
when served (Ed25519 is deterministic: the same head gives the same bytes),
followed by the cosignature lines witnesses returned for that size.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from crypto.errors import CryptoError
from crypto.note import ALG_COSIGNATURE_V1, Checkpoint, Verifier, log_verifier, sign_checkpoint

from ..models import Cosignature

DEFAULT_ORIGIN_PREFIX = "countersign.invalid"


@dataclass(frozen=True)
class Witness:
    """One configured witness: its cosigning key, where to submit, and the name the public sees."""

    verifier: Verifier
    url: str  # submission prefix; add-checkpoint is POSTed to url + "/add-checkpoint"
    display_name: str

    @property
    def name(self):
        return self.verifier.name


def origin_prefix(config):
    """LOG_ORIGIN, or PUBLIC_URL without its scheme, or DEFAULT_ORIGIN_PREFIX."""
    if config.get("LOG_ORIGIN"):
        return config["LOG_ORIGIN"].strip().rstrip("/")
    public = urlsplit(config.get("PUBLIC_URL") or "")
    if public.netloc:
        return (public.netloc + public.path).rstrip("/")
    return DEFAULT_ORIGIN_PREFIX


def parse_witnesses(text):
    """The WITNESSES setting: one "<vkey> <url> <display name>" per line. Raises ValueError naming the line."""
    witnesses = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) != 3:
            raise ValueError(f"WITNESSES line {number}: want <vkey> <submission URL> <name>")
        vkey, url, display_name = parts
        try:
            verifier = Verifier.from_vkey(vkey)
        except CryptoError as exc:
            raise ValueError(f"WITNESSES line {number}: {exc}") from None
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise ValueError(f"WITNESSES line {number}: not a cosignature/v1 (type 4) key")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"WITNESSES line {number}: the submission URL must be http(s)")
        witnesses.append(Witness(verifier, url.rstrip("/"), display_name.strip()))
    if len({w.name for w in witnesses}) != len(witnesses):
        raise ValueError("WITNESSES: two witnesses share a key name")
    return tuple(witnesses)


def origin(services, slug):
    return f"{services.log_origin}/{slug}"


def verifier(services, slug):
    """The verifier key of one petition's checkpoints."""
    return log_verifier(origin(services, slug), services.keyring.log_public_key)


def checkpoint_of(services, slug, head):
    """The checkpoint of a stored head row."""
    return Checkpoint(origin(services, slug), head.size, bytes(head.root))


def signed_checkpoint(services, slug, head):
    """The checkpoint note signed by the log key, without cosignatures."""
    return sign_checkpoint(services.keyring.log_key, checkpoint_of(services, slug, head))


def cosignatures(petition_id, size):
    """The stored cosignature rows for one size, in witness order."""
    return list(
        Cosignature.select()
        .where((Cosignature.petition == petition_id) & (Cosignature.size == size))
        .order_by(Cosignature.witness)
    )


def cosigned_checkpoint(services, petition, head):
    """The checkpoint with every stored cosignature line for its size."""
    lines = "".join(row.line for row in cosignatures(petition.id, head.size))
    return signed_checkpoint(services, petition.slug, head) + lines
