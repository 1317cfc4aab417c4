"""A few seconds' cache of the public petition pages, in each worker (DESIGN §9, §11).

When a petition goes viral, most requests are people reloading its page to
watch the count (the UK Parliament's 2019 record was lost to reads, not to
signing). Those pages carry no form and set no cookie, and already tell every
browser and proxy they may be reused for 10 seconds (``Cache-Control: public,
max-age=10``). This cache does the same inside each worker process for
``PAGE_CACHE_SECONDS`` (0 turns it off): within that time a page is served
from memory without touching the database or the template engine, so a read
storm costs each worker one render per page and language every few seconds.

Only successful responses that say ``Cache-Control: public`` and set no cookie
are kept, keyed by endpoint, path, language, and only the query parameters
the page declares (``cached(params=...)``): the view is handed those alone,
so any other parameter (``?cb=<random>``) is ignored, cannot miss the cache
and cannot flush it. The cache
holds at most MAX_ENTRIES pages (least recently used dropped first), so odd
query strings cannot grow it without bound. Being per process, it needs no
invalidation protocol: every page is at most PAGE_CACHE_SECONDS older than
the database, less than the max-age promised to caches anyway.
"""

import threading
import time
from collections import OrderedDict
from functools import partial, wraps

from flask import current_app, make_response, request
from flask_babel import get_locale
from werkzeug.datastructures import ImmutableMultiDict

MAX_ENTRIES = 512
_EXTENSION = "countersign.pagecache"


class PageCache:
    def __init__(self, max_entries=MAX_ENTRIES, clock=time.monotonic):
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key, value, seconds):
        with self._lock:
            self._entries[key] = (self._clock() + seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()


def page_cache(app):
    return app.extensions.setdefault(_EXTENSION, PageCache())


def cached(view=None, *, params=()):
    """Serve ``view``'s public GET responses from the per-process cache for a few seconds.

    ``params`` names the query parameters the page uses; the view sees no other.
    """
    if view is None:
        return partial(cached, params=params)

    @wraps(view)
    def wrapper(*args, **kwargs):
        used = tuple((name, value) for name, value in request.args.items(multi=True) if name in params)
        # The same page whatever else is in the query, with the cache on or off.
        request.args = ImmutableMultiDict(used)
        seconds = current_app.config.get("PAGE_CACHE_SECONDS", 0)
        if seconds <= 0 or request.method != "GET":
            return _vary(make_response(view(*args, **kwargs)))
        cache = page_cache(current_app)
        key = (request.endpoint, request.path, used, str(get_locale()))
        hit = cache.get(key)
        if hit is not None:
            status, headers, body = hit
            return current_app.response_class(body, status=status, headers=headers)
        response = _vary(make_response(view(*args, **kwargs)))
        if (
            response.status_code == 200
            and not response.is_streamed
            and "Set-Cookie" not in response.headers
            and "public" in response.headers.get("Cache-Control", "")
        ):
            cache.put(key, (response.status_code, list(response.headers.items()), response.get_data()), seconds)
        return response

    return wrapper


def _vary(response):
    # The language comes from the "lang" cookie or Accept-Language: a shared
    # cache must keep one copy per language.
    response.vary.update(("Accept-Language", "Cookie"))
    return response
