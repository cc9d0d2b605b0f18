from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace

REDIS_URL = "redis://127.0.0.1:6379/0"


def delete_prefix(client: redis.Redis[Any], prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis[Any]]:
    client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def keys(redis_client: redis.Redis[Any]) -> Iterator[KeySpace]:
    """A key space no other test (of ours or of other engineers) shares; wiped afterwards."""
    space = KeySpace(f"test-ratelimit-{uuid.uuid4().hex[:12]}:")
    yield space
    delete_prefix(redis_client, space.prefix)
