"""Raw JSON over one connection pool per cluster: requests, paginated lists and watches.

Why not the generated API classes of the ``kubernetes`` library: they build model objects
the operator never reads and open a pool per ``ApiClient``; under load every retry of theirs
meant a new TLS handshake, and importing the package slowed the operator's start-up.
The pool comes from an ``Endpoint`` (``endpoint.py``) and the operator sends plain JSON
through it, with a bounded timeout on every call. Errors are ``ApiException`` with
``status`` and the API's own Status message, never the HTTP headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from computegrid.fleet.endpoint import Authorization, Endpoint

Body = dict[str, Any]
#: (connect, read) seconds for every call: a lost cluster must fail fast.
DEFAULT_TIMEOUT: tuple[float, float] = (3.0, 10.0)
MERGE_PATCH = "application/merge-patch+json"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class ApiException(Exception):
    """An API server answered with an error: its HTTP ``status`` and ``reason``, and the
    ``body`` (a Kubernetes Status). Named as the Kubernetes client names its own."""

    def __init__(self, status: int, reason: str = "", body: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.reason = reason
        self.body = body


def status_message(exc: BaseException) -> str:
    """The one line a user should read about a failed call (the API's Status message)."""
    if isinstance(exc, ApiException):
        message = ""
        try:
            message = str(json.loads(exc.body or "{}").get("message") or "")
        except (ValueError, AttributeError):
            message = ""
        head = f"HTTP {exc.status}" + (f" {exc.reason}" if exc.reason else "")
        return f"{head}: {message}"[:500] if message else head
    return f"{type(exc).__name__}: {exc}"[:300]


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed API call (None: no answer at all, or not an API call)."""
    return exc.status if isinstance(exc, ApiException) else None


def path_of(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts if p)


class Rest:
    """One cluster's API server: JSON requests through a single bounded connection pool."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        pool_size: int = 8,
    ) -> None:
        self.endpoint = endpoint
        self.pool: urllib3.PoolManager = endpoint.pool(pool_size)
        self.host = endpoint.server.rstrip("/")
        self.timeout = timeout
        self.authorization = Authorization(endpoint)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        auth = self.authorization.header()
        if auth:
            headers["Authorization"] = auth
        return headers

    def _timeout(self, timeout: tuple[float, float] | None) -> urllib3.Timeout:
        connect, read = timeout or self.timeout
        return urllib3.Timeout(connect=connect, read=read)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: tuple[float, float] | None = None,
        accept: str | None = None,
    ) -> Body:
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        headers = self._headers()
        if accept:
            headers["Accept"] = accept
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        response = self.pool.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=self._timeout(timeout),
            retries=False,
            preload_content=True,
        )
        if response.status >= 400:
            body = response.data.decode("utf-8", "replace")
            raise ApiException(response.status, response.reason or "", body)
        out: Body = json.loads(response.data) if response.data else {}
        return out

    def list_all(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        page: int = 500,
        *,
        metadata_only: bool = False,
        keep: Callable[[Body], Body] | None = None,
    ) -> tuple[list[Body], str]:
        """Every item of a collection, a page at a time; (items, the list's resourceVersion).

        ``metadata_only``: the server sends each object's metadata and nothing else
        (``PartialObjectMetadataList``), a fraction of the bytes to send and parse.
        ``keep``: what to hold of each item, applied page by page, so a list of thousands of
        pods or Jobs never sits in memory whole (3,000 pods parsed are ~75 MB; their node and
        requests a few hundred kB).
        """
        items: list[Body] = []
        version = ""
        for got, at in self.pages(path, query, page, metadata_only=metadata_only, keep=keep):
            items.extend(got)
            version = at
        return items, version

    def pages(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        page: int = 500,
        *,
        metadata_only: bool = False,
        keep: Callable[[Body], Body] | None = None,
    ) -> Iterator[tuple[list[Body], str]]:
        """``list_all`` a page at a time: (the page's items, the list's resourceVersion)."""
        params = {**(query or {}), "limit": page}
        accept = METADATA_ONLY if metadata_only else None
        while True:
            data = self.request("GET", path, query=params, accept=accept)
            got = data.get("items") or []
            meta = data.get("metadata") or {}
            yield (
                (list(map(keep, got)) if keep is not None else got),
                str(meta.get("resourceVersion") or ""),
            )
            token = meta.get("continue")
            if not token:
                return
            params["continue"] = token

    def watch(
        self, path: str, query: Mapping[str, Any], *, server_timeout: int, read_timeout: float
    ) -> Iterator[Body]:
        """The events of one watch request until the server ends it (or the read times out).

        ``server_timeout`` asks the server to end the watch; ``read_timeout`` ends it from our
        side when nothing (not even a bookmark) arrives, which catches a silently dead stream.
        """
        params = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": server_timeout,
        }
        url = self.host + path + "?" + urlencode(params)
        response = self.pool.request(
            "GET",
            url,
            headers=self._headers(),
            timeout=urllib3.Timeout(connect=self.timeout[0], read=read_timeout),
            retries=False,
            preload_content=False,
        )
        try:
            if response.status >= 400:
                body = response.read().decode("utf-8", "replace")
                raise ApiException(response.status, response.reason or "", body)
            buffer = b""
            for chunk in response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()

    def close(self) -> None:
        self.pool.clear()
