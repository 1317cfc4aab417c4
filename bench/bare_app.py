"""Benchmark only: the real application plus a bare Flask endpoint, in one WSGI app.

Served by the same gunicorn, with the same configuration and workers, so a
read storm on ``/bare`` and on the petition page differ only in what the
page itself costs. Never deployed: it lives in bench/, not in signing/.
"""

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from signing import create_app

bare = Flask("bare")


@bare.get("/")
def hello():
    return "ok"


app = DispatcherMiddleware(create_app(), {"/bare": bare})
