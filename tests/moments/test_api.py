import httpx
import pytest

from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio


async def test_create_and_read_a_moment(client: httpx.AsyncClient) -> None:
    body = {
        "key": "service-desk.first-voice",
        "name": "First voice on the line",
        "channel": "call",
        "stage": "request",
        "owner_team": "service-desk",
        "target_negative_rate": 0.05,
        "description": "The first human voice a caller hears.",
    }
    created = await client.post("/v1/moments", json=body)
    assert created.status_code == 201
    moment = created.json()
    assert {k: moment[k] for k in body} == body
    assert moment["auto_registered"] is False
    assert moment["archived"] is False
    assert moment["created_at"].endswith("Z")
    assert (await client.get("/v1/moments/service-desk.first-voice")).json() == moment


async def test_target_defaults_to_the_setting_unless_given_as_null(
    make_client: ClientFactory,
) -> None:
    async with make_client(default_target_negative_rate=0.2) as client:
        defaulted = (await client.post("/v1/moments", json={"key": "a.one"})).json()
        cleared = (
            await client.post("/v1/moments", json={"key": "a.two", "target_negative_rate": None})
        ).json()
        assert defaulted["target_negative_rate"] == 0.2
        assert defaulted["name"] == "a.one"
        assert cleared["target_negative_rate"] is None


async def test_duplicate_key_is_a_conflict(client: httpx.AsyncClient) -> None:
    await client.post("/v1/moments", json={"key": "portal.first-link"})
    response = await client.post("/v1/moments", json={"key": "portal.first-link"})
    assert response.status_code == 409
    assert response.json()["details"][0]["field"] == "body.key"


@pytest.mark.parametrize(
    "key", ["Portal.Link", "portal..link", "-portal", "portal.", "portal link", "a" * 101, ""]
)
async def test_malformed_keys_are_refused(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post("/v1/moments", json={"key": key})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.key"


async def test_target_must_be_a_share(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/moments", json={"key": "a.b", "target_negative_rate": 1.5})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body.target_negative_rate"


async def test_list_filters_and_paginates_in_key_order(client: httpx.AsyncClient) -> None:
    for i in range(7):
        channel = "call" if i % 2 else "portal"
        body = {"key": f"m.k{i}", "channel": channel, "owner_team": f"team-{i % 3}"}
        await client.post("/v1/moments", json=body)
    await client.patch("/v1/moments/m.k3", json={"archived": True})

    keys: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/moments", params=params)).json()
        keys += [m["key"] for m in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert keys == [f"m.k{i}" for i in range(7)]

    async def listed(**params: str) -> list[str]:
        return [m["key"] for m in (await client.get("/v1/moments", params=params)).json()["data"]]

    assert await listed(channel="call") == ["m.k1", "m.k3", "m.k5"]
    assert await listed(owner_team="team-0") == ["m.k0", "m.k3", "m.k6"]
    assert await listed(archived="true") == ["m.k3"]
    assert "m.k3" not in await listed(archived="false")


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/moments", json={"key": "email.update", "stage": "progress", "owner_team": "desk"}
    )
    response = await client.patch(
        "/v1/moments/email.update",
        json={"name": "Ticket update", "stage": None, "auto_follow_up": False, "archived": True},
    )
    assert response.status_code == 200
    moment = response.json()
    assert moment["name"] == "Ticket update"
    assert moment["stage"] is None
    assert moment["owner_team"] == "desk"
    assert moment["auto_follow_up"] is False
    assert moment["archived"] is True
    assert moment["updated_at"] >= moment["created_at"]


async def test_patch_cannot_clear_required_fields(client: httpx.AsyncClient) -> None:
    await client.post("/v1/moments", json={"key": "email.update"})
    for field in ("name", "channel", "archived"):
        response = await client.patch("/v1/moments/email.update", json={field: None})
        assert response.status_code == 422, field
        assert response.json()["details"][0]["field"] == f"body.{field}"


async def test_patch_refuses_unknown_fields_and_unknown_moments(client: httpx.AsyncClient) -> None:
    await client.post("/v1/moments", json={"key": "email.update"})
    assert (await client.patch("/v1/moments/email.update", json={"key": "x.y"})).status_code == 422
    assert (await client.patch("/v1/moments/no.such", json={"name": "x"})).status_code == 404
