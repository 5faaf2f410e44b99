"""FastAPI dependencies in one place: settings, the engine services, the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from bot.config import Settings
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.factory import Services
from bot.store.base import Store


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        # Starting up, or the index is missing (the reason is on /readyz and in the log): a message a widget can
        # show, not a stack trace.
        raise HTTPException(status_code=503, detail="ただいま準備中です。少し時間をおいてからもう一度お試しください。")
    return services


def get_engine(services: Annotated[Services, Depends(get_services)]) -> DialogueEngine:
    return services.engine


def get_store(services: Annotated[Services, Depends(get_services)]) -> Store:
    return services.store


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
EngineDep = Annotated[DialogueEngine, Depends(get_engine)]
StoreDep = Annotated[Store, Depends(get_store)]
