"""Page sessions kept on the server: logout ends a session for every copy of its cookie, an expired or idle
session is refused, login starts a new session with a new CSRF token, and wrong admin tokens are throttled on
the login page and on the bearer check alike."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.app import create_app
from sentiment.core.clock import as_utc, utc_now
from sentiment.core.throttle import AttemptThrottle
from sentiment.services.alerts import AlertService
from sentiment.storage.tables import SessionRow
from tests.clocks import FakeClock
from tests.conftest import in_app, make_settings, page_csrf

TOKEN = "s3cret"
LOGIN = "/ui/login"


async def raise_alert(alerts: AlertService) -> None:
    alerts.post_raise("k", "test", "warning", "a test alert")
    await alerts.settle()


async def age_sessions(engine: AsyncEngine, minutes: float) -> None:
    """As if every stored session had not been used for `minutes`: their expiry comes that much closer."""
    async with engine.begin() as connection:
        rows = (await connection.execute(select(SessionRow.id_hash, SessionRow.expires_at))).all()
        for row in rows:
            await connection.execute(
                update(SessionRow)
                .where(SessionRow.id_hash == row.id_hash)
                .values(expires_at=as_utc(row.expires_at) - timedelta(minutes=minutes))
            )


async def session_expiries(engine: AsyncEngine) -> list[timedelta]:
    """How long each stored session has left."""
    async with engine.connect() as connection:
        expiries = (await connection.scalars(select(SessionRow.expires_at))).all()
    return [as_utc(expires_at) - utc_now() for expires_at in expiries]


def use_cookie(client: AsyncTestClient, session_id: str | None) -> None:
    """Send this session cookie from now on (None: none), as a browser holding it, or a copy of it, would."""
    client.cookies.clear()
    if session_id is not None:
        client.cookies.set("session", session_id, domain=client.base_url.host)


async def log_in(client: AsyncTestClient) -> str:
    """Log in on the page; return the new session's id."""
    response = await client.post(
        "/ui/login",
        data={"token": TOKEN, "csrf_token": await page_csrf(client, LOGIN)},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return client.cookies["session"]


async def acknowledge_from_page(client: AsyncTestClient) -> int:
    """Status of an admin action on the pages, with the CSRF token the session's own pages carry."""
    token = await page_csrf(client, "/ui/analyze")
    return (await client.post("/ui/alerts/1/acknowledge", headers={"x-csrf-token": token})).status_code


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[AsyncTestClient]:
    app = create_app(make_settings(sqlite_url, admin_token=TOKEN))
    async with AsyncTestClient(app=app) as client:
        in_app(client, raise_alert, app.state.services.alerts)
        yield client


async def test_logout_ends_the_session_even_for_a_copied_cookie(database_url: str) -> None:
    app = create_app(make_settings(database_url, admin_token=TOKEN))
    async with AsyncTestClient(app=app) as client:
        in_app(client, raise_alert, app.state.services.alerts)
        copied = await log_in(client)
        # The cookie works (and so would any copy of it) until logout.
        assert await acknowledge_from_page(client) == 200
        logout = await client.post(
            "/ui/logout", data={"csrf_token": await page_csrf(client, LOGIN)}, follow_redirects=False
        )
        assert logout.status_code == 302 and logout.headers["set-cookie"].startswith("session=null;")
        assert in_app(client, session_expiries, app.state.resources.engine) == []  # its row is deleted

        use_cookie(client, copied)
        assert "/ui/logout" not in (await client.get("/ui/alerts")).text
        assert await acknowledge_from_page(client) == 401
        assert client.cookies["session"] != copied  # what the copy got is a new, empty session


async def test_a_request_without_a_session_stores_nothing_and_sets_no_cookie(client: AsyncTestClient) -> None:
    engine = client.app.state.resources.engine
    response = await client.post("/predict", json={"text": "fine"})
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert in_app(client, session_expiries, engine) == []
    await client.get("/ui/analyze")  # a page does start a session: its forms carry the session's CSRF token
    assert len(in_app(client, session_expiries, engine)) == 1


async def test_an_expired_session_is_refused(client: AsyncTestClient) -> None:
    await log_in(client)
    assert await acknowledge_from_page(client) == 200
    in_app(client, age_sessions, client.app.state.resources.engine, 12 * 60 + 1)
    assert "/ui/logout" not in (await client.get("/ui/alerts")).text
    assert await acknowledge_from_page(client) == 401


async def test_a_session_unused_for_the_idle_timeout_ends_and_use_renews_it(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, admin_token=TOKEN, session_idle_minutes=30))
    async with AsyncTestClient(app=app) as client:
        engine = app.state.resources.engine
        await log_in(client)
        response = await client.get("/ui/alerts")
        assert "max-age=1800" in response.headers["set-cookie"].lower()
        (left,) = in_app(client, session_expiries, engine)
        assert timedelta(minutes=29) < left <= timedelta(minutes=30)

        in_app(client, age_sessions, engine, 29)  # used again just before the timeout: renewed for 30 min
        assert "/ui/logout" in (await client.get("/ui/alerts")).text
        (left,) = in_app(client, session_expiries, engine)
        assert left > timedelta(minutes=29)

        in_app(client, age_sessions, engine, 31)
        assert "/ui/logout" not in (await client.get("/ui/alerts")).text


