"""Where billing files come from: local files and directories, and ``s3://bucket/prefix`` (AWS Data Exports)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ._errors import BillingImportError, PathNotAllowedError

__all__ = ["BillingFile", "billing_files", "check_allowed"]

_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".parquet", ".parq", ".json")


@dataclass(frozen=True)
class BillingFile:
    local_path: Path
    display_name: str


def _is_billing_file(name: str) -> bool:
    return name.lower().endswith(_SUFFIXES)


def _inside(path_text: str, roots: Sequence[str]) -> bool:
    """Whether ``path_text`` lies in one of ``roots`` (local directories, ``s3://bucket/prefix``); no file is read."""
    if path_text.startswith("s3://"):
        return any(path_text == root or path_text.startswith(root.rstrip("/") + "/") for root in roots)
    resolved = os.path.realpath(path_text)  # symbolic links and ".." resolved: a link out of a root is outside it
    directories = [os.path.realpath(root) for root in roots if not root.startswith("s3://")]
    return any(os.path.commonpath([resolved, directory]) == directory for directory in directories)


def check_allowed(path_text: str, within: Sequence[str] | None) -> None:
    # The same message whether or not the path exists: the answer must not tell what is on the host.
    if within is not None and not _inside(path_text, within):
        raise PathNotAllowedError(
            f"{path_text}: not inside the directories this collector imports from "
            "(service.telemetry.metrics.import_directories); upload the file instead"
        )


def _local(path_text: str, within: Sequence[str] | None) -> list[BillingFile]:
    check_allowed(path_text, within)
    path = Path(path_text)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and _is_billing_file(p.name))
        for file in found:
            check_allowed(str(file), within)
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
    # The object the URI names, or those under it as a directory: not its siblings that merely start alike
    # (s3://bucket/exports is not s3://bucket/exports-private/).
    directory = prefix.rstrip("/") + "/" if prefix.rstrip("/") else ""
    client = boto3.client("s3")
    files: list[BillingFile] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not _is_billing_file(key) or not (key == prefix or key.startswith(directory)):
                    continue
                # A local name of our own: a key is any text ("../../x.csv" too), never a path to write to.
                target = Path(tempfile.mkdtemp(dir=download_dir)) / PurePosixPath(key).name
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
def billing_files(
    paths: Sequence[str | BillingFile], *, within: Sequence[str] | None = None
) -> Iterator[list[BillingFile]]:
    """Every billing file under ``paths``; S3 objects are downloaded to a temporary directory first.

    A :class:`BillingFile` is taken as it is (content uploaded to the admin API, saved by the caller).

    ``within``: when given, only paths inside these directories (or ``s3://bucket/prefix``) are read, and
    :class:`PathNotAllowedError` is raised, before any file is touched, for any other.
    """
    with tempfile.TemporaryDirectory(prefix="spanledger-billing-") as download_dir:
        files: list[BillingFile] = []
        for path in paths:
            if isinstance(path, BillingFile):
                files.append(path)
            elif path.startswith("s3://"):
                check_allowed(path, within)
                files.extend(_s3(path, Path(download_dir)))
            else:
                files.extend(_local(path, within))
        yield files
