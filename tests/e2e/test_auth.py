"""Sign-in and token verification on the local stack (moto's Cognito, verified like the cloud).

Every rejected token is a near miss of a valid one: the control test mints a token with
moto's own signing key that the API accepts, and each attack changes one thing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Api

pytestmark = pytest.mark.e2e


def moto_signing_key() -> jwt.PyJWK:
    """The private key moto signs every pool's tokens with (kid "dummy")."""
    from moto.utilities.utils import load_resource

    return jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))


def claims_for(stack: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    user = stack.demo_users[0]
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{stack.outputs['UserPoolId']}",
        "aud": stack.outputs["UserPoolClientId"],
        "sub": "minted-user",
        "token_use": "id",
        "email": user.email,
        "custom:tenant_id": user.tenant_id,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(stack: Any, key: Any = None, kid: str = "dummy", **overrides: Any) -> str:
    signing = key if key is not None else moto_signing_key().key
    return jwt.encode(
        claims_for(stack, **overrides), signing, algorithm="RS256", headers={"kid": kid}
    )


def call_with(stack: Any, token: str, path: str = "/api/datasets") -> tuple[int, Any]:
    status, body, _ = Api(stack.url, token).get(path)
    return status, body


def assert_unauthorized(status: int, body: Any, fragment: str = "") -> None:
    assert status == 401, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == "unauthorized"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert fragment.lower() in body["error"]["message"].lower()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------- open routes


def test_health_and_schema_are_open_and_say_cognito(stack: Any) -> None:
    anonymous = Api(stack.url)
    status, health, _ = anonymous.get("/api/health")
    assert status == 200 and health["auth"] == "cognito"
    assert [u["email"] for u in health["demo_users"]] == [u.email for u in stack.demo_users]
    status, doc, _ = anonymous.get("/api/openapi.json")
    assert status == 200
    assert doc["paths"]["/api/auth/login"]["post"]["security"] == []
    assert doc["paths"]["/api/health"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/api/datasets"]["get"]  # the global bearer rule


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/datasets"),
        ("POST", "/api/datasets"),
        ("GET", "/api/conversations"),
        ("POST", "/api/conversations/bulk-action"),
        ("GET", "/api/jobs/job_x"),
        ("POST", "/api/export/conversations"),
        ("GET", "/api/audit"),
    ],
)
def test_no_token_is_401_with_the_error_shape(stack: Any, method: str, path: str) -> None:
    status, body, _ = Api(stack.url).call(method, path, {"name": "x"} if method == "POST" else None)
    assert_unauthorized(status, body, "sign in")


@pytest.mark.parametrize(
    "header",
    ["Basic b3duZXI6cGFzcw==", "Bearer", "Bearer not.a.jwt", "Bearer a.b.c", "Token abc"],
)
def test_malformed_authorization_headers_are_401(stack: Any, header: str) -> None:
    status, body, _ = Api(stack.url).get("/api/datasets", headers={"Authorization": header})
    assert_unauthorized(status, body)


# --------------------------------------------------------------------------- sign-in


def test_sign_in_returns_a_token_for_the_users_tenant(stack: Any) -> None:
    for user in stack.demo_users:
        status, body, _ = Api(stack.url).post(
            "/api/auth/login", {"email": user.email, "password": user.password}
        )
        assert status == 200, body
        assert body["tenant_id"] == user.tenant_id and body["email"] == user.email
        assert 0 < body["expires_in"] <= 3600
        claims = jwt.decode(body["id_token"], options={"verify_signature": False})
        assert claims["custom:tenant_id"] == user.tenant_id and claims["token_use"] == "id"
        status, _ = call_with(stack, body["id_token"])
        assert status == 200


def test_sign_in_failures_do_not_reveal_which_part_was_wrong(stack: Any) -> None:
    user = stack.demo_users[0]
    anonymous = Api(stack.url)
    wrong_password = anonymous.post("/api/auth/login", {"email": user.email, "password": "nope"})
    unknown_user = anonymous.post(
        "/api/auth/login", {"email": "nobody@harbor-pine.example", "password": user.password}
    )
    for status, body, _ in (wrong_password, unknown_user):
        assert_unauthorized(status, body, "incorrect email or password")
    assert wrong_password[1] == unknown_user[1]
    for bad in ({"email": user.email}, {"email": "not-an-email", "password": "x"}, {}):
        status, body, _ = anonymous.post("/api/auth/login", bad)
        assert status == 400 and body["error"]["code"] == "validation_error", body


def test_one_users_password_does_not_open_the_other_account(stack: Any) -> None:
    a, b = stack.demo_users
    status, body, _ = Api(stack.url).post(
        "/api/auth/login", {"email": b.email, "password": a.password}
    )
    assert_unauthorized(status, body)


# --------------------------------------------------------------------------- token attacks


def test_control_a_minted_token_with_moto_key_is_accepted(stack: Any) -> None:
    """The attacks below are near misses of this token, so they fail for their one change."""
    status, body = call_with(stack, mint(stack))
    assert status == 200, body


