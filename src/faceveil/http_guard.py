"""The checks every faceveil HTTP server makes before it answers, in one place.

The web app (`faceveil serve`, FastAPI) and the live preview server (`faceveil live --serve`,
the standard library's `http.server`) both use these; neither front end imports the other.

- Host: without a token only loopback names are answered, so a web page cannot reach the
  server through a name it controls (DNS rebinding: `evil.example` resolving to 127.0.0.1).
- Origin: requests another site's page makes (`Sec-Fetch-Site: cross-site`, or an `Origin`
  that is not the server's own) are refused, so another page cannot read or drive it.
- Token: compared in constant time; wrong tokens are throttled per client address
  (`Throttle`); tokens a person could guess (`aaaaaaaaaaaaaaaa`, `password12345678`) are
  refused at start-up (`token_weakness`); `new_token()` makes a good one.
- Security headers on every answer (`security_headers`).

Plain standard library: importing it costs nothing and pulls in no web framework.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .errors import ConfigError

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

# Parts of a token that add (almost) nothing an attacker has to guess.
_COMMON_WORDS = (
    "password", "passwort", "passwd", "secret", "token", "admin", "letmein", "welcome", "qwerty",
    "azerty", "asdf", "zxcv", "iloveyou", "monkey", "dragon", "master", "login", "changeme",
    "default", "faceveil", "test", "pass", "abc", "root", "user", "guest", "hello",
)
_MIN_GUESSY = 10  # characters left once repeats, runs and common words are taken out
_MIN_DISTINCT = 6


def is_loopback(host: str) -> bool:
    """True for names and literal addresses only this machine can reach (no DNS look-up)."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name in a Host header, without port or brackets ('' when there is none)."""
    try:
        return (urlsplit(f"//{host_header.strip()}").hostname or "").lower()
    except ValueError:  # e.g. a bad port or an unclosed bracket
        return ""


def host_refusal(host_header: str, *, token: bool, extra_hosts: Iterable[str] = ()) -> str | None:
    """Why a request naming this Host is refused, or None when it may go on.

    With a token every name is answered (the token protects it); without one only loopback
    names and `extra_hosts`, so a page cannot reach the server through a name it controls.
    """
    if token:
        return None
    name = host_name(host_header)
    if name and (is_loopback(name) or name in {h.lower() for h in extra_hosts}):
        return None
    return (f"this server answers only to localhost addresses, not {host_header[:80]!r} "
            "(start it with a token to serve other names)")


def cross_site(get: Callable[[str], str | None], host_header: str) -> bool:
    """True when the request comes from another site's page (`get` reads a request header)."""
    if get("sec-fetch-site") in ("cross-site", "same-site"):
        return True
    origin = get("origin")
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return True
    return netloc != host_header.strip().lower()


def security_headers(csp: str) -> dict[str, str]:
    """Headers for every answer: this content policy, no sniffing, no framing, no referrer."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    }


# -------------------------------------------------------------------------------------- tokens


def new_token() -> str:
    """A token nobody guesses: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def token_weakness(token: str) -> str | None:
    """Why a token is too easy to guess, or None when it is fine.

    Not an entropy estimate, only a floor: at least 16 characters without spaces, and at least
    10 of them left after taking out repeats (`aaaa`), runs (`1234`, `abcd`, `dcba`) and common
    words (`password`, `secret`, `qwerty`, ...), with 6 different characters or more.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it is shorter than {MIN_TOKEN_LENGTH} characters"
    if any(c.isspace() for c in token):
        return "it has spaces in it"
    if len(set(token)) < _MIN_DISTINCT:
        return f"it has fewer than {_MIN_DISTINCT} different characters"
    lower = token.lower()
    guessable = [False] * len(token)
    for word in _COMMON_WORDS:
        start = lower.find(word)
        while start >= 0:
            guessable[start:start + len(word)] = [True] * len(word)
            start = lower.find(word, start + 1)
    i, n = 0, len(lower)
    while i < n - 2:  # runs of 3 or more with one step: aaa, 123, abc, 987
        step = ord(lower[i + 1]) - ord(lower[i])
        if step in (-1, 0, 1):
            j = i + 1
            while j + 1 < n and ord(lower[j + 1]) - ord(lower[j]) == step:
                j += 1
            if j - i >= 2:
                guessable[i:j + 1] = [True] * (j + 1 - i)
                i = j
                continue
        i += 1
    left = guessable.count(False)
    if left < _MIN_GUESSY:
        return ("it is made of repeats, runs like 1234 or abcd, or common words "
                f"(only {left} other characters)")
    return None


def check_token(token: str | None) -> str | None:
    """The token stripped, or ConfigError when it is too weak; None stays None."""
    if token is None:
        return None
    token = token.strip()
    why = token_weakness(token)
    if why:
        raise ConfigError(
            f"the access token is too easy to guess: {why}; use a random one of at least "
            f"{MIN_TOKEN_LENGTH} characters, e.g. {new_token()} "
            "(made with: python -c \"import secrets; print(secrets.token_urlsafe())\")")
    return token


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison of a token a client sent with the server's."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


class Throttle:
    """Slows down guessing: after `free` wrong tokens from one client address, that client is
    refused (without its token being looked at) for 1 s, then 2, 4, ... up to `max_delay` s
    per further wrong token. A client is forgotten `forget` seconds after its last wrong token,
    and at most `max_clients` are remembered (the longest quiet first), so memory is bounded.

    With the defaults a client gets 5 tries, then about one per minute: 3,000 guesses take
    days, not seconds. Thread-safe: the live server calls it from one thread per client.
    """

    def __init__(self, free: int = 5, max_delay: float = 60.0, forget: float = 600.0,
                 max_clients: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.max_delay, self.forget, self.max_clients = free, max_delay, forget, max_clients
        self._clock = clock
        self._lock = threading.Lock()
        # client -> (wrong tokens, time of the last one, refused until)
        self._clients: collections.OrderedDict[str, tuple[int, float, float]] = collections.OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds this client must wait before its token is checked again (0: go on)."""
        now = self._clock()
        with self._lock:
            entry = self._clients.get(client)
            if entry is None:
                return 0.0
            _, last, until = entry
            if now - last > self.forget:
                del self._clients[client]
                return 0.0
            return max(0.0, until - now)

    def failed(self, client: str) -> float:
        """Count a wrong token; returns how long this client is now refused."""
        now = self._clock()
        with self._lock:
            count, last, _ = self._clients.pop(client, (0, now, now))
            if now - last > self.forget:
                count = 0
            count += 1
            delay = 0.0 if count <= self.free else min(self.max_delay, 2.0 ** (count - self.free - 1))
            self._clients[client] = (count, now, now + delay)
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            return delay

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)


def check_binding(host: str, token: str | None, *, what: str = "--host",
                  how: str = "--token (or FACEVEIL_TOKEN)") -> None:
    """Listening on anything but loopback reaches other machines, so it needs a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"{what} {host} lets other machines reach the server: give an access token with "
            f"{how}, at least {MIN_TOKEN_LENGTH} characters; every request must then carry it")
