"""Bearer-token authentication: the one check every EmotionService RPC passes (health is
exempt, so that probes and load balancers need no secret).

Accepted tokens are read from a file, one per line (blank lines and `#` comments ignored),
named by `EMER_AUTH_TOKEN_FILE` or the gateway config's `auth_token_file`. The file is read
again when it changes (a rotated Kubernetes Secret), at most once per `RELOAD_CHECK_S`. With
no file configured authentication is off, and `emer serve` says so at start.

Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every accepted
token without stopping at the first match, so the time taken says nothing about how much of
a token was right. Neither the token nor its digest is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from services.common.errors import UnauthenticatedError

logger = logging.getLogger(__name__)

TOKEN_FILE_ENV = "EMER_AUTH_TOKEN_FILE"
RELOAD_CHECK_S = 5.0
BEARER = "bearer "


def token_file(configured: str | None) -> Path | None:
    """The token file in force: the environment's, else the config's, else none (auth off)."""
    named = os.environ.get(TOKEN_FILE_ENV) or configured
    return Path(named) if named else None


def read_tokens(path: Path) -> list[str]:
    """The accepted tokens of `path`; an unreadable file or one without a token is refused
    (a server that accepts nobody is a misconfiguration, not a safe default)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"cannot read the auth token file {path}: {e.strerror}") from None
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ValueError(f"the auth token file {path} holds no token")
    if any(any(c.isspace() for c in t) for t in tokens):
        raise ValueError(f"the auth token file {path} has a line with a space inside a token")
    return tokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenAuth:
    """Checks the `authorization: Bearer <token>` metadata of a call."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._digests: list[bytes] = []
        self._mtime_ns = -1
        self._checked_at = 0.0
        if path is not None:
            self._load()  # at start-up a bad file fails the deployment, loudly

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def token_count(self) -> int:
        return len(self._digests)

    def _load(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime_ns
        self._digests = [_digest(t) for t in read_tokens(self.path)]
        self._mtime_ns = mtime
        logger.info("auth: %d accepted token(s) from %s", len(self._digests), self.path)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return
        with self._lock:
            self._checked_at = now
            try:
                if self.path is not None and self.path.stat().st_mtime_ns != self._mtime_ns:
                    self._load()
            except (OSError, ValueError) as e:
                # Keep the tokens we had: a half-written rotation must not lock everyone out.
                logger.error("auth: keeping the previous tokens, reload failed: %s", e)

    def check(self, metadata: Sequence[tuple[str, str | bytes]], method: str, peer: str) -> None:
        """Raises UnauthenticatedError unless the call carries an accepted bearer token."""
        if self.path is None:
            return
        self._maybe_reload()
        values = [v for k, v in metadata if k.lower() == "authorization"]
        if not values:
            self._reject(method, peer, "no authorization metadata")
            raise UnauthenticatedError(
                "this server needs a bearer token: send `authorization: Bearer <token>` "
                "(the emer command reads it from EMER_TOKEN)"
            )
        value = values[0] if isinstance(values[0], str) else values[0].decode("latin-1")
        if value[: len(BEARER)].lower() != BEARER:
            self._reject(method, peer, "authorization is not a bearer token")
            raise UnauthenticatedError("the authorization metadata must be `Bearer <token>`")
        given = _digest(value[len(BEARER) :].strip())
        matches = [hmac.compare_digest(given, d) for d in self._digests]  # all, no early exit
        if not any(matches):
            self._reject(method, peer, "token not accepted")
            raise UnauthenticatedError("the bearer token was not accepted")

    @staticmethod
    def _reject(method: str, peer: str, why: str) -> None:
        logger.warning("auth: rejected %s from %s: %s", method, peer or "unknown peer", why)
