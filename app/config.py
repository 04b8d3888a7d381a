"""Service configuration: one Settings object read from `MOT_*` environment variables."""

from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; each field maps to an environment variable `MOT_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="MOT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./mot.db",
        description="SQLAlchemy URL: `sqlite:///path.db` or `postgresql://user@host/db`.",
    )
    auto_register_moments: bool = Field(
        default=True,
        description="Register a moment the first time a touchpoint names an unknown key.",
    )
    default_target_negative_rate: float | None = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Target negative rate given to new moments that do not name one; "
        "empty means no target (rankings then compare with the baseline).",
    )
    batch_max_items: int = Field(
        default=1000, ge=1, le=100_000, description="Most touchpoints one batch request may carry."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Server log level."
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def _settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings_of_app)]
