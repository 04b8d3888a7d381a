from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ClientFactory


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The admin client, on a service that lets the histories register their webhook on
    127.0.0.1 (nothing is sent to it)."""
    async with make_client(webhook_allow_hosts="127.0.0.1") as opened:
        yield opened