async def test_without_an_idle_timeout_a_session_lives_12_hours_unused(client: AsyncTestClient) -> None:
    await log_in(client)
    engine = client.app.state.resources.engine
    assert "max-age=43200" in (await client.get("/ui/alerts")).headers["set-cookie"].lower()
    (left,) = in_app(client, session_expiries, engine)
    assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)
    in_app(client, age_sessions, engine, 11 * 60)
    assert "/ui/logout" in (await client.get("/ui/alerts")).text


async def test_login_starts_a_new_session_and_the_old_id_and_csrf_token_stop_working(
    client: AsyncTestClient,
) -> None:
    use_cookie(client, "planted-by-someone-else")
    old_csrf = await page_csrf(client, LOGIN)
    old_id = client.cookies["session"]
    assert old_id != "planted-by-someone-else"  # an id the store does not know is never adopted

    new_id = await log_in(client)
    assert new_id != old_id
    refused = await client.post("/ui/analyze", data={"text": "hi", "csrf_token": old_csrf})
    assert refused.status_code == 403
    new_csrf = await page_csrf(client, "/ui/analyze")
    assert new_csrf != old_csrf
    assert (await client.post("/ui/analyze", data={"text": "hi", "csrf_token": new_csrf})).status_code == 200

    # Whoever holds the id from before login (a planted or copied one) is not logged in with it.
    use_cookie(client, old_id)
    assert (await client.post("/ui/analyze", data={"text": "hi", "csrf_token": old_csrf})).status_code == 403
    assert await acknowledge_from_page(client) == 401


async def test_wrong_tokens_on_the_login_page_are_throttled_then_the_client_may_try_again(
    client: AsyncTestClient,
) -> None:
    clock = FakeClock()
    client.app.state.services.access.throttle = AttemptThrottle(clock, free_attempts=2, base_delay_s=30.0)
    csrf = await page_csrf(client, LOGIN)

    async def attempt(token: str) -> int:
        form = {"token": token, "csrf_token": csrf}
        return (await client.post("/ui/login", data=form, follow_redirects=False)).status_code

    assert [await attempt("guess") for _ in range(3)] == [401, 401, 401]
    throttled = await client.post("/ui/login", data={"token": TOKEN, "csrf_token": csrf})
    assert throttled.status_code == 429  # even the right token is not looked at while the client waits
    assert throttled.headers["retry-after"] == "30"
    assert "too many wrong admin tokens" in throttled.text and "try again in 30 s" in throttled.text
    clock.advance(29.5)
    assert await attempt(TOKEN) == 429
    clock.advance(0.5)
    assert await attempt(TOKEN) == 302


async def test_wrong_bearer_tokens_are_throttled_then_the_client_may_try_again(
    client: AsyncTestClient,
) -> None:
    clock = FakeClock()
    client.app.state.services.access.throttle = AttemptThrottle(clock, free_attempts=2, base_delay_s=30.0)

    async def attempt(token: str) -> int:
        return (
            await client.post("/failsafe/reset", json={}, headers={"authorization": f"Bearer {token}"})
        ).status_code

    assert [await attempt("guess") for _ in range(3)] == [401, 401, 401]
    throttled = await client.post("/failsafe/reset", json={}, headers={"authorization": f"Bearer {TOKEN}"})
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "30"
    assert throttled.json()["detail"] == "too many wrong admin tokens from this address: try again in 30 s"
    clock.advance(30)
    assert await attempt(TOKEN) == 200
    assert [await attempt("guess") for _ in range(3)] == [401, 401, 401]  # the right token cleared the count
    # The login page counts against the same client: it waits as well.
    assert (
        await client.post("/ui/login", data={"token": TOKEN, "csrf_token": await page_csrf(client, LOGIN)})
    ).status_code == 429


async def test_login_goes_back_to_the_page_it_was_asked_from(client: AsyncTestClient) -> None:
    models_page = (await client.get("/ui/models?tab=all")).text
    assert 'href="/ui/login?next=%2Fui%2Fmodels%3Ftab%3Dall"' in models_page
    form = (await client.get("/ui/login", params={"next": "/ui/models?tab=all"})).text
    assert '<input type="hidden" name="next" value="/ui/models?tab=all">' in form
    csrf = await page_csrf(client, LOGIN)
    answer = await client.post(
        "/ui/login",
        data={"token": TOKEN, "csrf_token": csrf, "next": "/ui/models?tab=all"},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (302, "/ui/models?tab=all")


@pytest.mark.parametrize(
    "elsewhere",
    ["https://evil.example/ui", "//evil.example/ui", "/\\evil.example", "/ui/login", "/alerts", ""],
)
async def test_login_never_goes_back_anywhere_but_a_page_of_the_service(
    client: AsyncTestClient, elsewhere: str
) -> None:
    form = (await client.get("/ui/login", params={"next": elsewhere})).text
    assert 'name="next"' not in form
    data = {"token": TOKEN, "csrf_token": await page_csrf(client, LOGIN), "next": elsewhere}
    answer = await client.post("/ui/login", data=data, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/ui/alerts")
