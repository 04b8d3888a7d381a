"""Webhooks reach public addresses only, unless `MOT_WEBHOOK_ALLOW_HOSTS` lists others:
a `manage` key must not make the service probe the network it runs in."""

from ipaddress import ip_address
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.db import Database, utcnow
from app.webhooks import service
from app.webhooks.addresses import AllowList, kind
from app.webhooks.models import Webhook
from tests.conftest import ClientFactory
from tests.payloads import touchpoint
from tests.webhooks.conftest import Certificate, Receiver

pytestmark = pytest.mark.anyio

EVENTS = ["rating.negative", "follow_up.opened"]

INTERNAL_URLS = [
    "http://127.0.0.1/hook",  # loopback
    "http://127.8.9.10:8080/hook",
    "http://[::1]/hook",
    "http://localhost:8000/hook",  # a name that resolves to loopback
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://10.0.0.1/hook",  # private (RFC 1918)
    "http://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "http://[fd00::1]/hook",  # unique local (fc00::/7)
    "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",  # unspecified
    "http://[::]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://[ff02::1]/hook",
    "http://240.0.0.1/hook",  # reserved
    "http://255.255.255.255/hook",
    "http://100.64.0.1/hook",  # shared address space (carrier-grade NAT)
    "http://192.0.2.1/hook",  # documentation
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[::ffff:10.0.0.1]/hook",
    "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
]


