"""Service configuration: one Settings object read from `MOT_*` environment variables."""

import ipaddress
import re
from datetime import time
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"
MIN_SECRET_LENGTH = 32
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")

_ORIGIN = re.compile(r"https?://[^/\s:]+(:\d{1,5})?")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(BaseSettings):
    """Every knob of the service; each field maps to an environment variable `MOT_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="MOT_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./mot.db",
        description="SQLAlchemy URL: `sqlite:///path.db` or `postgresql://user@host/db`.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of a streaming replica that answers the figures and lists "
        "(insights, list endpoints, the pages under `/ui/`), which may then lag the primary "
        "by the replica's delay; reads of what a caller just wrote stay on the primary. "
        "While the replica does not answer, those reads go to the primary. Empty: all on "
        "the primary.",
    )
    database_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="`transaction` when PostgreSQL is reached through a pooler in "
        "transaction mode (PgBouncer `pool_mode = transaction`): no prepared statements, "
        "no session-level settings.",
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
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; larger ones get a 413.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Server log level."
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start without a real `MOT_SECRET_KEY`.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET),
        description="Key that signs survey links (HMAC-SHA256); at least 32 characters.",
    )
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        min_length=MIN_SECRET_LENGTH,
        description="On first start with no API keys, create the admin key with this value "
        "instead of generating one (and printing it); at least 32 characters.",
    )
    survey_link_days: int = Field(
        default=30, ge=1, le=365, description="Days a survey link stays valid by default."
    )
    ui_session_hours: int = Field(
        default=8,
        ge=1,
        le=24 * 30,
        description="Hours a sign-in to the analyst pages under `/ui/` lasts.",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the service at, for survey links; default: the "
        "URL the API request came in on.",
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Days raw touchpoints are kept; `mot purge` deletes older ones (from UTC "
        "midnight that many days ago), keeping the rollups. Empty: kept forever.",
    )
    fold_interval_seconds: float = Field(
        default=0.5,
        ge=0,
        le=3600,
        description="Seconds from the start of one fold of the pending count deltas into the "
        "rollups to the start of the next (a fold that takes longer is followed at once); "
        "0: this process does not fold (another one, or `mot rollups fold`, must).",
    )
    api_key_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=300,
        description="Seconds a process trusts an API key the database found active before "
        "asking again; a key revoked through one process stops working in the others within "
        "this time (in that process at once). 0: every request asks the database.",
    )
    figures_kept: int = Field(
        default=64,
        ge=0,
        le=10_000,
        description="Figures over whole UTC days a process keeps and gives again while the "
        "counts and the moments they were computed from stay the same (weak spots: one per "
        "distinct question); every new touchpoint, rating, fold or rebuild makes them new. "
        "0: every request computes its figures.",
    )
    alert_interval_seconds: float = Field(
        default=300,
        ge=0,
        le=86_400,
        description="Seconds between two evaluations of the alerts (moments newly a confident "
        "problem or worsening, teams newly named, promised updates missed), sent as webhook "
        "events; 0: this process does not evaluate them.",
    )
    partition_months_ahead: int = Field(
        default=3,
        ge=0,
        le=24,
        description="PostgreSQL: months after this one whose touchpoint partitions are created "
        "ahead (at start and every `MOT_PARTITION_INTERVAL_SECONDS`).",
    )
    partition_interval_seconds: float = Field(
        default=3600,
        ge=0,
        le=86_400,
        description="PostgreSQL: seconds between two checks that the touchpoint partitions "
        "ahead exist; 0: this process does not create them (`mot partitions ensure` must).",
    )
    webhook_allow_hosts: str = Field(
        default="",
        description="Comma-separated host names and CIDR networks (`hooks.internal, "
        "10.20.0.0/16, 127.0.0.1`) webhooks may be sent to although they are not public: "
        "by default a webhook URL toward a loopback, private, link-local, shared (100.64/10) "
        "or other special-purpose address is refused, at registration and at every send.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (`https://dash.example.org, "
        "http://localhost:3000`) whose pages may call the API from a browser (CORS), or `*` "
        "for any; empty: none, and browsers refuse such calls.",
    )

    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="RabbitMQ that `mot consume` reads touchpoints from (AMQP 0-9-1 URL; "
        "`amqps://` for TLS).",
    )
    amqp_queue: str = Field(
        default="mot.touchpoints",
        min_length=1,
        max_length=200,
        description="Durable quorum queue `mot consume` reads; a publisher may send to it "
        "through the default exchange. Dead letters go to the queue `<queue>.dead`.",
    )
    amqp_exchange: str | None = Field(
        default=None,
        max_length=255,
        description="An existing exchange to bind the queue to; empty: no binding.",
    )
    amqp_routing_key: str | None = Field(
        default=None,
        max_length=255,
        description="Routing key of that binding (`#` takes everything from a topic "
        "exchange); default: the queue's name.",
    )
    amqp_prefetch: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Messages `mot consume` holds unacknowledged at once, and so stores in "
        "one transaction at most.",
    )

    acknowledge_within_hours: float = Field(
        default=4, gt=0, le=1000, description="Target: working hours to acknowledge a follow-up."
    )
    resolve_within_hours: float = Field(
        default=40, gt=0, le=5000, description="Target: working hours to resolve a follow-up."
    )
    working_day_start: time = Field(default=time(9), description="Working day opens (local).")
    working_day_end: time = Field(default=time(17), description="Working day closes (local).")
    working_days: str = Field(
        default="mon,tue,wed,thu,fri", description="Working days, comma-separated."
    )
    time_zone: str = Field(default="UTC", description="Time zone of the working hours (IANA).")

    @field_validator(
        "retention_days",
        "default_target_negative_rate",
        "amqp_exchange",
        "amqp_routing_key",
        "read_database_url",
        mode="before",
    )
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        # An empty environment variable is how "none" is written in a .env file or a unit.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("working_days")
    @classmethod
    def _known_days(cls, value: str) -> str:
        days = [day.strip().lower() for day in value.split(",") if day.strip()]
        unknown = [day for day in days if day not in WEEKDAYS]
        if unknown or not days:
            raise ValueError(f"working days must be among {', '.join(WEEKDAYS)}; got {value!r}")
        return ",".join(days)

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _hosts_and_networks(cls, value: str) -> str:
        entries = [entry.strip().lower().rstrip(".") for entry in value.split(",")]
        for entry in filter(None, entries):
            if _network(entry) is None and not _HOST_NAME.fullmatch(entry):
                raise ValueError(
                    f"MOT_WEBHOOK_ALLOW_HOSTS entries are host names or CIDR networks; "
                    f"got {entry!r}"
                )
        return ",".join(filter(None, entries))

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        origins = [entry.strip().rstrip("/") for entry in value.split(",")]
        for origin in filter(None, origins):
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    "MOT_CORS_ORIGINS entries are origins (scheme://host[:port], no path) or "
                    f"`*`; got {origin!r}"
                )
        return ",".join(filter(None, origins))

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> "Settings":
        if self.environment == "development":
            return self
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                "MOT_SECRET_KEY must be set to a secret of at least "
                f"{MIN_SECRET_LENGTH} characters when MOT_ENVIRONMENT is {self.environment}"
            )
        return self

    @model_validator(mode="after")
    def _replica_and_pooler_on_postgresql(self) -> "Settings":
        if make_url(self.database_url).get_backend_name() == "postgresql":
            if self.read_database_url is not None and not self.read_database_url.startswith(
                "postgresql"
            ):
                raise ValueError("MOT_READ_DATABASE_URL must be a PostgreSQL URL")
            return self
        if self.read_database_url is not None:
            raise ValueError("MOT_READ_DATABASE_URL needs a PostgreSQL MOT_DATABASE_URL")
        if self.database_pooler != "none":
            raise ValueError("MOT_DATABASE_POOLER needs a PostgreSQL MOT_DATABASE_URL")
        return self

    @model_validator(mode="after")
    def _working_day_in_order(self) -> "Settings":
        if not self.working_day_start < self.working_day_end:
            raise ValueError("MOT_WORKING_DAY_START must be before MOT_WORKING_DAY_END")
        return self

    @property
    def working_weekdays(self) -> frozenset[int]:
        """The working days as weekday numbers, Monday = 0."""
        return frozenset(WEEKDAYS.index(day) for day in self.working_days.split(","))

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins of `cors_origins`, in the order given."""
        return [origin for origin in self.cors_origins.split(",") if origin]

    @property
    def webhook_allowed_networks(self) -> tuple[IPNetwork, ...]:
        """The networks of `webhook_allow_hosts` (a bare address is a network of one)."""
        networks = (_network(entry) for entry in self.webhook_allow_hosts.split(","))
        return tuple(network for network in networks if network is not None)

    @property
    def webhook_allowed_names(self) -> frozenset[str]:
        """The host names of `webhook_allow_hosts`, lower case."""
        entries = filter(None, self.webhook_allow_hosts.split(","))
        return frozenset(entry for entry in entries if _network(entry) is None)


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def _settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings_of_app)]
