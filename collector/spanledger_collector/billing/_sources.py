"""Where billing files come from: local files and directories, and ``s3://bucket/prefix`` (AWS Data Exports)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import BillingImportError

__all__ = ["BillingFile", "billing_files"]

_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".parquet", ".parq", ".json")


@dataclass(frozen=True)
class BillingFile:
    local_path: Path
    display_name: str


def _is_billing_file(name: str) -> bool:
    return name.lower().endswith(_SUFFIXES)


def _local(path_text: str) -> list[BillingFile]:
    path = Path(path_text)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and _is_billing_file(p.name))
        if not found:
            raise BillingImportError(
                f"{path_text}: no billing files (.csv, .csv.gz, .parquet, .json) in this directory"
            )
        return [BillingFile(p, str(p)) for p in found]
    if not path.is_file():
        raise BillingImportError(f"{path_text}: no such file or directory")
    return [BillingFile(path, str(path))]


def _s3(uri: str, download_dir: Path) -> list[BillingFile]:
    try:
        import boto3
        import botocore.exceptions
    except ImportError as error:  # pragma: no cover - boto3 ships with the collector extra
        raise BillingImportError(f"{uri}: reading from S3 needs boto3: pip install 'spanledger[collector]'") from error
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    client = boto3.client("s3")
    files: list[BillingFile] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not _is_billing_file(key):
                    continue
                target = download_dir / bucket / key
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(target))
                files.append(BillingFile(target, f"s3://{bucket}/{key}"))
    except botocore.exceptions.BotoCoreError as error:
        raise BillingImportError(f"{uri}: {error}") from error
    except botocore.exceptions.ClientError as error:
        raise BillingImportError(f"{uri}: {error}") from error
    if not files:
        raise BillingImportError(f"{uri}: no billing files (.csv, .csv.gz, .parquet, .json) under this prefix")
    return sorted(files, key=lambda f: f.display_name)


@contextlib.contextmanager
def billing_files(paths: Sequence[str]) -> Iterator[list[BillingFile]]:
    """Every billing file under ``paths``; S3 objects are downloaded to a temporary directory first."""
    with tempfile.TemporaryDirectory(prefix="spanledger-billing-") as download_dir:
        files: list[BillingFile] = []
        for path in paths:
            files.extend(_s3(path, Path(download_dir)) if path.startswith("s3://") else _local(path))
        yield files
