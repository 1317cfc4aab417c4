"""A witness policy: which witnesses an auditor trusts, and how many must cosign.

A policy file has one statement per line (blank lines and "#" comments ignored)::

    log <vkey>        the log's verifier key (optional: else taken from --vkey or the file checked)
    witness <vkey>    a witness's cosignature/v1 verifier key (type 4); repeat
    quorum <N>        at least N of those witnesses must have cosigned (default: all of them)

A checkpoint meets the policy when the log's signature verifies and at least
``quorum`` of the listed witnesses' cosignatures on it verify. A split view
then needs that many witnesses to collude: each cosigns only checkpoints
consistent with the last one it saw for the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.errors import InvalidBundle, InvalidSignature
from crypto.note import ALG_COSIGNATURE_V1, Checkpoint, Verifier, open_checkpoint, split_note, verify_cosignatures


@dataclass(frozen=True)
class Policy:
    witnesses: tuple[Verifier, ...] = ()
    quorum: int = 0
    log: Verifier | None = None

    def __post_init__(self) -> None:
        if any(w.alg != ALG_COSIGNATURE_V1 for w in self.witnesses):
            raise InvalidBundle("a policy's witness keys are cosignature/v1 keys (type 4)")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise InvalidBundle(f"quorum {self.quorum} is not between 0 and the {len(self.witnesses)} witnesses")


def parse_policy(text: str) -> Policy:
    """Parse a policy file; raises InvalidBundle naming the line."""
    witnesses: list[Verifier] = []
    quorum = None
    log = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, _, value = line.partition(" ")
        value = value.strip()
        try:
            if keyword == "witness":
                witnesses.append(Verifier.from_vkey(value))
            elif keyword == "log":
                log = Verifier.from_vkey(value)
            elif keyword == "quorum" and value.isdigit():
                quorum = int(value)
            else:
                raise InvalidBundle('want "log <vkey>", "witness <vkey>" or "quorum <N>"')
        except InvalidBundle as exc:
            raise InvalidBundle(f"policy line {number}: {exc}") from None
    return Policy(tuple(witnesses), len(witnesses) if quorum is None else quorum, log)


def check_checkpoint(note: str, log: Verifier, policy: Policy) -> tuple[Checkpoint, dict[str, int]]:
    """Verify the log's signature and the policy's quorum of cosignatures.

    Returns the checkpoint and {witness name: cosignature time} for the
    policy's witnesses that cosigned. Raises InvalidSignature when the quorum
    is not met (or a known key's signature fails), InvalidBundle if malformed.
    """
    checkpoint, signatures = open_checkpoint(note, log)
    text, _ = split_note(note)
    confirmed = verify_cosignatures(text, signatures, list(policy.witnesses))
    if len(confirmed) < policy.quorum:
        raise InvalidSignature(
            f"{len(confirmed)} of the policy's {len(policy.witnesses)} witnesses cosigned the checkpoint "
            f"of size {checkpoint.size}; the policy asks for {policy.quorum}"
        )
    return checkpoint, confirmed
