"""Configuration, read once from `RAPPORT_*` environment variables and an optional `rapport.toml`.

A missing or malformed value stops start-up with one line that names the variable
(`ConfigError`), never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.clock import Clock, parse_clock
from storage.crypto import Cipher, KeyError_
from storage.db import database_name

TELEGRAM_API_URL = "https://api.telegram.org/bot"
_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,80}$")


class ConfigError(Exception):
    """One line naming the setting that is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", toml_file="rapport.toml", extra="ignore", frozen=True
    )

    database_url: str = "sqlite+aiosqlite:///./rapport.db"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    encryption_key: SecretStr | None = None
    clock: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["plain", "json"] = "plain"
    send_rate: float = Field(default=30.0, ge=0)
    chat_send_rate: float = Field(default=1.0, ge=0)
    # Where the practice console is reached: sign-in links (`/web`, `rapport web link`) name it.
    console_url: str = "http://127.0.0.1:8080"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("console_url")
    @classmethod
    def _console_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/?#\s]+$", value.rstrip("/")):
            raise ValueError("must be http(s)://HOST[:PORT], e.g. https://rapport.example.org")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", value):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        database = database_name(value)
        if value.startswith("sqlite") and database and database != ":memory:":
            folder = Path(database).expanduser().parent
            if not folder.is_dir():
                raise ValueError(f"the folder {folder} does not exist (create it first)")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN.match(value.get_secret_value()):
            raise ValueError("does not look like a bot token from BotFather (digits:letters)")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL such as https://api.telegram.org/bot")
        return value.rstrip("/")

    @field_validator("clock")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        parse_clock(value)
        return value

    @field_validator("encryption_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Cipher(value.get_secret_value())
            except KeyError_ as exc:
                raise ValueError(str(exc)) from exc
        return value

    # --- derived ---------------------------------------------------------------------------

    def make_clock(self) -> Clock:
        return parse_clock(self.clock)

    def cipher(self) -> Cipher:
        if self.encryption_key is None:
            raise ConfigError(
                "RAPPORT_ENCRYPTION_KEY: missing (generate one with `rapport keys generate`)"
            )
        return Cipher(self.encryption_key.get_secret_value())

    def token(self) -> str:
        if self.telegram_token is None:
            raise ConfigError("RAPPORT_TELEGRAM_TOKEN: missing (the token BotFather gave you)")
        return self.telegram_token.get_secret_value()

    @property
    def api_file_url(self) -> str:
        """Bot API file base: Telegram's `/file/bot` beside the API's `/bot`."""
        base = self.telegram_api_url
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file"


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise ConfigError with one line naming the first bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"RAPPORT_{field.upper()}: {message}") from None
    except (OSError, ValueError) as exc:
        if Path("rapport.toml").exists():
            raise ConfigError(f"rapport.toml: {exc}") from None
        raise
