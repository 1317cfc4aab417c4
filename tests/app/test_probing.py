"""Probing via person tags (THREAT_MODEL.md R1): the public log offers no equality oracle.

The attack: knowing a target's name and postcode, a prober signs AS the target
with an address of their own, confirms, downloads the receipt proof and reads
the person tag in their own leaf, which is the target's tag; then looks for it
elsewhere in the log. Online signatures with an email tag now publish no person
tag, so on an email petition there is nothing to look for.
"""

import json

import pytest
from helpers import Signer, make_petition, receipt_from

from crypto import merkle
from crypto.audit import verify_bundle, verify_receipt_proof
from crypto.errors import InvalidBundle
from crypto.leaves import SignatureLeaf, WithdrawalLeaf, parse_leaf
from crypto.treehead import TreeHead, format_minute, sign_head
from signing import ledger
from signing.models import Signature

TARGET = Signer(name="Clara Cheung", postcode="S1 2HE", email="clara.cheung@example.org")
PROBER_EMAIL = "anything@prober-catchall.example"
# Fields every signature leaf of a petition may share: not identities.
SHARED_FIELDS = {"channel", "day", "type", "v"}


def bundle_leaves(browser, slug="test"):
    bundle = browser.client.get(f"/p/{slug}/audit/bundle").get_data()
    verify_bundle(bundle.splitlines())
    return [line for line in bundle.splitlines() if line.startswith((b'{"channel"', b'{"day"'))]


def strings_in(value):
    """Every string and number in a JSON value, recursively (keys excluded)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif value is not None:
        yield str(value)


def test_probe_as_the_target_on_an_email_petition_finds_nothing(browser, petition, services):
    assert petition.require_email
    for i in range(3):
        browser.sign_and_confirm("test", Signer(name=f"Someone {chr(65 + i)} Else", email=f"s{i}@example.org"))
    browser.sign_and_confirm("test", TARGET)
    for i in range(3, 5):
        browser.sign_and_confirm("test", Signer(name=f"Someone {chr(65 + i)} Else", email=f"s{i}@example.org"))

    # The prober signs as the target with an address they control, and confirms.
    prober = Signer(name=TARGET.name, postcode=TARGET.postcode, email=PROBER_EMAIL)
    code = receipt_from(browser.sign_and_confirm("test", prober))
    document = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/receipt/proof").get_json()
    verify_receipt_proof(document)
    leaves = bundle_leaves(browser)

    # The oracle was real: server-side, both rows carry the same person tag.
    rows = list(Signature.select().order_by(Signature.id))
    target_row, prober_row = rows[3], rows[-1]
    assert bytes(target_row.email_tag) != bytes(prober_row.email_tag)
    assert bytes(target_row.person_tag) == bytes(prober_row.person_tag)
    person_hex = bytes(target_row.person_tag).hex()

    # But the prober's leaf publishes no person tag, and the tag is nowhere public.
    own = document["leaf"]
    parsed = parse_leaf(own.encode())
    assert isinstance(parsed, SignatureLeaf) and parsed.person is None and parsed.email is not None
    assert json.loads(own)["person"] is None
    assert person_hex not in json.dumps(document)
    assert all(person_hex.encode() not in leaf for leaf in leaves)

    # No value of the prober's leaf or proof document appears in any other leaf,
    # except the fields all signatures share; so the target's leaf cannot be
    # told from the other signers' leaves.
    probe_values = set(strings_in(document)) | set(strings_in(json.loads(own)))
    others = [leaf for leaf in leaves if leaf != own.encode()]
    assert len(others) == len(leaves) - 1 == 6
    for leaf in others:
        fields = json.loads(leaf)
        assert fields["person"] is None  # every online signature here has an email tag
        identifying = {k: v for k, v in fields.items() if k not in SHARED_FIELDS}
        assert not set(strings_in(identifying)) & probe_values, leaf
        # Nor as a substring anywhere in what the prober holds.
        for value in strings_in(identifying):
            assert value not in json.dumps(document)


def test_probing_a_paper_signer_on_an_email_petition(browser, petition, services):
    """Closed (was THREAT_MODEL.md R4): superseding a paper signature no longer shows
    in the prober's batch; supersedes are settled all together at close."""
    identity = ledger.canonical_identity(
        services, petition, name=TARGET.name, postcode=TARGET.postcode, email=None, email_optional=True
    )
    assert ledger.add_paper_signatures(services, petition, [identity]).received == 1
    ledger.publish(services, petition, force=True)
    paper_leaf = parse_leaf(bundle_leaves(browser)[0])
    assert paper_leaf.channel == "paper" and paper_leaf.person is not None

    prober = Signer(name=TARGET.name, postcode=TARGET.postcode, email=PROBER_EMAIL)
    code = receipt_from(browser.sign_and_confirm("test", prober))
    document = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/receipt/proof").get_json()
    assert parse_leaf(document["leaf"].encode()).person is None
    assert paper_leaf.person.hex() not in json.dumps(document)
    kinds = [parse_leaf(leaf) for leaf in bundle_leaves(browser)]
    assert [type(k) for k in kinds].count(WithdrawalLeaf) == 0
    # At close: one "superseded" withdrawal, among all of them, and one count for the person.
    ledger.close_petition(services, petition)
    kinds = [parse_leaf(leaf) for leaf in bundle_leaves(browser)]
    assert [type(k) for k in kinds].count(WithdrawalLeaf) == 1