def test_expired_token_is_401(stack: Any) -> None:
    now = int(time.time())
    status, body = call_with(stack, mint(stack, iat=now - 7200, exp=now - 3600))
    assert_unauthorized(status, body, "expired")


def test_token_without_expiry_is_401(stack: Any) -> None:
    status, body = call_with(stack, mint(stack, exp=None))
    assert_unauthorized(status, body, "exp")


def test_tampered_payload_is_401(stack: Any, api: Api) -> None:
    """A real token whose tenant claim is swapped for the other tenant (signature kept)."""
    header, payload, signature = str(api.token).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["custom:tenant_id"] = stack.demo_users[1].tenant_id
    forged = ".".join([header, b64(json.dumps(claims).encode()), signature])
    status, body = call_with(stack, forged)
    assert_unauthorized(status, body, "signature")


def test_tampered_signature_is_401(stack: Any, api: Api) -> None:
    header, payload, signature = str(api.token).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    status, body = call_with(stack, ".".join([header, payload, b64(bytes(raw))]))
    assert_unauthorized(status, body, "signature")


def test_token_signed_by_another_key_is_401(stack: Any) -> None:
    """Right issuer, audience and kid, but signed by a key that is not the pool's."""
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = call_with(stack, mint(stack, key=foreign))
    assert_unauthorized(status, body, "signature")
    status, body = call_with(stack, mint(stack, key=foreign, kid="foreign-kid"))
    assert_unauthorized(status, body)


def test_token_from_a_foreign_user_pool_is_401(stack: Any) -> None:
    """A genuine moto token (same signing key!) for a user of another pool: only the
    issuer check stops it, even when the tenant claim names a real tenant."""
    idp = stack.client("cognito-idp")
    pool = idp.create_user_pool(
        PoolName="someone-elses-pool",
        UsernameAttributes=["email"],
        Schema=[{"Name": "tenant_id", "AttributeDataType": "String", "Mutable": False}],
    )["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="theirs", ReadAttributes=["email", "custom:tenant_id"]
    )["UserPoolClient"]["ClientId"]
    email, password = "intruder@elsewhere.example", "Intruder-pass-2026"
    idp.admin_create_user(
        UserPoolId=pool,
        Username=email,
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "custom:tenant_id", "Value": stack.demo_users[0].tenant_id},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    token = idp.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]["IdToken"]
    assert jwt.decode(token, options={"verify_signature": False})["custom:tenant_id"] == (
        stack.demo_users[0].tenant_id
    )
    status, body = call_with(stack, token)
    assert_unauthorized(status, body, "issuer")
    # ...and the same forgery minted directly with the foreign pool's issuer.
    status, body = call_with(
        stack, mint(stack, iss=f"https://cognito-idp.us-east-1.amazonaws.com/{pool}")
    )
    assert_unauthorized(status, body, "issuer")


def test_wrong_audience_is_401(stack: Any) -> None:
    """A token for another app client of the same pool (moto-issued), and a minted one."""
    idp = stack.client("cognito-idp")
    pool = stack.outputs["UserPoolId"]
    other_client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="another-app", ReadAttributes=["email", "custom:tenant_id"]
    )["UserPoolClient"]["ClientId"]
    user = stack.demo_users[0]
    token = idp.initiate_auth(
        ClientId=other_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user.email, "PASSWORD": user.password},
    )["AuthenticationResult"]["IdToken"]
    status, body = call_with(stack, token)
    assert_unauthorized(status, body, "audience")
    status, body = call_with(stack, mint(stack, aud="some-other-client"))
    assert_unauthorized(status, body, "audience")


def test_access_token_is_not_an_id_token(stack: Any) -> None:
    user = stack.demo_users[0]
    access = stack.client("cognito-idp").initiate_auth(
        ClientId=stack.outputs["UserPoolClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user.email, "PASSWORD": user.password},
    )["AuthenticationResult"]["AccessToken"]
    status, body = call_with(stack, access)
    assert_unauthorized(status, body)
    status, body = call_with(stack, mint(stack, token_use="access"))
    assert_unauthorized(status, body, "id token")


def test_token_without_token_use_is_401(stack: Any) -> None:
    """Signed by the pool's key, right issuer, audience and tenant, but not saying it is an
    ID token: only an ID token carries the tenant claim the API trusts."""
    status, body = call_with(stack, mint(stack, token_use=None))
    assert_unauthorized(status, body, "token_use")
    for other in ("", "ID", "refresh", ["id"]):
        status, body = call_with(stack, mint(stack, token_use=other))
        assert_unauthorized(status, body, "token_use")


def test_token_without_a_tenant_is_401(stack: Any) -> None:
    status, body = call_with(stack, mint(stack, **{"custom:tenant_id": None}))
    assert_unauthorized(status, body, "tenant")


def test_unsigned_and_algorithm_confusion_tokens_are_401(stack: Any) -> None:
    claims = claims_for(stack)
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    status, body = call_with(stack, unsigned)
    assert_unauthorized(status, body)
    # HS256 "signed" with the public key's modulus as the secret: must not be accepted.
    public = moto_signing_key().key.public_key()
    secret = str(public.public_numbers().n).encode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "dummy"}).encode())
    body_part = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{header}.{body_part}".encode(), hashlib.sha256).digest()
    status, body = call_with(stack, f"{header}.{body_part}.{b64(sig)}")
    assert_unauthorized(status, body)


