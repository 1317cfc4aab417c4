"""The page cache keys on the parameters a page uses, so random query strings neither miss nor flush it."""

from helpers import make_petition

from signing import db
from signing.models import Petition
from signing.web.pagecache import MAX_ENTRIES


def _retitle(petition, title):
    with db.database.connection_context():
        Petition.update(title=title).where(Petition.id == petition.id).execute()


def test_unknown_parameters_are_ignored_and_cannot_flush_the_cache(make_app, services):
    petition = make_petition(services, "test", title="First title")
    client = make_app(PAGE_CACHE_SECONDS=60).test_client()
    assert "First title" in client.get("/p/test").get_data(as_text=True)
    _retitle(petition, "Second title")

    for buster in range(MAX_ENTRIES + 10):  # enough to flush it if each were its own entry
        page = client.get(f"/p/test?cb={buster}&utm_source=x")
        assert page.status_code == 200 and "First title" in page.get_data(as_text=True)
    assert "First title" in client.get("/p/test").get_data(as_text=True)  # still the cached copy
    # A parameter the page uses is its own page.
    assert "Second title" in client.get("/p/test?before=5").get_data(as_text=True)


def test_the_view_never_sees_undeclared_parameters(make_app, services):
    make_petition(services, "test")
    client = make_app(PAGE_CACHE_SECONDS=0).test_client()
    assert client.get("/p/test?before=x").status_code == 400  # declared: checked
    assert client.get("/p/test?other=x").status_code == 200  # undeclared: not there at all
