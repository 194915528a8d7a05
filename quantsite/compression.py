"""Response compression: Django's GZipMiddleware, but for downloads that are not text."""

from __future__ import annotations

from django.middleware.gzip import GZipMiddleware


class GZipTextMiddleware(GZipMiddleware):
    """Django's ``GZipMiddleware`` (BREACH padding, streaming responses compressed as they
    stream, tiny or already encoded bodies skipped), except for an attachment that is not
    text: an Excel workbook is a zip already, so gzip would spend CPU for nothing and take
    the download's Content-Length away (the browser's progress and size). Pages, JSON and
    CSV downloads are compressed."""

    def process_response(self, request, response):
        attachment = response.get("Content-Disposition", "").startswith("attachment")
        if attachment and not response.get("Content-Type", "").startswith("text/"):
            return response
        return super().process_response(request, response)
