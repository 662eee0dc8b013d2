"""Amazon Bedrock model customization behind the ModelCustomization port (boto3).

botocore's errors stay here: each call's refusal or failure leaves as an
``OutsideServiceError`` whose message is Bedrock's reason ("Code: Message")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import OutsideServiceError


def reason(e: Exception) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(e)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as e:
        raise OutsideServiceError(reason(e)) from e


class BedrockCustomization:
    """``bedrock`` control-plane calls. Jobs are addressed by name: Bedrock accepts a
    name or an ARN as ``jobIdentifier``, and the name is also what moto looks up."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_job(self, request: Mapping[str, Any]) -> str:
        with _translated():
            return str(self._client.create_model_customization_job(**request)["jobArn"])

    def get_job(self, job_name: str) -> Mapping[str, Any]:
        with _translated():
            response: Mapping[str, Any] = self._client.get_model_customization_job(
                jobIdentifier=job_name
            )
        return response

    def stop_job(self, job_name: str) -> None:
        with _translated():
            self._client.stop_model_customization_job(jobIdentifier=job_name)
