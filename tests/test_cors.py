"""Browsers of the origins named in `MOT_CORS_ORIGINS` may call the API; no others."""

import httpx
import pytest

from app.config import Settings
from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio

DASHBOARD = "https://dash.example.org"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-encoding, idempotency-key",
    }


async def test_a_preflight_from_a_listed_origin_is_allowed(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=f"{DASHBOARD}, http://localhost:3000") as client:
        response = await client.options("/v1/touchpoints/batch", headers=_preflight(DASHBOARD))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == DASHBOARD
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "x-api-key", "content-encoding", "idempotency-key"} <= {
            name.strip() for name in allowed.split(",")
        }
        assert "POST" in response.headers["access-control-allow-methods"]
        # An actual call names the origin back, and shows the replay header to the page.
        answered = await client.get("/v1/moments", headers={"origin": DASHBOARD})
        assert answered.headers["access-control-allow-origin"] == DASHBOARD
        assert "idempotent-replayed" in answered.headers["access-control-expose-headers"].lower()


async def test_a_preflight_from_another_origin_is_refused(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=DASHBOARD) as client:
        response = await client.options(
            "/v1/touchpoints/batch", headers=_preflight("https://evil.example")
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers


async def test_no_origin_is_allowed_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/moments", headers={"origin": DASHBOARD})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_origins_are_checked_and_normalised() -> None:
    settings = Settings(_env_file=None, cors_origins=f" {DASHBOARD}/ ,http://localhost:3000,")
    assert settings.cors_origin_list == [DASHBOARD, "http://localhost:3000"]
    with pytest.raises(ValueError, match="origins"):
        Settings(_env_file=None, cors_origins="dash.example.org/path")
