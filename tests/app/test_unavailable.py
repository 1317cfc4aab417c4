"""A database that cannot be reached, or keys that do not open: a 503 with Retry-After, never a 500."""

import logging

from helpers import CSRF_RE, free_port, row_counts

from crypto import keys

UNREACHABLE = f"postgresql://countersign@127.0.0.1:{free_port()}/countersign"


def test_unreachable_database_is_a_503_with_retry_after(make_app):
    client = make_app(DATABASE_URL=UNREACHABLE).test_client()
    page = client.get("/p/test/sign")
    assert page.status_code == 503
    assert int(page.headers["Retry-After"]) > 0
    assert "Temporarily unavailable" in page.get_data(as_text=True)

    chinese = client.get("/p/test/sign", headers={"Accept-Language": "zh-HK"})
    assert chinese.status_code == 503 and chinese.headers["Retry-After"]
    assert "暫時未能使用" in chinese.get_data(as_text=True)


def test_unreachable_database_answers_the_audit_api_in_json(make_app):
    answer = make_app(DATABASE_URL=UNREACHABLE).test_client().get("/p/test/audit/heads")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert answer.get_json() == {"error": "database unavailable"}


def test_another_instances_master_key_is_a_503_that_tells_the_operator(make_app, petition, tmp_path, caplog):
    """`signing serve` refuses this key; a server started some other way must still not answer 500."""
    foreign = tmp_path / "foreign-master.key"
    keys.create_master_key_file(foreign)
    client = make_app(MASTER_KEY_FILE=str(foreign)).test_client()
    token = CSRF_RE.search(client.get("/p/test/sign").get_data(as_text=True)).group(1)
    before = row_counts()
    with caplog.at_level(logging.ERROR, logger="countersign"):
        signer = {"name": "Wong Siu Ming", "postcode": "S1 2HE", "email": "wsm@example.org", "eligible": "y"}
        answer = client.post("/p/test/sign", data={"csrf_token": token, **signer})
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert "Temporarily unavailable" in answer.get_data(as_text=True)
    assert row_counts() == before
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "master.key" in logged and "public.sign" in logged
    assert "Wong" not in logged
