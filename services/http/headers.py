"""Response headers every packloop HTTP service sends, whatever the route.

The planner serves HTML reports whose text comes partly from the scenario a client sent
(names of hubs, villages, scenarios). They are escaped when written; the headers are the
second line: a browser may not guess another content type (``nosniff``), an HTML page may
run no script and load nothing from elsewhere (its styles and charts are inline), and no
other site may frame it. The interactive API pages (``/docs``, ``/redoc``) load their
scripts from a CDN and are left without the policy.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: what a packloop HTML page needs: inline styles, inline SVG charts, data: images
HTML_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
DOC_PATHS = ("/docs", "/redoc")


def install_security_headers(app: FastAPI) -> None:
    """Wrap the app's whole middleware stack, Starlette's server-error handler included: a
    middleware added the usual way sits inside that handler, and an unhandled exception's
    plain-text 500 went out without the headers."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]


class SecurityHeaders:
    """Pure ASGI, so streamed responses get the headers too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                html = headers.get("content-type", "").startswith("text/html")
                if html and not scope["path"].startswith(DOC_PATHS):
                    headers.setdefault("Content-Security-Policy", HTML_POLICY)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
