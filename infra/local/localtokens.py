"""Verifying the local token endpoint's access tokens (infra/local/oauthserver.py), for the
stand-ins that accept them: the SMTP server's AUTH XOAUTH2 (mailserver.py) and Microsoft
Graph's stand-in (graphserver.py).

A token is a JWT signed RS256 by the token endpoint; its public keys are served at
``<token server>/keys`` (a JWKS). The keys are fetched at every verification (loopback, cheap),
so that a rotated signing key invalidates every token issued before it, as a revoked or
expired token would be refused by Exchange Online or Gmail.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Dict

import jwt  # PyJWT, installed into the venv by infra/local/install.sh


class TokenRefused(Exception):
    """The token is not valid here (signature, expiry, audience, roles or scope)."""


def verify(token: str, jwks_url: str, audience: str) -> Dict[str, Any]:
    """The token's claims, when it is signed by the token endpoint, unexpired, and for
    ``audience``; TokenRefused otherwise."""
    try:
        with urllib.request.urlopen(jwks_url, timeout=5) as r:
            jwks = json.load(r)
    except Exception as e:  # noqa: BLE001 - the verifier cannot work without keys
        raise TokenRefused(f"keys unavailable: {e}") from e
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as e:
        raise TokenRefused(f"not a JWT: {e}") from e
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == kid]
    if not keys:
        raise TokenRefused(f"unknown signing key {kid!r} (rotated?)")
    key = jwt.PyJWK(keys[0]).key
    try:
        return jwt.decode(token, key=key, algorithms=["RS256"], audience=audience,
                          options={"require": ["exp", "iat", "aud"]})
    except jwt.PyJWTError as e:
        raise TokenRefused(str(e)) from e
