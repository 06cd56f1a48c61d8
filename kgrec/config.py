"""Settings: one object, read from the environment and an optional ``.env`` file.

=====================  ==========================================  ==================================
Variable               Meaning                                     Default
=====================  ==========================================  ==================================
``KGREC_ENV``          ``production`` or ``development``           ``production``
``NEO4J_URI``          Bolt or routing URI (``neo4j://`` for       ``bolt://127.0.0.1:7687``
                       clusters and Aura)
``NEO4J_USER``         user name                                   ``neo4j``
``NEO4J_PASSWORD``     password (secret)                           none; ``kgrec-dev-password`` in
                                                                   development
``NEO4J_DATABASE``     database name                               ``neo4j``
``KGREC_DATA_DIR``     data directory (local Neo4j store, caches,  ``./data``
                       checkpoints)
``KGREC_TEXT_MODEL``   sentence-transformers model name or path    ``all-MiniLM-L6-v2``
``KGREC_API_KEY``      key for the API's write endpoints (secret)  none; ``kgrec-dev-key`` in
                                                                   development
``KGREC_NEO4J_HEAP``   JVM heap of the local Neo4j                 ``1g``
``KGREC_NEO4J_PAGECACHE``  page cache of the local Neo4j           ``512m``
``KGREC_BATCH_SIZE``   rows per ``UNWIND`` write batch             ``5000``
=====================  ==========================================  ==================================

Secrets have no default outside development mode: asking for a missing one raises
:class:`~kgrec.errors.ConfigError` naming the variable, and well-known placeholder passwords are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kgrec.errors import ConfigError

DEV_PASSWORD = "kgrec-dev-password"
DEV_API_KEY = "kgrec-dev-key"
# Passwords that anybody would try first; refused outside development mode.
PLACEHOLDER_SECRETS = frozenset({"neo4j", "password", "changeme", "change-me", "secret", DEV_PASSWORD, DEV_API_KEY})
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """kgrec's configuration; see the module docstring for the variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    env: Literal["production", "development"] = Field("production", validation_alias=_env("KGREC_ENV"))
    neo4j_uri: str = Field("bolt://127.0.0.1:7687", validation_alias=_env("NEO4J_URI"))
    neo4j_user: str = Field("neo4j", validation_alias=_env("NEO4J_USER"))
    neo4j_password_: SecretStr | None = Field(None, validation_alias=_env("NEO4J_PASSWORD"))
    neo4j_database: str = Field("neo4j", validation_alias=_env("NEO4J_DATABASE"))
    data_dir: Path = Field(Path("data"), validation_alias=_env("KGREC_DATA_DIR"))
    text_model: str = Field("all-MiniLM-L6-v2", validation_alias=_env("KGREC_TEXT_MODEL"))
    api_key_: SecretStr | None = Field(None, validation_alias=_env("KGREC_API_KEY"))
    neo4j_heap: str = Field("1g", validation_alias=_env("KGREC_NEO4J_HEAP"))
    neo4j_pagecache: str = Field("512m", validation_alias=_env("KGREC_NEO4J_PAGECACHE"))
    batch_size: int = Field(5000, ge=1, le=100_000, validation_alias=_env("KGREC_BATCH_SIZE"))

    @field_validator("neo4j_uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in BOLT_SCHEMES or not parsed.hostname:
            raise ValueError(f"NEO4J_URI (got {value!r}) must look like bolt://host:port or neo4j://host:port")
        try:
            port = parsed.port
        except ValueError:  # not a number, or beyond 65535
            port = 0
        if port == 0:
            raise ValueError(f"NEO4J_URI (got {value!r}) must name a port from 1 to 65535, or none (7687)")
        return value

    @field_validator("neo4j_heap", "neo4j_pagecache")
    @classmethod
    def _check_memory(cls, value: str) -> str:
        if not value[:-1].isdigit() or value[-1].lower() not in "kmg":
            raise ValueError(f"memory sizes look like 512m or 2g (got {value!r})")
        return value.lower()

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "development":
            return self
        for name, secret in (("NEO4J_PASSWORD", self.neo4j_password_), ("KGREC_API_KEY", self.api_key_)):
            value = None if secret is None else secret.get_secret_value()
            if value is not None and (value in PLACEHOLDER_SECRETS or value.startswith("change-me")):
                raise ValueError(
                    f"{name} is a well-known placeholder; choose a real secret (or set KGREC_ENV=development)"
                )
        return self

    @property
    def neo4j_password(self) -> str:
        """The Neo4j password; the development default only in development mode."""
        return self._secret(self.neo4j_password_, "NEO4J_PASSWORD", DEV_PASSWORD)

    @property
    def api_key(self) -> str:
        """The API key for write endpoints; the development default only in development mode."""
        return self._secret(self.api_key_, "KGREC_API_KEY", DEV_API_KEY)

    def _secret(self, value: SecretStr | None, name: str, dev_default: str) -> str:
        if value is not None:
            return value.get_secret_value()
        if self.env == "development":
            return dev_default
        raise ConfigError(
            f"{name} is not set: put it in the environment or in .env "
            f"(`make env` writes a .env with fresh random secrets), or set KGREC_ENV=development for local defaults"
        )

    @property
    def bolt_port(self) -> int:
        """The port in NEO4J_URI (7687 when it names none)."""
        return urlparse(self.neo4j_uri).port or 7687

    @property
    def neo4j_home(self) -> Path:
        """Where the local Neo4j keeps its store, logs and configuration."""
        return self.data_dir.expanduser().resolve() / "neo4j"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; errors in them become one :class:`ConfigError`."""
    return load_settings()


def load_settings(**overrides: object) -> Settings:
    """Read settings afresh, with keyword overrides (field names) on top of the environment."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid settings: {problems}") from e
