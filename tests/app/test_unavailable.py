"""A database that cannot be reached: a 503 with Retry-After in both languages, never a 500."""

from helpers import free_port

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
