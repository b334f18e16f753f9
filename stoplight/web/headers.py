"""Headers on every answer of the web app: what the browser may load, frame, send and keep.

The pages are server-rendered with one stylesheet inline and no script, so the policy allows
that stylesheet (by a nonce drawn per answer) and nothing else: text from repositories that
ever slipped past escaping still could not run, load or post anywhere. Forms post to this
site, and setup's manifest form to GitHub. Nothing is cached unless a route says so: pages
and their JSON hold repository data for one signed-in person.
"""

from __future__ import annotations

import secrets

from flask import Flask, g
from werkzeug.wrappers import Response

from stoplight.settings import Settings


def install(app: Flask, settings: Settings) -> None:
    form_targets = f"'self' {settings.github_web_url}"

    @app.context_processor
    def _nonce() -> dict[str, object]:
        return {"csp_nonce": style_nonce}

    @app.after_request
    def _secure(response: Response) -> Response:
        policy = [
            "default-src 'none'",
            "img-src 'self' data:",
            f"form-action {form_targets}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
        nonce = g.pop("style_nonce", None)
        if nonce is not None:
            policy.insert(1, f"style-src 'nonce-{nonce}'")
        response.headers["Content-Security-Policy"] = "; ".join(policy)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"  # for browsers before frame-ancestors
        response.headers["Referrer-Policy"] = "no-referrer"
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def style_nonce() -> str:
    """The nonce of this answer's inline stylesheet, drawn the first time a page asks."""
    if "style_nonce" not in g:
        g.style_nonce = secrets.token_urlsafe(16)
    nonce: str = g.style_nonce
    return nonce
