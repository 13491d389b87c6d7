"""AWS clients built on one botocore loader per process: each service model is parsed once, not once per client."""
from __future__ import annotations

import functools
from typing import Any


@functools.cache
def loader() -> Any:
    """The process's botocore data loader (it caches every JSON model it reads; a fresh session would re-read)."""
    from botocore.loaders import create_loader

    return create_loader()


def session() -> Any:
    """A new botocore session (one per thread: client creation is not thread-safe) on the shared loader."""
    from botocore.session import get_session

    fresh = get_session()
    fresh.register_component("data_loader", loader())
    return fresh


def client(service: str, **kwargs: Any) -> Any:
    """`boto3.client(service, **kwargs)` without re-reading the service's model and the endpoint rules."""
    import boto3

    return boto3.session.Session(botocore_session=session()).client(service, **kwargs)
