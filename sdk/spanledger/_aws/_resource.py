"""Billed resource identity of AWS calls: ARNs and account.

No network calls are made here (no STS): the account comes from an ARN the caller passed, the
process's resource (``cloud.account.id``) or ``AWS_ACCOUNT_ID``; when none is known the ARN keeps an
empty account field, which the billing join tolerates (it matches region + resource type + name).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import semconv

__all__ = [
    "account_from_arn",
    "bucket_arn",
    "process_account",
    "sagemaker_endpoint_arn",
]


def account_from_arn(arn: str) -> str | None:
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[4]:
        return parts[4]
    return None


def bucket_arn(bucket: str) -> str:
    """The bucket's ARN; an access point or Outposts ARN passed as ``Bucket`` is already the resource id."""
    if bucket.startswith("arn:"):
        return bucket
    return f"arn:aws:s3:::{bucket}"


def sagemaker_endpoint_arn(endpoint_name: str, region: str | None, account: str | None) -> str:
    # SageMaker lowercases endpoint names in ARNs (and in the CUR's resource id).
    return f"arn:aws:sagemaker:{region or ''}:{account or ''}:endpoint/{endpoint_name.lower()}"


def process_account(resource_attributes: Mapping[str, Any]) -> str | None:
    account = resource_attributes.get(semconv.CLOUD_ACCOUNT_ID) or os.environ.get("AWS_ACCOUNT_ID")
    return str(account) if account else None
