"""A browser-like client on the analyst pages (cookies kept, no key sent), an API client
beside it, and the data the pages are checked on."""

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app import demo
from app.config import Settings
from app.db import Database
from app.followups import targets as followups_targets
from app.keys.schemas import Scope
from app.main import create_app
from tests.conftest import EmptyDatabases, create_key

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Site:
    app: FastAPI
    browser: httpx.AsyncClient
    api: httpx.AsyncClient
    read_key: str
    manage_key: str


@dataclass
class DemoSite(Site):
    until: datetime
    """The coming UTC midnight, where the default windows end."""


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(browser: httpx.AsyncClient, key: str, *, target: str = "/ui/") -> httpx.Response:
    form = await browser.get("/ui/sign-in", params={"next": target})
    assert form.status_code == 200
    return await browser.post(
        "/ui/sign-in", data={"key": key, "csrf_token": csrf_of(form.text), "next": target}
    )


@asynccontextmanager
async def opened_site(settings: Settings) -> AsyncIterator[Site]:
    """The service with an admin key for the API client, a read key and a manage key."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        admin = await create_key(app.state.database, Scope.admin, name="admin")
        read = await create_key(app.state.database, Scope.read, name="analyst")
        manage = await create_key(app.state.database, Scope.read, Scope.manage, name="lead")
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test") as browser,
            httpx.AsyncClient(
                transport=transport,
                base_url="http://test",
                headers={"Authorization": f"Bearer {admin}"},
            ) as api,
        ):
            yield Site(app, browser, api, read, manage)
    finally:
        await app.state.database.dispose()


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async with opened_site(Settings(_env_file=None, database_url=database_url)) as opened:
        yield opened


DEMO_DAYS = 70


async def load_demo(database_url: str, *, touchpoints: int = 4000) -> datetime:
    """A small demo data set up to the last UTC midnight (its days run to 20:00); returns
    the coming UTC midnight, where the default windows end."""
    until = demo.default_until()
    database = Database(database_url)
    try:
        await demo.load(
            database,
            payloads=demo.generate(touchpoints=touchpoints, days=DEMO_DAYS, seed=7, until=until),
            follow_up_targets=followups_targets.from_settings(
                Settings(_env_file=None, database_url=database_url)
            ),
        )
    finally:
        await database.dispose()
    return until + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Demo:
    template_url: str
    until: datetime
    """What `load_demo` returned: the coming UTC midnight, where the default windows end."""


@pytest.fixture(scope="session")
def demo_template(databases: EmptyDatabases, template_url: str) -> Demo:
    """A migrated database with the small demo data set: loaded once per session and
    backend, copied for each test that reads it."""
    url = databases.create(template=template_url)
    # A thread of its own: the event loop of the tests may already run in this one.
    with ThreadPoolExecutor(1) as thread:
        until = thread.submit(asyncio.run, load_demo(url)).result()
    return Demo(url, until)


@pytest.fixture
def demo_database_url(databases: EmptyDatabases, demo_template: Demo) -> Iterator[str]:
    """This test's own copy of the demo database."""
    url = databases.create(template=demo_template.template_url)
    yield url
    databases.drop(url)


@pytest.fixture
async def demo_site(demo_database_url: str, demo_template: Demo) -> AsyncIterator[DemoSite]:
    """The site on a copy of the demo database, the browser signed in with the read key."""
    settings = Settings(_env_file=None, database_url=demo_database_url)
    async with opened_site(settings) as opened:
        site = DemoSite(
            opened.app,
            opened.browser,
            opened.api,
            opened.read_key,
            opened.manage_key,
            until=demo_template.until,
        )
        await sign_in(site.browser, site.read_key)
        yield site
