"""Who is calling: the tenant comes from the verified token's claims only.

``AUTH_MODE=cognito`` verifies the Cognito ID token (issuer, audience, expiry, RS256
signature against the pool's JWKS). ``AUTH_MODE=none`` (a local single-user default)
maps every caller to ``DEFAULT_TENANT``; it never reads a tenant from the request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.config import get_settings
from chalicelib.domain.errors import RateLimitedError, UnauthorizedError
from chalicelib.domain.ports import PasswordAuth


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    user_id: str
    email: str | None = None

    @property
    def actor(self) -> str:
        return self.email or self.user_id


_jwks_clients: dict[str, Any] = {}
_jwks_lock = threading.Lock()


def _jwks_client(url: str) -> Any:
    import jwt

    with _jwks_lock:
        if url not in _jwks_clients:
            _jwks_clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)
        return _jwks_clients[url]


def verify_token(token: str) -> dict[str, Any]:
    import jwt

    s = get_settings()
    if not (s.cognito_user_pool_id and s.cognito_client_id):
        raise UnauthorizedError("authentication is not configured")
    region = s.cognito_region or s.region
    issuer = (
        s.cognito_issuer or f"https://cognito-idp.{region}.amazonaws.com/{s.cognito_user_pool_id}"
    )
    jwks_url = s.cognito_jwks_url or f"{issuer}/.well-known/jwks.json"
    try:
        key = _jwks_client(jwks_url).get_signing_key_from_jwt(token).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=s.cognito_client_id,
            issuer=issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise UnauthorizedError("the token has expired; sign in again") from e
    except jwt.PyJWTError as e:
        raise UnauthorizedError(f"invalid token: {e}") from e
    # Cognito marks what a token is for; only an ID token carries the tenant claim the
    # API trusts. A signed token that does not say so is not one.
    if claims.get("token_use") != "id":
        raise UnauthorizedError("an ID token is required (token_use must be 'id')")
    return claims


def authenticate(headers: Mapping[str, str]) -> Principal:
    s = get_settings()
    if s.auth_mode == "none":
        return Principal(tenant_id=s.default_tenant, user_id="local-user", email="you@localhost")
    header = headers.get("authorization") or headers.get("Authorization") or ""
    if not header.lower().startswith("bearer "):
        raise UnauthorizedError("sign in: send 'Authorization: Bearer <id token>'")
    claims = verify_token(header[7:].strip())
    tenant = claims.get("custom:tenant_id")
    if not tenant:
        raise UnauthorizedError("the token carries no tenant")
    return Principal(tenant_id=str(tenant), user_id=str(claims["sub"]), email=claims.get("email"))


# --------------------------------------------------------------------------- sign-in


def sign_in(email: str, password: str, identity: PasswordAuth) -> dict[str, Any]:
    """Email + password -> the pool's ID token (Cognito USER_PASSWORD_AUTH). The token is
    verified like any other before it is handed out, and the tenant read from it."""
    s = get_settings()
    if not s.cognito_client_id:
        raise UnauthorizedError("sign-in is not configured (no COGNITO_CLIENT_ID)")
    # Guessing passwords is an expensive route too: limited per email address.
    enforce_rate(Principal(tenant_id=f"sign-in:{email.lower()}", user_id=email), "sign-in")
    result = identity.password_auth(email, password)
    if "AuthenticationResult" not in result:
        challenge = result.get("ChallengeName", "unknown")
        raise UnauthorizedError(
            "this account must finish signing up before it can sign in here",
            {"challenge": challenge},
        )
    tokens = result["AuthenticationResult"]
    id_token = str(tokens["IdToken"])
    claims = verify_token(id_token)
    tenant = claims.get("custom:tenant_id")
    if not tenant:
        raise UnauthorizedError("this account belongs to no tenant")
    return {
        "id_token": id_token,
        "expires_in": int(tokens.get("ExpiresIn", 3600)),
        "tenant_id": str(tenant),
        "email": str(claims.get("email") or email),
    }


# Per-tenant request rate on expensive routes (sliding window, per container).
_windows: dict[tuple[str, str], deque[float]] = {}
_windows_lock = threading.Lock()


def enforce_rate(who: Principal, bucket: str, now: float | None = None) -> None:
    limit = get_settings().expensive_route_rpm
    if limit <= 0:
        return
    now = time.monotonic() if now is None else now
    with _windows_lock:
        window = _windows.setdefault((who.tenant_id, bucket), deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= limit:
            retry_after = 60.0 - (now - window[0])
            raise RateLimitedError(
                f"too many {bucket} requests: at most {limit} a minute per tenant", retry_after
            )
        window.append(now)
