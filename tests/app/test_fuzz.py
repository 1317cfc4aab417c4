"""Hostile input at every route and form: never a 500, and nothing stored when refused.

Hypothesis throws random and hostile requests at the app: every rule of
``app.url_map`` with odd path values (NULs, undecodable bytes, surrogates,
huge numbers, traversal), odd methods and query strings, and form bodies
that are huge, empty, binary, odd Unicode, with repeated keys, wrong
content types, broken multipart, and with a valid, a missing, a foreign or
a garbage CSRF token, both anonymously and as a logged-in organiser.

Every answer must be below 500 and carry the security headers; every
request that is refused (4xx), and every request that only reads (GET,
HEAD, OPTIONS), must leave the row count of every table as it was.

Budget: 30 examples per group, no deadline, so the file runs in seconds
(COUNTERSIGN_FUZZ_EXAMPLES raises it).
"""

import os
from urllib.parse import quote_from_bytes

import pytest
from flask import url_for
from helpers import CSRF_RE, make_petition, row_counts
from helpers import ORGANISER_PASSWORD as PASSWORD
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from signing import db
from signing.ledger import accounts

FUZZ = settings(
    # COUNTERSIGN_FUZZ_EXAMPLES=2000 for a deeper run by hand.
    max_examples=int(os.environ.get("COUNTERSIGN_FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
READ_METHODS = {"GET", "HEAD", "OPTIONS"}

HOSTILE = [
    b"",
    b"\x00",
    b"%00",
    b"\x00" * 40,
    "\ufffd".encode(),
    b"\xed\xa0\x80",  # a surrogate, encoded
    b"\xff\xfe\xfd",
    b"\xc0\xaf",  # an overlong "/"
    b"Clara Cheung",
    b"S1 2HE",
    b"clara@example.org",
    b"ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ",
    b"A" * 43,
    b"<script>alert(1)</script>",
    b"' OR '1'='1",
    b"../../../etc/passwd",
    "\u202e\u200d\u2028\ufeff".encode(),
    "\U0001f642".encode() * 500,
    "歐陽靜雯".encode(),
    b"9" * 40,
    b"-1",
    b"1e308",
    b"y",
    b"\r\nSet-Cookie: x=1",
]
texts = st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass"))
huge = st.sampled_from([1024, 63 * 1024, 70 * 1024, 300 * 1024]).map(lambda n: b"x" * n)
# Repeated strategies weigh the draw: mostly small hostile values, sometimes huge ones.
raw_values = st.one_of(st.sampled_from(HOSTILE), texts, st.binary(max_size=40), st.sampled_from(HOSTILE), texts, huge)
methods = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND", "FOO"])
content_types = st.sampled_from(
    ["application/x-www-form-urlencoded"] * 8
    + [
        "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data; boundary=fuzzboundary",
        "multipart/form-data",
        "application/json",
        "text/plain",
        "application/xml",
        None,
    ]
)
csrf_choices = st.sampled_from(["valid", "valid", "valid", "missing", "garbage", "foreign"])
garbage_bodies = st.sampled_from([False, False, False, True])





def encoded(pairs):
    return "&".join(f"{quote_from_bytes(name, safe='')}={quote_from_bytes(value, safe='')}" for name, value in pairs)


def multipart(pairs, boundary="fuzzboundary"):
    parts = []
    for index, (name, value) in enumerate(pairs):
        filename = b'; filename="f.csv"' if index % 2 else b""
        parts.append(
            b"--" + boundary.encode() + b'\r\nContent-Disposition: form-data; name="' + name + b'"' + filename
            + b"\r\n\r\n" + value + b"\r\n"
        )
    return b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"


def body_for(pairs, content_type, garbage):
    if content_type and content_type.startswith("multipart") and not garbage:
        return multipart(pairs)
    if garbage:
        return b"".join(value for _, value in pairs)
    return encoded(pairs).encode("ascii")


def assert_hardened(response):
    assert response.status_code < 500, response.status_code
    headers = response.headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert "Cache-Control" in headers


class Fuzzer:
    """Sends one hostile request and checks the invariants."""

    def __init__(self, app, client, csrf_token, foreign_token):
        self.app, self.client = app, client
        self.tokens = {"valid": csrf_token, "garbage": "x" * 91, "foreign": foreign_token}

    def send(self, method, path, pairs=(), content_type=None, csrf="missing", garbage=False, query=()):
        pairs = list(pairs)
        if csrf in self.tokens:
            pairs.insert(0, (b"csrf_token", self.tokens[csrf].encode()))
        data = body_for(pairs, content_type, garbage) if method not in READ_METHODS or garbage else None
        if query:
            path = path + "?" + encoded(query)
        before = row_counts()
        response = self.client.open(path, method=method, data=data, content_type=content_type)
        response.get_data()  # streamed bodies are read while their context is current
        if currently_in_test_context():
            event(f"{method if method in READ_METHODS | {'POST'} else 'other'} {response.status_code}")
        assert_hardened(response)
        if response.status_code >= 400 or method in READ_METHODS:
            assert row_counts() == before, (method, path, response.status_code)
        return response


def csrf_of(client, url):
    return CSRF_RE.search(client.get(url).get_data(as_text=True)).group(1)


@pytest.fixture
def fuzz(app, services):
    make_petition(services, "test")
    make_petition(services, "open", require_email=False)
    client = app.test_client()
    foreign = csrf_of(app.test_client(), "/p/test/sign")
    return Fuzzer(app, client, csrf_of(client, "/p/test/sign"), foreign)


@pytest.fixture
def organiser_fuzz(app, services, monkeypatch):
    with db.database.connection_context():
        organiser = accounts.add_organiser(services, "alice@campaign.example", PASSWORD, is_operator=True)
    make_petition(services, "ours", organiser=organiser.id, require_email=False)
    client = app.test_client()
    token = csrf_of(client, "/organiser/login")
    login = client.post("/organiser/login", data={"csrf_token": token, "email": organiser.email, "password": PASSWORD})
    assert login.status_code == 302
    foreign = csrf_of(app.test_client(), "/organiser/login")
    return Fuzzer(app, client, csrf_of(client, "/organiser/new"), foreign)


def rules(app, exclude=()):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in exclude]


def hostile_path(app, rule, data):
    """The rule's URL with each path value either a sample that exists or hostile bytes."""
    samples = {"slug": "test", "token": "A" * 43, "size": 1, "leaf_index": 1, "choice": "hide"}
    with app.test_request_context():
        url = url_for(rule.endpoint, **{name: samples.get(name, "style.css") for name in rule.arguments})
    for name in rule.arguments:
        if data.draw(st.booleans()):
            sample = str(samples.get(name, "style.css"))
            url = url.replace("/" + sample, "/" + quote_from_bytes(data.draw(raw_values), safe=""), 1)
    return url


# --- the groups -------------------------------------------------------------------------


PUBLIC_FORMS = {
    "/p/test/sign": [b"name", b"postcode", b"email", b"display_name", b"eligible", b"keep_informed", b"contact_email"],
    "/p/open/sign": [b"name", b"postcode", b"email", b"display_name", b"eligible"],
    "/p/test/receipt": [b"receipt"],
    "/p/open/receipt/proof": [b"receipt"],
    "/p/open/withdraw": [b"receipt", b"confirm"],
    "/p/test/confirm/" + "A" * 43: [],
}


def post_hostile_form(fuzz, data, forms, extra_names):
    """POST one of ``forms`` with random field names and values, body type, CSRF token and garbage."""
    path = data.draw(st.sampled_from(sorted(forms)))
    names = st.sampled_from(forms[path] + extra_names) | st.binary(max_size=10)
    pairs = data.draw(st.lists(st.tuples(names, raw_values), max_size=8))
    fuzz.send(
        "POST",
        path,
        pairs,
        content_type=data.draw(content_types),
        csrf=data.draw(csrf_choices),
        garbage=data.draw(garbage_bodies),
    )


@FUZZ
@given(data=st.data())
def test_public_forms_refuse_hostile_bodies(fuzz, data):
    post_hostile_form(fuzz, data, PUBLIC_FORMS, [b"csrf_token", b"", b"\x00", b"name[]"])


@FUZZ
@given(data=st.data())
def test_every_route_survives_odd_paths_methods_and_queries(fuzz, data):
    rule = data.draw(st.sampled_from(rules(fuzz.app)))
    path = hostile_path(fuzz.app, rule, data)
    query = data.draw(st.lists(st.tuples(st.sampled_from([b"start", b"end", b"index", b"size", b"first",
                                                          b"second", b"before", b"lang"]) | st.binary(max_size=8),
                                         raw_values), max_size=4))
    fuzz.send(data.draw(methods), path, content_type=data.draw(content_types), csrf=data.draw(csrf_choices),
              query=query)


@FUZZ
@given(
    petition=st.binary(max_size=20) | st.sampled_from([b"test", b"open", b"..", b"%00", b"TEST", b"a" * 70]),
    tail=st.lists(st.binary(max_size=12) | st.sampled_from([b"audit", b"proof", b"head", b"bundle", b"..", b""]),
                  max_size=4),
    query=st.lists(st.tuples(st.sampled_from([b"start", b"end", b"index", b"size", b"first", b"second"]),
                             raw_values), max_size=4),
)
def test_audit_and_petition_paths_with_anything_in_them(fuzz, petition, tail, query):
    path = "/p/" + quote_from_bytes(petition, safe="") + "/audit/"
    path += "/".join(quote_from_bytes(part, safe="") for part in tail)
    fuzz.send("GET", path, query=query)
    fuzz.send("GET", "/p/" + quote_from_bytes(petition, safe="/.%"), query=query)


@FUZZ
@given(path=st.sampled_from([
    "/static/../signing/config.py", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2fsigning%2fconfig.py",
    "//", "/p//audit", "/p/%2e%2e/", "/%00", "/p/test/../../organiser/", "/static/%00style.css",
    "/static/style.css%00.py", "/p/test/sign/", "/organiser/../static/style.css", "/p/test;jsessionid=1",
]), method=methods)
def test_traversal_and_odd_paths_serve_nothing_they_should_not(fuzz, path, method):
    response = fuzz.send(method, path)
    assert b"SECRET" not in response.get_data() and b"MASTER_KEY" not in response.get_data()


ORGANISER_FORMS = {
    "/organiser/new": [b"slug", b"title", b"body", b"eligibility", b"opens_on", b"closes_on", b"require_email",
                       b"require_postcode", b"allowed_areas", b"display_names_allowed", b"thresholds",
                       b"contact_public_key"],
    "/organiser/p/ours/edit": [b"slug", b"title", b"body", b"eligibility", b"opens_on", b"closes_on",
                               b"allowed_areas", b"thresholds"],
    "/organiser/p/ours/paper": [b"name", b"postcode", b"email"],
    "/organiser/p/ours/paper/upload": [b"file"],
    "/organiser/p/ours/names/1/hide": [],
    "/organiser/p/ours/shred": [b"confirm_slug"],
    "/organiser/p/ours/close": [],
    "/organiser/p/ours/open": [],
    "/organiser/two-factor/enrol": [b"secret", b"password", b"code"],
    "/organiser/two-factor/disable": [b"password", b"code"],
    "/organiser/login": [b"email", b"password", b"code"],
}


@FUZZ
@given(data=st.data())
def test_organiser_forms_refuse_hostile_bodies(organiser_fuzz, data):
    post_hostile_form(organiser_fuzz, data, ORGANISER_FORMS, [b"csrf_token", b""])


@FUZZ
@given(data=st.data())
def test_organiser_pages_survive_odd_paths_and_queries(organiser_fuzz, data):
    organiser_rules = [rule for rule in rules(organiser_fuzz.app, exclude={"organiser.logout"})
                       if rule.endpoint.startswith("organiser.")]
    rule = data.draw(st.sampled_from(organiser_rules))
    path = hostile_path(organiser_fuzz.app, rule, data).replace("/test", "/ours")
    query = data.draw(st.lists(st.tuples(st.sampled_from([b"before"]) | st.binary(max_size=6), raw_values), max_size=3))
    organiser_fuzz.send(data.draw(st.sampled_from(["GET", "HEAD", "OPTIONS", "DELETE", "PUT"])), path, query=query)


def test_the_fuzzer_reaches_the_forms(fuzz, organiser_fuzz):
    """The harness itself works: a well-formed request with a valid token gets through."""
    signed = fuzz.send("POST", "/p/open/sign", [(b"name", b"Clara Cheung"), (b"postcode", b"S1 2HE"),
                                                (b"eligible", b"y")], "application/x-www-form-urlencoded", "valid")
    assert signed.status_code == 303  # to the receipt (Post/Redirect/Get)
    added = organiser_fuzz.send("POST", "/organiser/p/ours/paper", [(b"name", b"Bo Li"), (b"postcode", b"S2 4SU")],
                                "application/x-www-form-urlencoded", "valid")
    assert added.status_code == 303  # back to an empty form, "received"
