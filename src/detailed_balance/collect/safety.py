"""Guards of the collector: where a key may go, what is redacted, how long a wait may be.

- A key goes only over ``https``, or to a host whose addresses are all loopback, decided on the
  *resolved* addresses (``http://127.1``, ``http://[::ffff:127.0.0.1]`` and ``http://localhost.``
  are loopback; ``http://127.0.0.1.example.com`` is not), unless the user allows plain http.
- Every message, reason and stored reply is passed through :class:`Redactor`: the key itself and
  anything that looks like a bearer token or an ``sk-`` key become ``[REDACTED]``.
- ``Retry-After`` (seconds, milliseconds or an HTTP date) is honoured up to :data:`RETRY_AFTER_MAX`
  seconds (and never longer than the request timeout); garbage, NaN and negative values are
  ignored (the exponential backoff applies).
"""

from __future__ import annotations

import email.utils
import ipaddress
import math
import re
import socket
import time
from urllib.parse import urlparse

from ..errors import CollectionError

RETRY_AFTER_MAX = 60.0  # seconds: the longest wait a server's Retry-After can impose
REDACTED = "[REDACTED]"
# what looks like a credential in a server's message: "Bearer <token>", "sk-..." keys
_TOKEN_PATTERNS = re.compile(
    r"(?i)(?<![A-Za-z0-9])(bearer\s+)[^\s\"',;]+|(?<![A-Za-z0-9])sk-[A-Za-z0-9_*\-.]{4,}"
)


def _resolved_loopback(host: str) -> bool:
    host = host.rstrip(".")  # "localhost." is the fully qualified "localhost"
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True  # RFC 6761: always loopback, whatever a resolver says
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError):
        return False
    if not infos:
        return False
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if not addr.is_loopback:
            return False
    return True


def is_loopback(url: str) -> bool:
    """True when every address the host of ``url`` resolves to is a loopback address.

    Parameters
    ----------
    url : str
        An endpoint URL.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_loopback("http://127.1:8080/v1"), is_loopback("http://[::ffff:127.0.0.1]/v1")
    (True, True)
    >>> is_loopback("http://localhost./v1"), is_loopback("http://10.0.0.1/v1")
    (True, False)
    """
    try:
        host = urlparse(url).hostname or ""
    except ValueError:
        return False
    return _resolved_loopback(host)


def key_may_go_to(url: str) -> bool:
    """True when a key may be sent to ``url``: https, or a host that resolves to loopback.

    Parameters
    ----------
    url : str
        An endpoint URL.

    Returns
    -------
    bool
    """
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return False
    return scheme == "https" or (scheme == "http" and is_loopback(url))


def check_endpoints(urls: list[str], *, key_set: bool, allow_insecure: bool) -> None:
    """Refuse URLs that are not http(s), and plain-http non-loopback URLs when a key is set.

    Parameters
    ----------
    urls : list of str
        The endpoints.
    key_set : bool
        Whether an API key will be sent.
    allow_insecure : bool
        Allow plain http to a non-loopback host even with a key.
    """
    for url in urls:
        try:
            parsed = urlparse(url)
            parsed.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError as exc:
            raise CollectionError(f"--base-url {url!r} is not a valid URL ({exc})") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise CollectionError(
                f"--base-url {url!r} must be an http:// or https:// URL with a host"
            )
        if key_set and not allow_insecure and not key_may_go_to(url):
            raise CollectionError(
                f"refusing to send the API key over plain http to {parsed.hostname}, which is "
                "not a loopback address: use https, or pass --allow-insecure-key if you mean it"
            )


class Redactor:
    """Replace ``secrets`` (and bearer/``sk-`` tokens in messages) by ``[REDACTED]``.

    ``message`` is for text a user reads (errors, reasons): it also catches token-like strings.
    ``exact`` only replaces the secrets themselves (for stored replies, which are data).
    """

    def __init__(self, *secrets: str | None):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def exact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def message(self, text) -> str:
        text = self.exact(str(text))
        return _TOKEN_PATTERNS.sub(lambda m: (m.group(1) or "") + REDACTED, text)


def retry_after_seconds(headers, cap: float = RETRY_AFTER_MAX) -> float | None:
    """The wait a reply's ``retry-after-ms`` / ``Retry-After`` asks for, capped at ``cap`` s.

    None when there is no usable value (absent, garbage, NaN, negative): the caller backs off.

    Parameters
    ----------
    headers : mapping
        The reply's headers.
    cap : float
        Longest wait, in seconds.

    Returns
    -------
    float or None
        Seconds to wait.

    Examples
    --------
    >>> retry_after_seconds({"retry-after": "1e9"}), retry_after_seconds({"retry-after": "nan"})
    (60.0, None)
    """
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        value = str(value).strip()[:100]
        try:
            seconds = float(value) * scale
        except ValueError:
            try:  # an HTTP date
                when = email.utils.parsedate_to_datetime(value)
                seconds = max(0.0, when.timestamp() - time.time())  # a past date: now
            except (TypeError, ValueError, IndexError, OverflowError):
                continue
        if math.isnan(seconds) or seconds < 0:
            continue
        return min(seconds, cap)
    return None
