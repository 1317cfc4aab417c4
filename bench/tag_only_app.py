"""Benchmark only: the floor under ratio 1, a signing POST that is nothing but its tag.

``POST /p/<slug>/sign`` reads the form and computes one person tag at the
default Argon2id cost, holding the same tag slots the application holds,
then answers 303 as a signature does; every other request goes to the
real application (the load generator fetches the form from it). Served by the
same gunicorn with the same configuration, it measures what the server, the
layout and the machine cost a signature before the application does anything:
the most ratio 1 can reach here. Never deployed: it lives in bench/.
"""

import secrets

from crypto.tags import DEFAULT_ARGON2, person_tag
from signing import create_app

application = create_app()
throttle = application.extensions["countersign"].throttle  # the very slots the application's signatures take
TAG_KEY, SALT = secrets.token_bytes(32), secrets.token_bytes(16)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if environ["REQUEST_METHOD"] != "POST" or not path.endswith("/sign"):
        return application(environ, start_response)
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    with throttle.slot():
        person_tag(TAG_KEY, SALT, DEFAULT_ARGON2, body.hex(), "S1 2HE")
    start_response("303 See Other", [("Location", path[: -len("sign")] + "signed"), ("Content-Length", "0")])
    return [b""]
