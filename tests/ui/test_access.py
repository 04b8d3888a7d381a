"""Who sees the analyst pages: a sign-in with a read key, a signed session that never holds
the key, CSRF tokens on every form, and a revoked key ending its sessions."""

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.ui import access
from tests.ui.conftest import Site, csrf_of, sign_in

pytestmark = pytest.mark.anyio


async def test_pages_redirect_to_sign_in_without_a_session(site: Site) -> None:
    response = await site.browser.get("/ui/", params={"days": "7"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in?next=%2Fui%2F%3Fdays%3D7"


async def test_sign_in_with_a_read_key_keeps_a_strict_cookie_without_the_key(site: Site) -> None:
    response = await sign_in(site.browser, site.read_key, target="/ui/?days=90")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/?days=90"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(access.SESSION_COOKIE)
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "path=/ui" in cookie.lower()
    assert site.read_key not in cookie
    assert site.read_key[4:20] not in cookie
    page = await site.browser.get("/ui/")
    assert page.status_code == 200
    assert "Signed in as analyst" in page.text


async def test_an_unknown_key_or_one_without_the_read_scope_is_refused(site: Site) -> None:
    wrong = await sign_in(site.browser, "mot_" + "x" * 40)
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    response = await site.api.post("/v1/keys", json={"name": "ingest", "scopes": ["ingest"]})
    ingest = await sign_in(site.browser, response.json()["key"])
    assert ingest.status_code == 403
    assert access.SESSION_COOKIE not in site.browser.cookies
    assert (await site.browser.get("/ui/")).status_code == 303


async def test_a_sign_in_posted_without_its_form_token_is_refused(site: Site) -> None:
    await site.browser.get("/ui/sign-in")
    forged = await site.browser.post("/ui/sign-in", data={"key": site.read_key})
    assert forged.status_code == 403
    assert "Content-Security-Policy" in forged.headers
    # From another browser, which was never given the form: refused too.
    site.browser.cookies.clear()
    form = await site.browser.get("/ui/sign-in")
    token = csrf_of(form.text)
    site.browser.cookies.clear()
    again = await site.browser.post("/ui/sign-in", data={"key": site.read_key, "csrf_token": token})
    assert again.status_code == 403
    assert (await site.browser.get("/ui/")).status_code == 303


async def test_sign_out_needs_the_csrf_token_and_ends_access(site: Site) -> None:
    await sign_in(site.browser, site.read_key)
    page = await site.browser.get("/ui/")
    refused = await site.browser.post("/ui/sign-out")
    assert refused.status_code == 403
    wrong = await site.browser.post("/ui/sign-out", data={"csrf_token": "0" * 64})
    assert wrong.status_code == 403
    assert (await site.browser.get("/ui/")).status_code == 200
    out = await site.browser.post("/ui/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/sign-in"
    assert (await site.browser.get("/ui/")).status_code == 303


async def test_a_revoked_key_ends_its_sessions(site: Site) -> None:
    await sign_in(site.browser, site.read_key)
    assert (await site.browser.get("/ui/")).status_code == 200
    keys = (await site.api.get("/v1/keys")).json()
    analyst = next(key for key in keys if key["name"] == "analyst")
    assert (await site.api.delete(f"/v1/keys/{analyst['id']}")).status_code == 200
    after = await site.browser.get("/ui/")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/ui/sign-in")


async def test_an_altered_or_expired_session_is_refused(site: Site) -> None:
    await sign_in(site.browser, site.read_key)
    value = site.browser.cookies[access.SESSION_COOKIE]
    site.browser.cookies.set(access.SESSION_COOKIE, value[:-2] + "xx", path="/ui")
    assert (await site.browser.get("/ui/")).status_code == 303

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 24 * 3600

    settings = site.app.state.settings
    secret = settings.secret_key.get_secret_value().encode()
    stale = URLSafeTimedSerializer(secret, salt="mot.ui.session", signer=Yesterday)
    site.browser.cookies.set(
        access.SESSION_COOKIE, stale.dumps({"key": 2, "nonce": "n"}), path="/ui"
    )
    assert (await site.browser.get("/ui/")).status_code == 303
    fresh = URLSafeTimedSerializer(secret, salt="mot.ui.session")
    site.browser.cookies.set(
        access.SESSION_COOKIE, fresh.dumps({"key": 2, "nonce": "n"}), path="/ui"
    )
    assert (await site.browser.get("/ui/")).status_code == 200


async def test_sign_in_goes_back_only_to_a_page_of_this_site(site: Site) -> None:
    for target in ("https://elsewhere.example/", "//elsewhere.example/ui/", "/v1/keys"):
        response = await sign_in(site.browser, site.read_key, target=target)
        assert response.headers["location"] == "/ui/"


async def test_pages_allow_no_script_and_no_inline_style(site: Site) -> None:
    sign_in_page = await site.browser.get("/ui/sign-in")
    await sign_in(site.browser, site.read_key)
    overview = await site.browser.get("/ui/")
    for page in (sign_in_page, overview):
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "style-src 'self'" in policy
        assert "script-src" not in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["cache-control"] == "no-store"
        html = page.text.lower()
        assert "<script" not in html
        assert "<style" not in html
        assert " style=" not in html
    style = await site.browser.get("/ui/static/ui.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
