"""What every endpoint shares: request id, browser checks, auth, bounded JSON body, error rendering, access log."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import tornado.web
import ujson

from ..errors import ApiError
from ..events import Finish
from ..ids import new_id
from ..logs import clip, request_id_var
from ..recent_requests import RequestRecord, is_api_route
from ..services import Services
from ..wire.errors import anthropic_error_body, openai_error_body
from ..wire.fields import replace_lone_surrogates
from .auth import accepted_keys, is_token, key_id, offered_key
from .browser_guard import cors_allowed, normal_origin, refusal

log = logging.getLogger("lingma_proxy.http")

_JSON = "application/json; charset=utf-8"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def dumps(payload: Any) -> str:
    return ujson.dumps(payload, ensure_ascii=False, escape_forward_slashes=False)


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Thin-handler base: checks in prepare(), every failure rendered by write_error() in the wire format."""

    protocol = "openai"  # "openai" | "anthropic" | "auto" (by the caller's headers): the error wire format
    auth = "api"  # "api" | "admin" | "admin_token" (that token alone, never a key) | "metrics" | "public"
    api = "ops"  # the metrics label of the API this endpoint serves
    request_id = ""  # set_default_headers() runs before initialize()
    model_asked = ""  # the body's `model`, for the usage ledger
    error_type = ""  # the kind of the error the request was answered with, for the usage ledger

    def initialize(self, services: Services) -> None:
        self.services = services
        self.started = time.monotonic()
        self.api_key_id = ""
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        self._body_too_large = False
        self._prepared = False  # prepare() passed: the body is being read
        self._cors = False  # the request came from an origin in server.cors_origins
        self.served_by = ""
        self.served_model = ""
        self.finish_event: Finish | None = None

    def set_default_headers(self) -> None:
        if self.request_id:
            self.set_header("x-request-id", self.request_id)

    async def prepare(self) -> None:
        self._identify()
        self._check_browser()
        if self.request.method != "OPTIONS":  # a CORS preflight carries no credentials; options() answers it
            self._authenticate()
        self._prepared = True

    def _identify(self) -> None:
        """The client's x-request-id, or a new one, on the response and on every log line of the request."""
        offered = self.request.headers.get("x-request-id", "")
        # Only a plain trace id is kept: it is echoed in headers and written on every log line.
        self.request_id = offered if _REQUEST_ID.fullmatch(offered) else new_id("req_")
        self.set_header("x-request-id", self.request_id)
        request_id_var.set(self.request_id)

    # ---- browsers ---------------------------------------------------------------------------

    def _check_browser(self) -> None:
        headers, server = self.request.headers, self.services.cfg.server
        origin = headers.get("Origin")
        why = refusal(
            headers.get("Host", ""), origin, headers.get("Sec-Fetch-Site"),
            server.host, server.allowed_hosts, server.cors_origins,
        )  # fmt: skip
        if why is not None:
            raise ApiError("permission", why, code="forbidden_origin")
        if origin is not None and normal_origin(origin) in cors_allowed(server.cors_origins):
            self._cors = True
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", "x-request-id, retry-after")
            self.add_header("Vary", "Origin")

    def options(self, *args: str) -> None:
        """A CORS preflight from an allowed origin (prepare() refused every other one)."""
        if not self._cors:
            raise ApiError("method_not_allowed", f"Method OPTIONS is not allowed on {self.request.path}.")
        asked = self.request.headers.get("Access-Control-Request-Headers", "")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, HEAD, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", asked or "authorization, content-type, x-api-key")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    # ---- auth -------------------------------------------------------------------------------

    def _authenticate(self) -> None:
        keys = accepted_keys(self.auth, self.services.cfg.auth, self.request.path)
        if keys is not None:
            self.api_key_id = key_id(keys, self.offered_key())

    def holds_admin_token(self) -> bool:
        return is_token(self.services.cfg.auth.admin_token, self.offered_key())

    def offered_key(self) -> str:
        return offered_key(self.request.headers)

    # ---- body -------------------------------------------------------------------------------

    def data_received(self, chunk: bytes) -> None:
        # Over-limit bodies are drained and dropped, so the client still reads a clean 413.
        self._body_size += len(chunk)
        if self._body_size > self.services.cfg.limits.max_body_bytes:
            self._body_too_large = True
            self._body_chunks.clear()
        else:
            self._body_chunks.append(chunk)

    def json_body(self) -> dict:
        if self._body_too_large:
            limit = self.services.cfg.limits.max_body_bytes
            raise ApiError("too_large", f"Request body exceeds limits.max_body_bytes ({limit} bytes).")
        raw = b"".join(self._body_chunks)
        if not raw.strip():
            raise ApiError("invalid_request", "Request body is empty; expected a JSON object.")
        try:
            body = ujson.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError("invalid_request", "Request body is not valid UTF-8.") from None
        except (ValueError, RecursionError, OverflowError) as exc:
            raise ApiError("invalid_request", f"Request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_request", "Request body must be a JSON object.")
        replace_lone_surrogates(body, raw)
        self.model_asked = body["model"] if isinstance(body.get("model"), str) else ""
        request = self.request
        if self.services.cfg.debug.request_ring:
            self.services.debug_ring.add(self.request_id, request.method, request.path, dict(request.headers), body)
        return body

    # ---- errors -----------------------------------------------------------------------------

    def error_protocol(self) -> str:
        if self.protocol == "auto":
            return "anthropic" if self.caller_speaks_anthropic() else "openai"
        return self.protocol

    def caller_speaks_anthropic(self) -> bool:
        """For routes both vendors share: Anthropic clients send anthropic-version or x-api-key."""
        headers = self.request.headers
        return "anthropic-version" in headers or "x-api-key" in headers

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            err = exc
        elif isinstance(exc, tornado.web.HTTPError) and exc.status_code == 405:
            err = ApiError("method_not_allowed", f"Method {self.request.method} is not allowed on {self.request.path}.")
        else:
            err = ApiError("internal", "Internal error in lingma-proxy; see its log for this request id.")
        self.error_type = err.kind
        self.set_status(err.status)
        if err.retry_after is not None:
            self.set_header("Retry-After", str(err.retry_after))
        self.set_header("Content-Type", _JSON)
        if not self._prepared:
            # Failed in prepare(), before the body was read: tornado closes the connection rather
            # than read the body, so keep-alive clients must be told not to reuse it.
            self.set_header("Connection", "close")
        self.finish(dumps(self.error_body(err)))

    def error_body(self, err: ApiError) -> dict:
        if self.error_protocol() == "anthropic":
            return anthropic_error_body(err, self.request_id)
        return openai_error_body(err)

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        if isinstance(value, ApiError):
            log.info("%s %s -> %d %s", self.request.method, clip(self.request.path), value.status, clip(value.message))
        else:
            super().log_exception(typ, value, tb)

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", _JSON)
        self.finish(dumps(payload))

    def on_finish(self) -> None:
        unmatched, method, path = isinstance(self, NotFoundHandler), self.request.method, self.request.path
        status = self.get_status()
        self.services.metrics.requests.labels("unmatched" if unmatched else path, self.api, str(status)).inc()
        ms = (time.monotonic() - self.started) * 1000
        log.info("access %s %s %d %.1fms instance=%s", method, clip(path), status, ms, self.served_by or "-")
        if not is_api_route(path):
            return
        if status == 401:
            # Counted apart: anyone can send these, and they must not push real requests off the list.
            self.services.recent.unauthenticated += 1
            return
        captured = self.path_args or self.path_kwargs  # a route is fixed text: only its captured parts are the client's
        shown = "(unknown route)" if unmatched else self.services.redactor.redact(path) if captured else path
        self._record_recent(shown, ms)
        self.services.usage.record(self, shown, ms, streamed=self.streamed())

    def streamed(self) -> bool:
        """Whether the answer went out as a stream (the completion endpoints say; nothing else streams)."""
        return False

    def _record_recent(self, route: str, ms: float) -> None:
        """For the status page: what was asked and how it went, never the body."""
        fin = self.finish_event
        self.services.recent.record(
            RequestRecord(
                method=self.request.method,
                route=route,
                status=self.get_status(),
                duration_ms=ms,
                model=self.served_model,
                first_token_ms=fin.latency.first_token_ms if fin else None,
                input_tokens=fin.usage.input_tokens if fin else 0,
                output_tokens=fin.usage.output_tokens if fin else 0,
                instance=self.served_by,
            )
        )

class NotFoundHandler(BaseHandler):
    """JSON 404 for unknown routes, in the format the caller is most likely to read."""

    auth = "public"
    protocol = "auto"

    async def prepare(self) -> None:
        self._identify()
        raise ApiError("not_found", f"Unknown route: {self.request.method} {self.request.path}")

