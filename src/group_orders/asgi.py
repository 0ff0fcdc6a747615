"""The app for an ASGI server, settings from the environment:

uvicorn --factory group_orders.asgi:app --workers 4
"""

from __future__ import annotations

from starlette.applications import Starlette

from group_orders.app import create_app, freeze_startup_objects
from group_orders.settings import Settings


def app() -> Starlette:
    application = create_app(Settings.from_env())
    freeze_startup_objects()
    return application
