"""AWS for the engines: bounded clients, one-line errors, S3 folders.

Model: every call goes through a client made by `client(service, region)`: connect
timeout 10 s, read timeout 30 s (S3 transfers 60 s), at most 4 attempts in botocore's
standard retry mode, so no call waits longer than about two minutes. The endpoint is
botocore's own choice, which honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
(moto's server in the tests). The region is `--region`, else AWS_REGION, else
AWS_DEFAULT_REGION; credentials come from the usual chain. Neither found is a
PrerequisiteError before any call; AWS refusing or not answering is turned by
`aws_errors` into one line: bad input (no such queue, job, bucket) a ConfigError,
access denied or no credentials a PrerequisiteError, anything else a ReproError.

A folder in S3 is every file under `s3://BUCKET/PREFIX/<relative path>`. `put_folder`
uploads the files in an order the caller gives (a marker file last, so its presence
means the upload finished); `get_folder` downloads every key under a prefix and
refuses keys that would land outside the target folder.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from repro.harness.errors import ConfigError, PrerequisiteError, ReproError

CONNECT_TIMEOUT_S, READ_TIMEOUT_S, TRANSFER_READ_TIMEOUT_S, MAX_ATTEMPTS = 10, 30, 60, 4
REGION_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION")
DOCS = "docs/engines.md"
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# the codes AWS answers for bad input: the caller named something that is not there
NOT_THERE = {"ClientException", "NoSuchBucket", "NoSuchKey", "404", "NotFound",
             "InvalidParameterValue", "InvalidParameterValueException", "ValidationError"}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403",
          "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
          "UnrecognizedClientException", "InvalidClientTokenId"}


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str = ""  # without leading or trailing "/"

    @staticmethod
    def parse(text: str) -> S3Url:
        m = re.fullmatch(r"s3://([^/]+)(?:/(.*))?", text.strip())
        if not m or not BUCKET.fullmatch(m.group(1)):
            raise ValueError(f"expected s3://BUCKET[/PREFIX] (a bucket is 3-63 lowercase "
                             f"letters, digits, '.' or '-'), got {text!r}")
        prefix = (m.group(2) or "").strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ValueError(f"a prefix has no empty, '.' or '..' parts, got {text!r}")
        return S3Url(m.group(1), prefix)

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def region(given: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    for value in (given, *(env.get(v) for v in REGION_VARS)):
        if value and value.strip():
            return value.strip()
    raise PrerequisiteError("no AWS region given", "pass --region or export AWS_REGION")


def client(service: str, region_name: str, *, transfer: bool = False) -> Any:
    from repro.harness.extras import need
    boto3 = need("boto3")
    from botocore.config import Config
    session = boto3.session.Session(region_name=region_name)
    if session.get_credentials() is None:
        raise PrerequisiteError("no AWS credentials found",
                                "export AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,"
                                " or run where an instance or job role applies")
    cfg = Config(region_name=region_name, connect_timeout=CONNECT_TIMEOUT_S,
                 read_timeout=TRANSFER_READ_TIMEOUT_S if transfer else READ_TIMEOUT_S,
                 retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
    return session.client(service, config=cfg)


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """AWS's refusals and silences as one line (see the module's docstring)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise PrerequisiteError(f"{what}: {exc}", "configure AWS credentials") from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), " ".join(str(err.get("Message", "")).split())
        said = f"{what}: {code}: {message}" if message else f"{what}: {code}"
        if code in DENIED:
            raise PrerequisiteError(said, f"grant the IAM policy in {DOCS}") from exc
        if code in NOT_THERE or exc.response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode") in (400, 404):
            raise ConfigError(said) from exc
        raise ReproError(said) from exc
    except BotoCoreError as exc:  # no answer in time, endpoint unreachable, bad response
        raise ReproError(f"{what}: {exc}") from exc


def put_folder(s3: Any, url: S3Url, folder: Path, under: str, files: Sequence[Path]) -> int:
    """Upload `files` (inside `folder`, in this order) to `url/under/<relative path>`;
    the number of files uploaded."""
    for path in files:
        key = url.key(under, path.relative_to(folder).as_posix())
        with aws_errors(f"uploading {path.name} to s3://{url.bucket}/{key}"):
            s3.upload_file(str(path), url.bucket, key)
    return len(files)


def list_keys(s3: Any, url: S3Url, under: str, limit: int | None = None) -> list[str]:
    """Every key under `url/under/` (relative to it); the first `limit` only, if given."""
    base = url.key(under) + "/"
    keys: list[str] = []
    extra = {"PaginationConfig": {"MaxItems": limit}} if limit else {}
    with aws_errors(f"listing s3://{url.bucket}/{base}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.bucket,
                                                                  Prefix=base, **extra):
            keys += [obj["Key"][len(base):] for obj in page.get("Contents", [])]
    return keys


def get_folder(s3: Any, url: S3Url, under: str, keys: Sequence[str], folder: Path) -> int:
    """Download `url/under/<key>` for each key into `folder/<key>`."""
    for rel in keys:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or any(p in ("..", ".") for p in parts):
            raise ReproError(f"refusing S3 key {rel!r} under s3://{url.bucket}/"
                             f"{url.key(under)}: it would land outside {folder}")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        key = url.key(under, rel)
        with aws_errors(f"downloading s3://{url.bucket}/{key}"):
            s3.download_file(url.bucket, key, str(target))
    return len(keys)
