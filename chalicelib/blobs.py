"""Object storage: S3 in AWS, a folder per bucket under S3_LOCAL_DIR in the local run."""
from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import IO

from chalicelib.config import get_settings


@lru_cache(maxsize=4)
def _s3(region: str):
    from botocore.config import Config

    from chalicelib import aws

    # SigV4 on the regional endpoint: presigned links then work at once for buckets outside us-east-1.
    return aws.client("s3", region_name=region,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))


def _local(bucket: str, key: str) -> Path | None:
    root = get_settings().s3_local_dir
    if not root:
        return None
    path = (Path(root) / bucket / key).resolve()
    if Path(root).resolve() not in path.parents:
        raise ValueError(f"key escapes the bucket: {key}")
    return path


def get_object(bucket: str, key: str) -> bytes:
    path = _local(bucket, key)
    if path is not None:
        return path.read_bytes()
    return _s3(get_settings().region).get_object(Bucket=bucket, Key=key)["Body"].read()


def put_object(bucket: str, key: str, data: bytes, content_type: str) -> None:
    path = _local(bucket, key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    _s3(get_settings().region).put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def is_local() -> bool:
    """Whether objects live in folders (S3_LOCAL_DIR): there is no S3 to sign links for."""
    return bool(get_settings().s3_local_dir)


def put_file(bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
    """Store a file object from its current position, streamed (S3: multipart above 8 MiB, never all in memory)."""
    path = _local(bucket, key)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            shutil.copyfileobj(fileobj, target)
        return
    _s3(get_settings().region).upload_fileobj(fileobj, bucket, key, ExtraArgs={"ContentType": content_type})


def local_path(bucket: str, key: str) -> Path | None:
    """Where an object lives in the local run (None in AWS)."""
    return _local(bucket, key)


def delete_object(bucket: str, key: str) -> None:
    path = _local(bucket, key)
    if path is not None:
        path.unlink(missing_ok=True)
        return
    _s3(get_settings().region).delete_object(Bucket=bucket, Key=key)


def presigned_get(bucket: str, key: str, seconds: int, filename: str | None = None) -> str:
    """A link that downloads the object without credentials for `seconds` (S3 only: see is_local)."""
    params = {"Bucket": bucket, "Key": key}
    if filename:
        params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
    return _s3(get_settings().region).generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)


class InboundMail:
    """Inbound email in object storage: the messages SES stores, and the attachments kept from them."""

    def read(self, bucket: str, key: str) -> bytes:
        return get_object(bucket, key)

    def keep_attachment(self, key: str, data: bytes, content_type: str) -> str:
        """Store an attachment in the attachments bucket; the key it is kept under."""
        put_object(get_settings().attachments_bucket, key, data, content_type)
        return key
