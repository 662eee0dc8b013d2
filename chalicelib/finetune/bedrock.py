"""Amazon Bedrock model customization behind the ModelCustomization port (boto3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BedrockCustomization:
    """``bedrock`` control-plane calls. Jobs are addressed by name: Bedrock accepts a
    name or an ARN as ``jobIdentifier``, and the name is also what moto looks up."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_job(self, request: Mapping[str, Any]) -> str:
        return str(self._client.create_model_customization_job(**request)["jobArn"])

    def get_job(self, job_name: str) -> Mapping[str, Any]:
        response: Mapping[str, Any] = self._client.get_model_customization_job(
            jobIdentifier=job_name
        )
        return response

    def stop_job(self, job_name: str) -> None:
        self._client.stop_model_customization_job(jobIdentifier=job_name)
