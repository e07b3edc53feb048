"""Finding the folders that ship with the package; tests/e2e/test_wheel.py covers the installed wheel."""

import pytest

from sentiment.core.resources import bundled_dir
from tests.conftest import ROOT


def test_in_a_checkout_templates_and_migrations_are_the_top_level_folders() -> None:
    assert bundled_dir("templates").resolve() == ROOT / "templates"
    assert bundled_dir("migrations").resolve() == ROOT / "migrations"


def test_a_folder_that_ships_nowhere_is_refused_by_name() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-folder/"):
        bundled_dir("no-such-folder")
