"""One HTTP(S) fetch of an official sky map under a :class:`FetchPolicy`.

The rules (``https`` only unless a host is listed for plain ``http``, an allowlist of
hosts, redirects checked against it, size and time limits, ``text/*`` and non-FITS
bodies refused, retries with back-off for what may pass, a host that could not be
reached held for :data:`HOST_HOLD_S`) are described in
:mod:`mm_broker.app.skymap_fetch`, which uses this module; everything here is
standard library.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.client import HTTPException, HTTPMessage, IncompleteRead
from typing import IO, Any
from urllib.parse import urlsplit

from mm_broker.core.errors import SkymapFetchError
from mm_broker.core.sections import SkymapSettings

#: Read size while downloading.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchPolicy:
    """The limits of one fetch (``[skymaps]`` settings).

    Attributes
    ----------
    enabled : bool
        ``fetch``: when false nothing is requested (the notice keeps its circle or
        is rejected, as for a failed fetch).
    hosts : tuple of str
        ``fetch_hosts``: exact host names, or ``.suffix`` for a domain and its
        sub-domains.
    http_hosts : tuple of str
        ``fetch_http_hosts``: hosts that may be reached over plain ``http``.
    timeout_s : float
        ``fetch_timeout_s``: the whole request (connect, headers and body).
    max_bytes : int
        ``max_bytes``: the largest map, bytes as transferred.
    attempts : int
        ``fetch_attempts``.
    backoff_s : float
        ``fetch_backoff_s``: wait ``backoff_s * 2**n`` before attempt ``n + 2``.
    """

    enabled: bool
    hosts: tuple[str, ...]
    http_hosts: tuple[str, ...]
    timeout_s: float
    max_bytes: int
    attempts: int
    backoff_s: float

    @classmethod
    def from_settings(cls, skymaps: SkymapSettings) -> FetchPolicy:
        """The policy of the ``[skymaps]`` section."""
        return cls(skymaps.fetch, tuple(skymaps.fetch_hosts), tuple(skymaps.fetch_http_hosts),
                   skymaps.fetch_timeout_s, skymaps.max_bytes, skymaps.fetch_attempts,
                   skymaps.fetch_backoff_s)


def host_allowed(host: str, hosts: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``hosts`` (``.example.org`` allows the domain and
    its sub-domains).

    Examples
    --------
    >>> host_allowed("gracedb.ligo.org", [".ligo.org"])
    True
    >>> host_allowed("ligo.org.evil", [".ligo.org"])
    False
    """
    host = host.lower().rstrip(".")
    for allowed in hosts:
        allowed = allowed.lower()
        if allowed.startswith("."):
            if host == allowed[1:] or host.endswith(allowed):
                return True
        elif host == allowed:
            return True
    return False


def request_url(url: str, policy: FetchPolicy) -> str:
    """The URL to request for ``url``, or why it may not be requested.

    Raises
    ------
    SkymapFetchError
        Not http(s), no host, a host outside ``hosts``, or credentials in the URL.

    Examples
    --------
    >>> p = FetchPolicy(True, (".gsfc.nasa.gov",), (), 10.0, 1 << 20, 1, 0.0)
    >>> request_url("http://heasarc.gsfc.nasa.gov/FTP/x.fit", p)
    'https://heasarc.gsfc.nasa.gov/FTP/x.fit'
    """
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        raise SkymapFetchError(f"{url[:200]!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise SkymapFetchError(f"{url[:200]!r} carries credentials; refused")
    if not host_allowed(host, policy.hosts):
        raise SkymapFetchError(f"host {host!r} is not in skymaps.fetch_hosts")
    if scheme == "http" and not host_allowed(host, policy.http_hosts):
        # An allowed host over plain http: ask for the same path over https.
        return parts._replace(scheme="https").geturl()
    return parts.geturl()


def looks_like_fits(data: bytes) -> bool:
    """A FITS file (``SIMPLE  =`` first), possibly gzip-compressed."""
    head = data[:80]
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(data[:_CHUNK], 80)
        except zlib.error:
            return False
    return head.startswith(b"SIMPLE  =")


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL the policy allows."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int,
                         msg: str, headers: HTTPMessage, newurl: str,
                         ) -> urllib.request.Request | None:
        try:
            target = request_url(newurl, self.policy)
        except SkymapFetchError as exc:
            raise SkymapFetchError(f"redirect ({code}) refused: {exc.message}") from None
        return super().redirect_request(req, fp, code, msg, headers, target)