async def _register(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.post("/v1/webhooks", json={"url": url, "events": EVENTS})


async def test_registration_refuses_internal_addresses(client: httpx.AsyncClient) -> None:
    accepted = []
    for url in INTERNAL_URLS:
        response = await _register(client, url)
        if response.status_code != 422:
            accepted.append((url, response.status_code))
            continue
        (detail,) = response.json()["details"]
        assert (detail["field"], detail["type"]) == ("url", "address_not_allowed"), url
    assert accepted == []
    assert (await client.get("/v1/webhooks")).json() == []


async def test_registration_refuses_a_name_that_does_not_resolve(
    client: httpx.AsyncClient,
) -> None:
    response = await _register(client, "https://hooks.invalid/hook")  # never resolves
    assert response.status_code == 422
    (detail,) = response.json()["details"]
    assert (detail["field"], detail["type"]) == ("url", "unresolvable_host")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("fd12::1", "private"),
        ("fec0::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff05::2", "multicast"),
        ("100.100.100.200", "shared"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a9fe:a9fe::", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),
        ("1.1.1.1", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_address_kinds(address: str, expected: str | None) -> None:
    assert kind(ip_address(address)) == expected


async def test_registration_accepts_a_public_address(client: httpx.AsyncClient) -> None:
    # Never sent to: nothing delivers in this test.
    assert (await _register(client, "https://1.1.1.1/hook")).status_code == 201


async def test_listed_hosts_and_networks_may_be_registered(make_client: ClientFactory) -> None:
    async with make_client(webhook_allow_hosts="localhost, 10.0.0.0/8,fd00::/8") as client:
        for url in ("http://localhost:8000/hook", "http://10.1.2.3/hook", "http://[fd00::5]/"):
            assert (await _register(client, url)).status_code == 201, url
        refused = await _register(client, "http://192.168.1.1/hook")
        assert refused.status_code == 422
        # A name is allowed, not every address it might resolve to.
        assert (await _register(client, "http://127.0.0.1/hook")).status_code == 422


def test_an_unknown_allow_list_entry_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="MOT_WEBHOOK_ALLOW_HOSTS"):
        Settings(_env_file=None, webhook_allow_hosts="10.0.0.0/33")
    with pytest.raises(ValidationError, match="MOT_WEBHOOK_ALLOW_HOSTS"):
        Settings(_env_file=None, webhook_allow_hosts="http://example.com")


async def _registered_before_the_rule(database_url: str, url: str) -> int:
    """A webhook stored without the registration check: one registered before it existed,
    or whose name has since been pointed at another address (DNS rebinding)."""
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            webhook = Webhook(
                url=url, events=EVENTS, secret="s" * 32, active=True, created_at=utcnow()
            )
            session.add(webhook)
            await session.flush()
            return webhook.id
    finally:
        await database.dispose()


async def _deliver(
    database_url: str, allow: str = "", *, trusting: Certificate | None = None
) -> int:
    database = Database(database_url)
    try:
        allowed = AllowList.of(Settings(_env_file=None, webhook_allow_hosts=allow))
        verify = trusting.trusted() if trusting is not None else True
        async with httpx.AsyncClient(verify=verify) as http:
            return await service.deliver_due(database, http, allowed=allowed)
    finally:
        await database.dispose()


async def _deliveries(client: httpx.AsyncClient, webhook_id: int) -> list[dict[str, Any]]:
    deliveries: list[dict[str, Any]] = (await client.get(f"/v1/webhooks/{webhook_id}")).json()[
        "deliveries"
    ]
    return deliveries


async def test_sending_refuses_a_name_that_resolves_to_an_internal_address(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    url = f"http://localhost:{receiver.port}/hook"
    webhook_id = await _registered_before_the_rule(database_url, url)
    await client.post("/v1/touchpoints", json=touchpoint(id="a1", complaint=True))

    assert await _deliver(database_url) == 1
    assert receiver.received == []
    (delivery,) = await _deliveries(client, webhook_id)
    assert delivery["state"] == "pending"
    assert delivery["last_status"] is None
    assert delivery["last_error"] == "address not allowed (loopback)"


async def test_sending_to_a_listed_name_keeps_its_host_header(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    url = f"http://localhost:{receiver.port}/hook"
    webhook_id = await _registered_before_the_rule(database_url, url)
    await client.post("/v1/touchpoints", json=touchpoint(id="a2", complaint=True))

    assert await _deliver(database_url, allow="localhost") == 1
    ((headers, _body),) = receiver.received
    assert headers["host"] == f"localhost:{receiver.port}"
    (delivery,) = await _deliveries(client, webhook_id)
    assert (delivery["state"], delivery["last_status"]) == ("delivered", 204)


async def test_https_is_verified_for_the_name_although_sent_to_the_checked_address(
    client: httpx.AsyncClient, database_url: str, tls_receiver: Receiver, certificate: Certificate
) -> None:
    by_name = f"https://{certificate.name}:{tls_receiver.port}/hook"
    named = await _registered_before_the_rule(database_url, by_name)
    # The same server by address: its certificate does not name 127.0.0.1.
    by_address = await _registered_before_the_rule(database_url, tls_receiver.url)
    await client.post("/v1/touchpoints", json=touchpoint(id="a4", complaint=True))

    allow = f"{certificate.name},127.0.0.1"
    assert await _deliver(database_url, allow, trusting=certificate) == 2
    ((headers, _body),) = tls_receiver.received
    assert headers["host"] == f"{certificate.name}:{tls_receiver.port}"
    (delivered,) = await _deliveries(client, named)
    assert (delivered["state"], delivered["last_status"]) == ("delivered", 204)
    (refused,) = await _deliveries(client, by_address)
    assert (refused["last_status"], refused["last_error"]) == (None, "connection failed")


async def test_a_failed_attempt_keeps_its_status_and_a_short_reason_only(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    answering = await _registered_before_the_rule(database_url, receiver.url)
    closed = await _registered_before_the_rule(database_url, "http://127.0.0.1:9/nothing")
    receiver.failures_left = 1
    await client.post("/v1/touchpoints", json=touchpoint(id="a3", complaint=True))

    assert await _deliver(database_url, allow="127.0.0.1") == 2
    (failed,) = await _deliveries(client, answering)
    assert (failed["last_status"], failed["last_error"]) == (500, "HTTP 500")
    (refused,) = await _deliveries(client, closed)
    assert (refused["last_status"], refused["last_error"]) == (None, "connection failed")
