"""The API manual works on a closed network: its pages load only assets mot serves."""

import re
from urllib.parse import urljoin

import httpx
import pytest

from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_manual_references_only_local_assets_that_answer(
    make_client: ClientFactory, page: str
) -> None:
    async with make_client(scopes=()) as client:
        response = await client.get(page)
        assert response.status_code == 200
        html = response.text
        assert "cdn" not in html.lower()
        urls = [a or b for a, b in ASSET.findall(html)]
        assert any(url.endswith(".js") for url in urls), urls
        for url in urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
            asset = await client.get(urljoin(page, url))
            assert asset.status_code == 200, url
            assert asset.content


async def test_the_assets_are_served_with_their_types(client: httpx.AsyncClient) -> None:
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    style = await client.get("/docs-assets/swagger-ui.css")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert style.headers["content-type"].startswith("text/css")
