"""Requests whose uploaded files stay in memory and never touch the disk.

Werkzeug spools uploads over 500 KB to a temporary file; a CSV of paper
signatures holds names, so it must exist only in memory, for as long as
the import runs. Only the upload endpoint may send more than the
application's small default request size.
"""

import io

from flask import Request, current_app

UPLOAD_ENDPOINTS = frozenset({"organiser.paper_upload"})


class InMemoryRequest(Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()

    @property
    def max_content_length(self):
        if self.endpoint in UPLOAD_ENDPOINTS and current_app:
            return current_app.config["MAX_UPLOAD_BYTES"]
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value):
        Request.max_content_length.fset(self, value)
