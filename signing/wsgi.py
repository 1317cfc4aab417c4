"""WSGI entry point: ``signing.wsgi:app`` (what ``signing serve`` gives gunicorn).

Configuration comes from the environment and ``instance/config.py`` as for
every other command (see config.py). Building the app opens no database
connection, so gunicorn may preload it in its master and fork workers from it.
"""

from . import create_app

app = create_app()
