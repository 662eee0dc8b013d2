"""The API's input guards without a stack: JSON depth, token kind, declared choices.

Tokens are signed here with a fresh RSA key whose JWKS a local HTTP server publishes, so
``verify_token`` runs exactly as in the cloud (PyJWKClient fetch, RS256, issuer,
audience, expiry), against a key that only this test holds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from chalice.app import MultiDict
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.api.gate import check_choices, enum_choices
from chalicelib.api.http import json_body
from chalicelib.api.openapi import ROUTES
from chalicelib.domain.errors import UnauthorizedError, ValidationError
from chalicelib.domain.json_limits import MAX_JSON_DEPTH, json_depth_exceeds, loads_bounded
from chalicelib.planning.imports import parse_chunks_payload

# --------------------------------------------------------------------------- JSON depth


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,  # past the interpreter's recursion limit
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[" * 100_000,  # unclosed
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    ],
)
def test_json_nested_too_deep_is_a_validation_error(raw: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        json_body(raw, 10_000_000)
    assert caught.value.details == {"code": "too_deep", "max_depth": MAX_JSON_DEPTH}


def test_json_at_the_depth_limit_parses() -> None:
    raw = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_body(raw, 10_000_000) is not None
    assert json_body(b'{"a": [{"b": 1}]}', 1000) == {"a": [{"b": 1}]}


def test_depth_counts_containers_only() -> None:
    assert not json_depth_exceeds("text", 0)
    assert not json_depth_exceeds({"a": [1, 2, {"b": "c"}]}, 3)
    assert json_depth_exceeds({"a": [1, 2, {"b": []}]}, 3)
    assert json_depth_exceeds([[], [[[]]]], 3)  # the deepest branch counts


def test_chunk_files_that_look_like_json_are_bounded_too() -> None:
    """A text/csv chunk upload starting with '[' is parsed as JSON."""
    with pytest.raises(ValidationError) as caught:
        parse_chunks_payload("[" * 50_000 + "]" * 50_000)
    assert caught.value.details["code"] == "too_deep"


def test_loads_bounded_leaves_malformed_json_to_the_caller() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_bounded('{"a": ')


# --------------------------------------------------------------------------- declared choices


def test_every_enum_parameter_of_the_route_list_is_checked() -> None:
    """Driven by ROUTES: each enum parameter refuses a value outside its choices."""
    checked = 0
    for route in ROUTES:
        for name, allowed, is_array, _ in enum_choices(route):
            with pytest.raises(ValidationError) as caught:
                check_choices(route, MultiDict({name: ["pwned"]}))
            assert caught.value.details == {"field": name, "value": "pwned", "allowed": allowed}
            check_choices(route, MultiDict({name: [str(a) for a in allowed]}))
            if is_array:
                joined = ",".join(str(a) for a in allowed)
                check_choices(route, MultiDict({name: [joined]}))
                with pytest.raises(ValidationError):
                    check_choices(route, MultiDict({name: [f"{allowed[0]},pwned"]}))
            checked += 1
    assert checked >= 10  # list and detail (tier, status, sort, order, page_size), export


def test_integer_choices_compare_as_numbers() -> None:
    route = next(r for r in ROUTES if r.path == "/api/conversations" and r.method == "GET")
    check_choices(route, MultiDict({"page_size": ["50"]}))
    for bad in ("10", "lots", ""):
        with pytest.raises(ValidationError):
            check_choices(route, MultiDict({"page_size": [bad]}))


# --------------------------------------------------------------------------- token_use

CLIENT_ID = "unit-client"
POOL_ID = "us-east-1_unitpool"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "unit", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cognito_env(monkeypatch: pytest.MonkeyPatch, jwks_url: str) -> Iterator[str]:
    from chalicelib.config import reset_settings

    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL_ID}"
    for key, value in {
        "AUTH_MODE": "cognito",
        "COGNITO_USER_POOL_ID": POOL_ID,
        "COGNITO_CLIENT_ID": CLIENT_ID,
        "COGNITO_ISSUER": issuer,
        "COGNITO_JWKS_URL": jwks_url,
    }.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield issuer
    reset_settings()


def token(key: rsa.RSAPrivateKey, issuer: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": CLIENT_ID,
        "sub": "user-1",
        "token_use": "id",
        "custom:tenant_id": "tenant-unit",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "unit"})


def test_an_id_token_is_accepted(cognito_env: str, signing_key: rsa.RSAPrivateKey) -> None:
    from chalicelib.api.auth import authenticate

    who = authenticate({"authorization": f"Bearer {token(signing_key, cognito_env)}"})
    assert who.tenant_id == "tenant-unit" and who.user_id == "user-1"


@pytest.mark.parametrize("token_use", [None, "access", "", "ID", ["id"]])
def test_a_token_that_is_not_an_id_token_is_refused(
    cognito_env: str, signing_key: rsa.RSAPrivateKey, token_use: Any
) -> None:
    from chalicelib.api.auth import verify_token

    with pytest.raises(UnauthorizedError) as caught:
        verify_token(token(signing_key, cognito_env, token_use=token_use))
    assert "token_use" in caught.value.message
