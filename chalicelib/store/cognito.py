"""Cognito's USER_PASSWORD_AUTH sign-in (boto3), with botocore's errors turned into the
domain's: a throttled sign-in is a 429, one the caller can cause a 401 (an unknown user
and a wrong password read the same, so whether an email exists is not revealed)."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import RateLimitedError, UnauthorizedError

# Cognito errors a caller can cause -> the 401's message.
SIGN_IN_ERRORS: dict[str, str] = {
    "NotAuthorizedException": "incorrect email or password",
    "UserNotFoundException": "incorrect email or password",
    "UserNotConfirmedException": "this account is not confirmed yet",
    "PasswordResetRequiredException": "this account must reset its password first",
    "InvalidParameterException": "incorrect email or password",
}
THROTTLED = ("TooManyRequestsException", "LimitExceededException")

_clients: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()


def _client(region: str, endpoint_url: str | None) -> Any:
    import boto3

    with _lock:
        if (region, endpoint_url) not in _clients:
            _clients[(region, endpoint_url)] = boto3.client(
                "cognito-idp", region_name=region, endpoint_url=endpoint_url
            )
        return _clients[(region, endpoint_url)]


class CognitoPasswordAuth:
    """The PasswordAuth port: InitiateAuth's answer (``AuthenticationResult``, or a
    ``ChallengeName``) for an email and password."""

    def __init__(self, region: str, endpoint_url: str | None, client_id: str | None) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._client_id = client_id

    def password_auth(self, email: str, password: str) -> dict[str, Any]:
        if not self._client_id:
            raise UnauthorizedError("sign-in is not configured (no COGNITO_CLIENT_ID)")
        try:
            result: dict[str, Any] = _client(self._region, self._endpoint_url).initiate_auth(
                ClientId=self._client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in THROTTLED:
                raise RateLimitedError("too many sign-in attempts; try again shortly", 30) from e
            if code in SIGN_IN_ERRORS:
                raise UnauthorizedError(SIGN_IN_ERRORS[code]) from e
            raise
        return result