def _read(response: Any, url: str, policy: FetchPolicy, deadline: float) -> bytes:
    ctype = (response.headers.get("Content-Type") or "").lower()
    if ctype.startswith("text/"):
        raise SkymapFetchError(f"{url}: content type {ctype[:60]!r} is not a FITS map")
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > policy.max_bytes:
        raise SkymapFetchError(f"{url}: {int(length)} bytes announced, over skymaps.max_bytes "
                               f"= {policy.max_bytes}")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise SkymapFetchError(f"{url}: not complete within {policy.timeout_s:g} s",
                                   retryable=True)
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > policy.max_bytes:
            raise SkymapFetchError(f"{url}: more than skymaps.max_bytes = {policy.max_bytes} "
                                   "bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if length is not None and length.isdigit() and len(data) < int(length):
        raise SkymapFetchError(f"{url}: truncated ({len(data)} of {length} bytes)",
                               retryable=True)
    if not looks_like_fits(data):
        raise SkymapFetchError(f"{url}: the body ({len(data)} bytes) is not a FITS file")
    return data


def _once(url: str, policy: FetchPolicy) -> bytes:
    target = request_url(url, policy)
    opener = urllib.request.build_opener(_Redirects(policy))
    # request_url() admitted only http(s) URLs of allowed hosts (S310's concern).
    request = urllib.request.Request(  # noqa: S310
        target, headers={"User-Agent": "mm-broker skymap fetch"})
    deadline = time.monotonic() + policy.timeout_s
    try:
        with opener.open(request, timeout=policy.timeout_s) as response:
            return _read(response, url, policy, deadline)
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code == 429
        raise SkymapFetchError(f"{url}: HTTP {exc.code}", retryable=retry) from None
    except IncompleteRead as exc:
        raise SkymapFetchError(f"{url}: truncated ({len(exc.partial)} bytes read)",
                               retryable=True) from None
    except TimeoutError:
        raise SkymapFetchError(f"{url}: timed out after {policy.timeout_s:g} s",
                               retryable=True) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, SkymapFetchError):
            raise exc.reason from None
        raise SkymapFetchError(f"{url}: {exc.reason}", retryable=True) from None
    except (HTTPException, OSError) as exc:
        raise SkymapFetchError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from None


#: A host that could not be reached (every attempt failed with a retryable error) is
#: not asked again by this process for this many seconds: the notices that link it
#: meanwhile fail at once (retryable), instead of each waiting for its own retries.
HOST_HOLD_S = 60.0

#: host -> (monotonic time until which it is held, the reason).
_held: dict[str, tuple[float, str]] = {}


def fetch_bytes(url: str, policy: FetchPolicy,
                sleep: Callable[[float], None] = time.sleep) -> bytes:
    """Fetch one map under ``policy`` (module docstring), retrying what may succeed.

    Raises
    ------
    SkymapFetchError
        The last attempt's reason, ``retryable`` as it was.
    """
    if not policy.enabled:
        raise SkymapFetchError("fetching sky maps is off (skymaps.fetch = false)")
    host = (urlsplit(url).hostname or "").lower()
    held = _held.get(host)
    if held is not None and time.monotonic() < held[0]:
        raise SkymapFetchError(f"{url}: host {host} unreachable moments ago ({held[1]}); "
                               f"not asked again for {HOST_HOLD_S:g} s", retryable=True)
    for attempt in range(policy.attempts):
        try:
            data = _once(url, policy)
        except SkymapFetchError as exc:
            if not exc.retryable:
                raise
            if attempt + 1 == policy.attempts:
                _held[host] = (time.monotonic() + HOST_HOLD_S, exc.message[-120:])
                raise SkymapFetchError(f"{exc.message} (after {policy.attempts} attempts)",
                                       retryable=True) from None
            sleep(policy.backoff_s * 2**attempt)
        else:
            _held.pop(host, None)
            return data
    raise AssertionError("unreachable: fetch_attempts is positive")


def fits_object(data: bytes) -> str | None:
    """The ``OBJECT`` card of a FITS file's first two headers (gzip or not), if any."""
    head = data[: 4 * 2880]
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(data[: 1 << 20], 4 * 2880)
        except zlib.error:
            return None
    for i in range(0, len(head) - 79, 80):
        card = head[i:i + 80]
        if card.startswith(b"OBJECT  ="):
            value = card[10:].split(b"/", 1)[0].strip().strip(b"'").strip()
            return value.decode("ascii", "replace") or None
    return None
