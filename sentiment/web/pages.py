"""Server-rendered pages. Every asset they load is a file under /static: no CDN, no inline script or style."""

from __future__ import annotations

from pathlib import Path

from litestar import get
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.plugins.jinja import JinjaTemplateEngine

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

TEMPLATE_CONFIG = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
STATIC_FILES = create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)


@get("/docs", include_in_schema=False)
async def api_docs() -> Template:
    return Template(template_name="docs.html")


ROUTES = [STATIC_FILES, api_docs]
