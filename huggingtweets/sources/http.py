"""The one HTTP layer every network source shares (httpx, one client per remote).

Timeouts; retries with backoff on 429, 5xx, dropped connections and broken JSON,
honouring `Retry-After` and X's `x-rate-limit-reset`; one clear error for 401,
403 and 404; a user agent that names the project. Secrets given to the client
are scrubbed from every message it raises, so a token never reaches a log.
"""

from __future__ import annotations

import email.utils
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..errors import SourceError, one_line
from ..posts import json_loads
from ..project import user_agent

RETRY_STATUSES = {429, 500, 502, 503, 504}
BACKOFF_SECONDS = 0.5  # first wait when the server says nothing; doubles each try
MAX_WAIT_SECONDS = 15 * 60  # X's rate-limit windows are 15 minutes


class HttpError(SourceError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    data: Any  # the parsed JSON body


def with_base(default: str, api_base: str | None) -> str:
    """`api_base` replaces the scheme, host and port of the service's default URL;
    the documented paths stay, so tests and self-hosted servers work."""
    if not api_base:
        return default
    from . import check_api_base

    api_base = check_api_base(api_base)
    base = urlsplit(api_base if "://" in api_base else f"http://{api_base}")
    d = urlsplit(default)
    return urlunsplit((base.scheme, base.netloc, d.path, "", ""))


class ApiClient:
    """One remote: base URL, headers, retry policy. `transport` is swappable (httpx)."""

    def __init__(self, service: str, base_url: str, headers: dict[str, str] | None = None, *,
                 secrets: tuple[str, ...] = (), timeout: float = 20.0, retries: int = 4,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 say: Callable[[str], None] | None = None):
        self.service = service
        self.secrets = tuple(s for s in secrets if s)
        self.retries = retries
        self.sleep = sleep
        self.say = say or (lambda m: print(m, file=sys.stderr, flush=True))
        self.client = httpx.Client(base_url=base_url, headers={"User-Agent": user_agent(), **(headers or {})},
                                   timeout=timeout, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def get(self, path: str, params: dict[str, Any] | None = None, *,
            errors: dict[int, str] | None = None) -> Response:
        """GET a JSON document. `errors` maps 401/403/404 (or any status) to the
        message the source wants the user to read."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        problem = ""
        for attempt in range(self.retries + 1):
            wait = BACKOFF_SECONDS * 2 ** attempt
            try:
                r = self.client.get(path, params=params)
                if r.status_code in RETRY_STATUSES:
                    wait = _server_wait(r.headers) or wait
                    problem = f"{self.service} answered {r.status_code}"
                elif r.status_code >= 400:
                    raise HttpError(self._status_message(r, errors or {}), r.status_code)
                else:
                    try:
                        return Response(r.status_code, r.headers, json_loads(r.content))
                    except (ValueError, RecursionError):  # bad JSON or UTF-8, a number too long, nesting too deep
                        problem = f"{self.service} sent a page that is not valid JSON"
            except httpx.TransportError as e:
                problem = f"the connection to {self.service} failed ({type(e).__name__})"
            if attempt == self.retries:
                break
            if wait > MAX_WAIT_SECONDS:
                raise HttpError(f"{problem}, and asks to wait {wait / 60:.0f} minutes: run the same command later, "
                                "it continues where it stopped")
            self.say(f"{self.scrub(problem)}; trying again in {wait:.0f} s ({attempt + 1}/{self.retries})")
            self.sleep(wait)
        raise HttpError(self.scrub(f"{problem}, {self.retries + 1} times: try again later "
                                   "(the fetch continues where it stopped)"))

    def download(self, url: str, params: dict[str, Any], dest: Any, max_bytes: int) -> int:
        """GET a binary body into the open file `dest`, streamed, at most `max_bytes`; returns
        its size. One try: the callers that download have another way to the same posts."""
        try:
            with self.client.stream("GET", url, params=params) as r:
                if r.status_code >= 400:
                    r.read()
                    raise HttpError(self._status_message(r, {}), r.status_code)
                size = 0
                for chunk in r.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise HttpError(f"{self.service} sent more than {max_bytes // 1024**2:,} MiB")
                    dest.write(chunk)
                return size
        except httpx.HTTPError as e:  # a dropped connection, a timeout, a bad URL
            raise HttpError(self.scrub(f"the download from {self.service} failed ({type(e).__name__})")) from None

    def _status_message(self, r: httpx.Response, errors: dict[int, str]) -> str:
        if r.status_code in errors:
            return self.scrub(errors[r.status_code])
        detail = ""
        try:
            body = json_loads(r.content)
            if isinstance(body, dict):
                detail = one_line(body.get("detail") or body.get("message") or body.get("error") or body.get("title"))
        except (ValueError, RecursionError):
            pass
        defaults = {401: "the credentials were refused: check the token",
                    403: "access is forbidden: the account may be private or suspended, or the token lacks access",
                    404: "not found: check the account name"}
        message = f"{self.service} answered {r.status_code}"
        message += f": {defaults.get(r.status_code, 'check the account and the --api-base URL')}"
        if detail:
            message += f" ({detail[:200]})"
        return self.scrub(message)


def _server_wait(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or a date), or
    X's x-rate-limit-reset (epoch seconds) when nothing is left."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    reset = headers.get("x-rate-limit-reset")
    if reset and headers.get("x-rate-limit-remaining", "0") == "0":
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None
