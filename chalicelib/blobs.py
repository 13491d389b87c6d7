"""Object storage: S3 in AWS, a folder per bucket under S3_LOCAL_DIR in the local run."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalicelib.config import get_settings


@lru_cache(maxsize=4)
def _s3(region: str):
    import boto3

    return boto3.client("s3", region_name=region)


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