def test_email_less_petition_still_publishes_person_tags(browser, services):
    """Residual (THREAT_MODEL.md R1): without email, the person tag is what
    deduplicates online signatures, so it is published and the oracle remains."""
    make_petition(services, "noemail", require_email=False)
    response = browser.sign("noemail", Signer(email=None))
    assert response.status_code == 200
    (leaf,) = bundle_leaves(browser, "noemail")
    parsed = parse_leaf(leaf)
    assert parsed.channel == "online" and parsed.email is None and parsed.person is not None


def test_paper_leaves_carry_person_tags_and_duplicates_are_refused(browser, petition, services):
    identities = [
        ledger.canonical_identity(services, petition, name=name, postcode="S1 2HE", email=None, email_optional=True)
        for name in ("Clara Cheung", "Bo Li", "CHEUNG clara")
    ]
    result = ledger.add_paper_signatures(services, petition, identities)
    assert result.received == 3  # never which row was a duplicate
    ledger.publish(services, petition, force=True)
    assert ledger.current_count(petition) == 2
    browser.sign_and_confirm("test", Signer(name="Wong Tai Sin", email="wts@example.org"))
    bundle = browser.client.get("/p/test/audit/bundle").get_data()
    lines = bundle.splitlines()
    leaves = [parse_leaf(line) for line in lines if line.startswith(b'{"channel"')]
    assert [(leaf.channel, leaf.person is None, leaf.email is None) for leaf in leaves] == [
        ("paper", False, True),
        ("paper", False, True),
        ("online", True, False),
    ]
    assert verify_bundle(lines).count == 3

    # A lying server appends a second copy of a paper signature and signs a head over it.
    first_leaf = next(i for i, line in enumerate(lines) if line.startswith(b'{"channel"'))
    raw_leaves = lines[first_leaf:] + [lines[first_leaf]]
    head = TreeHead(
        petition="test",
        size=len(raw_leaves),
        root=merkle.root_of(raw_leaves),
        count=len(raw_leaves),
        time=format_minute(services.clock()),
    )
    head_line = json.dumps({"head": head.to_dict(), "signature": sign_head(services.keyring.log_key, head).hex()})
    forged = lines[:first_leaf] + [head_line.encode()] + raw_leaves
    with pytest.raises(InvalidBundle, match=r"leaf 0 \(a paper signature\) shares its person tag with .* leaf 3"):
        verify_bundle(forged)
