"""Tokens: how they look, how they are made, and the hash that is all the database keeps."""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import Enum


class TokenKind(Enum):
    session = "gos_"
    application = "goa_"


# 32 random bytes in URL-safe base64 are 43 characters.
_TOKEN = re.compile(r"^(gos_|goa_)[A-Za-z0-9_-]{43}$")


def new_token(kind: TokenKind) -> str:
    return kind.value + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token. Tokens carry 256 random bits, so a plain hash suffices."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_kind(token: str) -> TokenKind | None:
    """The kind of a well-formed token, or None for a malformed one."""
    if not _TOKEN.match(token):
        return None
    return (
        TokenKind.session if token.startswith(TokenKind.session.value) else (TokenKind.application)
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none.

    A header of another scheme is returned whole, so that it fails as a malformed token.
    """
    if authorization is None:
        return None
    value = authorization.strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return value or None
    return token.strip() or None
