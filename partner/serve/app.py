"""The web app of ``partner-serve``: one page and its JSON API (Starlette).

- ``GET /``: the page (``static/index.html``, ``serve.js``, ``serve.css``; no external resources, a strict
  Content-Security-Policy).
- ``POST /suggest`` ``{"seeker_post", "draft", "k"?, "sources"?}`` -> ``{"request_id", "draft_sentences", "suggestions",
  "risk", ...}`` (``partner.serve.suggest``).
- ``POST /feedback`` ``{"request_id", "suggestion_id", "decision", "sentence"?}`` -> ``{"logged"}``.
- ``GET /health`` -> what the app runs with.

Errors are JSON, ``{"error": {"code", "message", "field"?}}``, with a 4xx status: 413 for a body over
``max_body_bytes``, 415 for a body that is not ``application/json``, 400 for JSON that is not an object,
422 for a missing, empty, wrong-typed or too-long field. Nothing is stored unless the app has a ``log``
(``partner.serve.feedback.FeedbackLog``); then every shown suggestion and every decision is appended to it.
The app makes no network calls of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
RISK_MESSAGE = ("This post mentions {terms}. Check your platform's crisis resources and protocol before you reply; "
                "if the person may be in danger, follow them first. These suggestions never address this for you.")


@dataclass
class Limits:
    max_body_bytes: int = 32_000   # a request body larger than this is refused unread (413)
    max_seeker_chars: int = 4_000
    max_draft_chars: int = 4_000
    max_k: int = 10
    remembered: int = 2_000        # with a log: suggestions a decision may refer to (oldest forgotten first)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _error(exc: ApiError):
    from starlette.responses import JSONResponse

    body = {"code": exc.code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    return JSONResponse({"error": body}, status_code=exc.status)


async def _json_body(request, limits: Limits) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ApiError(413, "too_large", f"the request body is {declared} bytes; the limit is "
                                         f"{limits.max_body_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise ApiError(413, "too_large", f"the request body is over the limit of {limits.max_body_bytes} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


def _text(data: dict, field: str, limit: int) -> str:
    value = data.get(field)
    if value is None:
        raise ApiError(422, "missing_field", f"{field!r} is required", field)
    if not isinstance(value, str):
        raise ApiError(422, "wrong_type", f"{field!r} must be a string", field)
    if not value.strip():
        raise ApiError(422, "empty_field", f"{field!r} is empty", field)
    if len(value) > limit:
        raise ApiError(422, "too_long", f"{field!r} has {len(value)} characters; the limit is {limit}", field)
    return value.strip()


class _Headers:
    """ASGI middleware: security headers on every response (the page loads nothing from elsewhere)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                            (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(suggester, log=None, limits: Limits | None = None,
               allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")):
    """The Starlette app. ``suggester``: a ``partner.serve.suggest.Suggester`` (or anything with ``suggest(seeker,
    draft, k=) -> Result`` and ``describe()``); ``log``: a ``FeedbackLog``, or None to store nothing.
    ``allowed_hosts``: Host headers answered (others get 400), which keeps other web sites from reaching the app
    through DNS rebinding."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    from rewards.sentence_guard import risk_terms

    limits = limits or Limits()
    model_lock = threading.Lock()  # one suggestion at a time: the models are not safe to run concurrently
    shown: OrderedDict[tuple[str, str], None] = OrderedDict()  # only with a log: ids a decision may name

    def static(name: str, media_type: str):
        async def endpoint(request):
            return FileResponse(STATIC / name, media_type=media_type)
        return endpoint

    async def no_icon(request):  # browsers ask for one; answering 204 keeps their console free of 404s
        return Response(status_code=204)

    async def health(request):
        return JSONResponse({"ok": True, "suggester": suggester.describe(), "logging": log is not None})

    def run_suggest(seeker: str, draft: str, k: int, sources):
        with model_lock:
            return suggester.suggest(seeker, draft, k=k, sources=sources)

    async def suggest(request):
        try:
            data = await _json_body(request, limits)
            seeker = _text(data, "seeker_post", limits.max_seeker_chars)
            draft = _text(data, "draft", limits.max_draft_chars)
            k = data.get("k", getattr(suggester, "k", 3))
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
                raise ApiError(422, "bad_value", f"'k' must be a whole number from 1 to {limits.max_k}", "k")
            sources = data.get("sources")
            known = suggester.describe()["sources"]
            if sources is not None and (not isinstance(sources, list) or not sources
                                        or not all(isinstance(x, str) and x in known for x in sources)):
                raise ApiError(422, "bad_value", f"'sources' must be a non-empty list of {', '.join(known)}",
                               "sources")
        except ApiError as exc:
            return _error(exc)
        result = await run_in_threadpool(run_suggest, seeker, draft, k, sources)
        terms = sorted(set(risk_terms(seeker)))
        risk = {"terms": terms, "message": RISK_MESSAGE.format(terms=", ".join(f"“{t}”" for t in terms))} \
            if terms else None
        if log is not None:
            events = [{"event": "shown", "request_id": result.request_id, "suggestion_id": s.id,
                       "seeker_post": seeker, "draft": draft, "action": s.action, "position": s.position,
                       "sentence": s.sentence, "sources": s.sources, "gain": s.gain, "mechanism": s.mechanism}
                      for s in result.suggestions]
            await asyncio.to_thread(log.append, events)
            for s in result.suggestions:
                shown[(result.request_id, s.id)] = None
            while len(shown) > limits.remembered:
                shown.popitem(last=False)
        return JSONResponse({
            "request_id": result.request_id, "draft": draft, "draft_sentences": result.draft_sentences,
            "draft_spans": result.draft_spans,
            "draft_score": result.draft_score, "suggestions": [s.to_json() for s in result.suggestions],
            "risk": risk, "considered": result.considered, "rejected": result.rejected,
            "seconds": result.seconds, "logged": log is not None})

    async def feedback(request):
        try:
            data = await _json_body(request, limits)
            request_id = _text(data, "request_id", 64)
            suggestion_id = _text(data, "suggestion_id", 64)
            decision = _text(data, "decision", 16)
            if decision not in ("accepted", "edited", "dismissed"):
                raise ApiError(422, "bad_value", "'decision' must be accepted, edited or dismissed", "decision")
            sentence = _text(data, "sentence", limits.max_draft_chars) if decision == "edited" else None
            if log is not None and (request_id, suggestion_id) not in shown:
                raise ApiError(404, "unknown_suggestion", "no suggestion with this request_id and suggestion_id "
                                                          "was shown by this server (or it is too old)")
        except ApiError as exc:
            return _error(exc)
        if log is not None:
            event = {"event": "decision", "request_id": request_id, "suggestion_id": suggestion_id,
                     "decision": decision}
            if sentence is not None:
                event["sentence"] = sentence
            await asyncio.to_thread(log.append, [event])
        return JSONResponse({"logged": log is not None})

    async def not_found(request, exc):
        return _error(ApiError(exc.status_code, "not_found" if exc.status_code == 404 else "bad_method",
                               f"{request.method} {request.url.path}: {exc.detail}"))

    routes = [
        Route("/", static("index.html", "text/html; charset=utf-8")),
        Route("/static/serve.js", static("serve.js", "text/javascript; charset=utf-8")),
        Route("/static/serve.css", static("serve.css", "text/css; charset=utf-8")),
        Route("/favicon.ico", no_icon),
        Route("/health", health),
        Route("/suggest", suggest, methods=["POST"]),
        Route("/feedback", feedback, methods=["POST"]),
    ]
    from starlette.exceptions import HTTPException

    return Starlette(routes=routes, exception_handlers={HTTPException: not_found},
                     middleware=[Middleware(_Headers), Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))])