def test_a_tenant_header_or_parameter_does_not_change_the_tenant(
    stack: Any, api: Api, api_b: Api
) -> None:
    status, created, _ = api_b.post("/api/datasets", {"name": "Northwind only (header test)"})
    assert status == 201
    b_tenant = stack.demo_users[1].tenant_id
    for headers, path in (
        ({"X-Tenant-Id": b_tenant}, "/api/datasets"),
        ({"X-Amzn-Tenant": b_tenant}, f"/api/datasets?tenant_id={b_tenant}"),
    ):
        status, listed, _ = api.get(path, headers=headers)
        assert status == 200
        assert created["dataset_id"] not in {d["dataset_id"] for d in listed["items"]}
    status, _, _ = api.get(
        f"/api/datasets/{created['dataset_id']}?tenant_id={b_tenant}",
        headers={"X-Tenant-Id": b_tenant},
    )
    assert status == 404


# --------------------------------------------------------------------------- auth first

MALFORMED = b'{"oops": '
DEEP = b"[" * 50_000 + b"]" * 50_000


def bad_query(route: Any) -> str:
    """Every parameter the route declares, each with a value it must refuse (required
    ones included), plus one it does not know."""
    bad = {"integer": "x", "number": "nan", "boolean": "maybe", "array": "pwned"}
    pairs = [(name, bad.get(schema.get("type"), "")) for name, schema, _ in route.query]
    pairs.append(("unknown_param", "pwned"))
    return "?" + urllib.parse.urlencode(pairs)


def unauthenticated_attempts(route: Any) -> list[tuple[str, str, bytes | None, str]]:
    """(label, query, body, content type) a route must answer with 401 without a token."""
    attempts: list[tuple[str, str, bytes | None, str]] = [
        ("no input", "", None, "application/json"),
        ("bad params", bad_query(route), None, "application/json"),
    ]
    if route.query:
        attempts.append(("required params missing", "", None, "application/json"))
    if route.method != "GET":
        limit = 1_100_000  # over the default body limit (MAX_BODY_BYTES)
        attempts += [
            ("malformed JSON", bad_query(route), MALFORMED, "application/json"),
            ("deep JSON", "", DEEP, "application/json"),
            ("wrong type", "", b'{"name": 42, "count": "x", "ids": {}}', "application/json"),
            ("unsupported media type", "", b"<x/>", "application/xml"),
            ("oversized body", "", b'{"name": "' + b"x" * limit + b'"}', "application/json"),
        ]
    return attempts


def test_every_route_authenticates_before_it_reads_its_input(stack: Any) -> None:
    """No token (or a bad one) with bad path ids, parameters and bodies: every route of
    the OpenAPI document answers 401 first, never a 400, 404, 405, 413, 415 or 422 that
    would tell an anonymous caller something about its input. Only health, the document
    and sign-in are open."""
    from chalicelib.api.openapi import ROUTES

    anonymous = Api(stack.url)
    failures: list[str] = []
    checked = 0
    for route in ROUTES:
        path = re.sub(r"\{[^}]+\}", "no_such_id_0", route.path)
        if route.public:
            status, body, _ = anonymous.call(route.method, path, raw=MALFORMED)
            if status == 401:
                failures.append(f"{route.method} {route.path} is public but answered 401")
            continue
        for label, query, raw, content_type in unauthenticated_attempts(route):
            for headers in ({}, {"Authorization": "Bearer not.a.token"}):
                status, body, _ = anonymous.call(
                    route.method, path + query, raw=raw, content_type=content_type, headers=headers
                )
                checked += 1
                code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                if status != 401 or code != "unauthorized":
                    who = "a bad token" if headers else "no token"
                    failures.append(
                        f"{route.method} {route.path} ({label}, {who}): {status} {body}"
                    )
    assert not failures, "\n".join(failures)
    assert checked > 4 * len(ROUTES)


def test_the_routes_that_checked_input_first_now_answer_401(stack: Any) -> None:
    """generate, generate-batch and status once answered 400 to an anonymous caller."""
    anonymous = Api(stack.url)
    for method, path, body in (
        ("POST", "/api/conversations/generate", {}),
        ("POST", "/api/conversations/generate-batch", {"conversation_ids": "nope"}),
        ("GET", "/api/conversations/status", None),
        ("GET", "/api/conversations/status?job_id=", None),
    ):
        status, answer, _ = anonymous.call(method, path, body)
        assert_unauthorized(status, answer, "sign in")
