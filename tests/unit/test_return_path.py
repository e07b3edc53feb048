"""Where a login goes back to: only a page of this service, with its query."""

import pytest

from sentiment.web.guard import login_page_for, return_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/ui", "/ui"),
        ("/ui/models", "/ui/models"),
        ("/ui/predictions?label=negative&page=2", "/ui/predictions?label=negative&page=2"),
        ("/docs", "/docs"),
        ("/ui/login", None),
        ("/ui/login?next=/ui", None),
        ("/uix", None),
        ("/predict", None),
        ("https://evil.example/ui", None),
        ("//evil.example/ui", None),
        ("/\\evil.example", None),
        ("/ui/models\r\nset-cookie: x=1", None),
        ("", None),
        (None, None),
    ],
)
def test_return_path_keeps_pages_of_the_service_only(asked: str | None, kept: str | None) -> None:
    assert return_path(asked) == kept


def test_the_login_link_carries_the_page_encoded() -> None:
    assert (
        login_page_for("/ui/predictions?label=negative")
        == "/ui/login?next=%2Fui%2Fpredictions%3Flabel%3Dnegative"
    )
    assert login_page_for("https://evil.example/") == "/ui/login"
