"""Response headers on every response, errors and static files included (DESIGN §9)."""

from urllib.parse import quote

from flask import request
from flask_wtf.csrf import CSRFProtect

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "clipboard-read",
        "clipboard-write",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "interest-cohort",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)

# Characters a path keeps unescaped (RFC 3986 pchar and "/"); the rest is
# percent-encoded, so the header never carries a line break or non-Latin-1 text.
PATH_SAFE = "/:@!$&'()*+,;=-._~"

csrf = CSRFProtect()


def init_app(app):
    csrf.init_app(app)
    hsts = not app.config["DEVELOPMENT"]
    onion = app.config["ONION_LOCATION"].rstrip("/")
    if onion and not onion.startswith(("http://", "https://")):
        raise ValueError("ONION_LOCATION must be a URL such as http://xyz….onion")

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Permissions-Policy"] = PERMISSIONS_POLICY
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if hsts:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if onion and not request.host.endswith(".onion"):
            # Tor Browser offers the same page at the onion address. The path
            # is the client's own (a confirmation token included), sent back
            # only to it; the query string is left out.
            headers["Onion-Location"] = onion + quote(request.path, safe=PATH_SAFE)
        # Anything not explicitly cacheable may hold a form, a receipt or a token.
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return response
