"""Rate limits: a 429 before any Argon2id work, keyed on a MAC of the address that is never stored."""

from datetime import UTC, datetime, timedelta

import pytest
from helpers import Browser, Signer, row_counts

from signing import ledger
from signing.web import ratelimit

ADDRESS = "198.51.100.23"








def client_at(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def stored_keys(app):
    """Every key the limiter's in-memory storage holds, in all its tables."""
    storage = ratelimit.limiter_of(app).storage
    return set(storage.storage) | set(storage.expirations) | set(getattr(storage, "events", {}))


def test_signing_flood_gets_429_before_any_tag_and_no_address_is_kept(make_app, petition, mailbox, monkeypatch):
    app = make_app(RATE_LIMIT_SIGN="3/minute")
    browser = Browser(client_at(app, ADDRESS), mailbox, app)
    tags_computed = []
    real = ledger.compute_tags
    monkeypatch.setattr(ledger.online, "compute_tags", lambda *args: tags_computed.append(1) or real(*args))
    for i in range(3):
        assert browser.sign("test", Signer(email=f"signer{i}@example.org")).status_code == 200
    assert len(tags_computed) == 3
    before = row_counts()
    refused = browser.sign("test", Signer(email="one.more@example.org"))
    assert refused.status_code == 429
    assert "Please wait a little and try again" in refused.get_data(as_text=True)
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert refused.headers["Content-Security-Policy"] and refused.headers["Cache-Control"] == "no-store"
    assert len(tags_computed) == 3 and row_counts() == before and len(mailbox.deliveries) == 3
    # Even without a CSRF token: the limit is checked first.
    assert browser.client.post("/p/test/sign", data={"name": "x"}).status_code == 429
    # Reading the form is not limited.
    assert browser.client.get("/p/test/sign").status_code == 200

    keys = stored_keys(app)
    assert keys, "the limiter stored nothing"
    for key in keys:
        assert ADDRESS not in key and "198.51" not in key and "127.0.0.1" not in key
    with app.test_request_context(environ_base={"REMOTE_ADDR": ADDRESS}):
        expected = ratelimit.limiter_of(app)._key_func()
    assert len(expected) == ratelimit.KEY_HEX_CHARS and all(expected in key for key in keys)


def test_other_addresses_keep_their_own_budget(make_app, petition, mailbox):
    app = make_app(RATE_LIMIT_SIGN="1/minute")
    first = Browser(client_at(app, "203.0.113.1"), mailbox, app)
    second = Browser(client_at(app, "203.0.113.2"), mailbox, app)
    assert first.sign("test", Signer()).status_code == 200
    assert first.sign("test", Signer()).status_code == 429
    assert second.sign("test", Signer(email="other@example.org")).status_code == 200


@pytest.mark.parametrize(
    "setting, method, path",
    [
        ("RATE_LIMIT_CONFIRM", "GET", "/p/test/confirm/" + "A" * 43),
        ("RATE_LIMIT_CONFIRM", "POST", "/p/test/confirm/" + "A" * 43),
        ("RATE_LIMIT_RECEIPT", "POST", "/p/test/receipt"),
        ("RATE_LIMIT_RECEIPT", "POST", "/p/test/receipt/proof"),
        ("RATE_LIMIT_WITHDRAW", "POST", "/p/test/withdraw"),
        ("RATE_LIMIT_LOGIN", "POST", "/organiser/login"),
    ],
)
def test_each_limited_endpoint_answers_429(make_app, petition, setting, method, path):
    client = make_app(**{setting: "2/minute"}).test_client()
    statuses = [client.open(path, method=method, data={"receipt": "x"}).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429


def test_proxy_addresses_count_only_behind_a_configured_proxy(make_app, petition):
    direct = make_app(RATE_LIMIT_RECEIPT="1/minute").test_client()
    assert direct.post("/p/test/receipt", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 400
    # Without PROXY_COUNT the header is anyone's to write, so it changes nothing.
    assert direct.post("/p/test/receipt", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 429
    proxied = make_app(RATE_LIMIT_RECEIPT="1/minute", PROXY_COUNT=1).test_client()
    assert proxied.post("/p/test/receipt", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 400
    assert proxied.post("/p/test/receipt", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 400
    assert proxied.post("/p/test/receipt", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 429


def test_limits_can_be_turned_off(make_app, petition):
    client = make_app(RATE_LIMITS_ENABLED=False, RATE_LIMIT_RECEIPT="1/minute").test_client()
    assert {client.post("/p/test/receipt").status_code for _ in range(3)} == {400}


def test_address_key_changes_every_day_and_never_holds_the_address():
    now = [datetime(2026, 11, 29, 23, 59, tzinfo=UTC)]
    keys = ratelimit.AddressKeys(clock=lambda: now[0])
    today = keys(ADDRESS)
    assert keys(ADDRESS) == today and keys("198.51.100.24") != today
    assert ADDRESS not in repr(keys) and ADDRESS not in repr(vars(keys))
    now[0] += timedelta(minutes=2)
    assert keys(ADDRESS) != today


def test_ipv6_clients_count_by_their_64():
    keys = ratelimit.AddressKeys()
    assert keys("2001:db8:1:2::1") == keys("2001:db8:1:2:ffff::9")
    assert keys("2001:db8:1:3::1") != keys("2001:db8:1:2::1")
    assert keys("::ffff:198.51.100.23") == keys(ADDRESS)
    assert ratelimit.client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert keys(None) == keys("")
