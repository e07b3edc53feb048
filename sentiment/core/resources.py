"""Where the folders kept at the top of the checkout (templates/, migrations/) are at run time."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled_dir(name: str) -> Path:
    """The folder `name` that ships with the package: `sentiment/<name>` in an installed wheel (pyproject's
    force-include puts it there), else `<name>/` at the top of the source checkout (a checkout or an editable
    install, whose package folder has no such subfolder)."""
    package = Path(str(files("sentiment")))
    installed = package / name
    if installed.is_dir():
        return installed
    # Only a checkout, told by its pyproject.toml: beside an installed package lies site-packages, where
    # another distribution may have left a top-level templates/ or migrations/ of its own.
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    raise FileNotFoundError(f"{name}/ is in neither the installed package ({installed}) nor a checkout")
