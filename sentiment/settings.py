"""Settings, read from the environment (and an optional `.env`) once, then passed down explicitly."""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

import msgspec
from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sentiment.core.domain import VADER_KEY
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import BUILTIN_MODELS, KEY_ALIASES, REMOTE_KEY, ModelSpec, spec_from_source
from sentiment.inference.paths import EXECUTION_PATHS, ExecutionPath

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sentiment.db"

# Settings of the original multi-process system that mean nothing in one process.
OBSOLETE_SETTINGS = ("REDIS_HOST", "REDIS_PASSWORD", "USE_LOCAL_AI", "MKL_NUM_THREADS")


RateUnit = Literal["second", "minute", "hour", "day"]
RATE_UNITS = ("second", "minute", "hour", "day")


class SettingsError(ValueError):
    """A setting that cannot be used; its message is the one line start-up prints."""


class BreakerSettings(msgspec.Struct, frozen=True):
    max_failures: int = 3
    window_s: float = 300.0
    open_s: float = 60.0
    call_timeout_s: float = 10.0


class AlertRules(msgspec.Struct, frozen=True):
    fallback_rate: float = 0.2
    latency_p95_ms: float = 2_000.0
    window_s: float = 300.0
    min_requests: int = 20
    check_interval_s: float = 5.0


class WriterSettings(msgspec.Struct, frozen=True):
    batch_size: int = 500
    max_pending: int = 100_000
    flush_interval_s: float = 0.2


class DatasetSettings(msgspec.Struct, frozen=True):
    """Data-set uploads (added with data-set scoring): where files are kept, how big one may be, rows per chunk."""

    data_dir: str = "./datasets"
    max_upload_bytes: int = 1 << 30
    chunk_rows: int = 1024


class Settings(msgspec.Struct, frozen=True):
    database_url: str = DEFAULT_DATABASE_URL
    default_model: str = VADER_KEY
    models: tuple[ModelSpec, ...] = BUILTIN_MODELS
    breaker: BreakerSettings = BreakerSettings()
    alert_rules: AlertRules = AlertRules()
    writer: WriterSettings = WriterSettings()
    batching: BatchPolicy = BatchPolicy()
    datasets: DatasetSettings = DatasetSettings()
    cache_size: int = 10_000
    device: Literal["cpu", "cuda", "auto"] = "auto"
    cache_dir: str = str(Path.home() / ".cache" / "sentiment")
    sync_interval_s: float = 2.0
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str | None = None
    session_secret: str | None = None
    secure_cookies: bool = False
    torch_threads: int | None = None
    store_text: bool = True
    max_text_length: int = 10_000
    max_batch_size: int = 256
    max_body_bytes: int = 4 * 1024 * 1024
    rate_limit: tuple[RateUnit, int] | None = None
    retention_days: int | None = None
    auto_migrate: bool = True
    log_level: str = "INFO"
    log_json: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def model_keys(self) -> list[str]:
        return [spec.key for spec in self.models]

    def model(self, key: str) -> ModelSpec | None:
        return next((spec for spec in self.models if spec.key == key), None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> Settings:
        """Build settings from `env` (default: `.env` overlaid by the process environment)."""
        if env is None:
            file_values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
            env = {**file_values, **os.environ}
        reader = _EnvReader(env)
        path = _execution_path(env.get("SENTIMENT_EXECUTION_PATH", "").strip() or "fp32", "SENTIMENT_EXECUTION_PATH")
        models = (
            BUILTIN_MODELS
            + _models_file(env.get("SENTIMENT_MODELS_FILE", "").strip(), path)
            + _parse_models(env.get("SENTIMENT_MODELS", ""), path)
            + _remote_model(env.get("MODEL_SERVICE_URL", "").strip())
        )
        keys = [spec.key for spec in models]
        if len(set(keys)) != len(keys):
            raise SettingsError(f"SENTIMENT_MODELS repeats a model key: {', '.join(keys)}")
        default_model = _resolve_model_key(env.get("PRELOAD_MODEL", "").strip() or VADER_KEY, keys)
        database_url = _database_url(env)
        return cls(
            database_url=database_url,
            default_model=default_model,
            models=models,
            breaker=BreakerSettings(
                max_failures=reader.integer("FAILSAFE_MAX_LLM_FAILURES", 3, minimum=1),
                window_s=reader.number("FAILSAFE_FAILURE_WINDOW_SECONDS", 300.0),
                open_s=reader.number("FAILSAFE_CIRCUIT_BREAKER_TIMEOUT", 60.0),
                call_timeout_s=reader.number("FAILSAFE_CALL_TIMEOUT_SECONDS", 10.0),
            ),
            alert_rules=AlertRules(
                fallback_rate=reader.number("SENTIMENT_ALERT_FALLBACK_RATE", 0.2),
                latency_p95_ms=reader.number("SENTIMENT_ALERT_P95_MS", 2000.0),
                window_s=reader.number("SENTIMENT_ALERT_WINDOW_SECONDS", 300.0),
                min_requests=reader.integer("SENTIMENT_ALERT_MIN_REQUESTS", 20, minimum=1),
                check_interval_s=reader.number("SENTIMENT_ALERT_CHECK_SECONDS", 5.0),
            ),
            writer=WriterSettings(
                batch_size=reader.integer("SENTIMENT_WRITE_BATCH_SIZE", 500, minimum=1),
                max_pending=reader.integer("SENTIMENT_MAX_PENDING_WRITES", 100_000, minimum=1),
                flush_interval_s=reader.number("SENTIMENT_WRITE_INTERVAL_SECONDS", 0.2),
            ),
            batching=BatchPolicy(
                max_batch_size=reader.integer("SENTIMENT_BATCH_SIZE", 64, minimum=1),
                max_batch_tokens=reader.integer("SENTIMENT_BATCH_TOKENS", 16384, minimum=1),
                micro_batch_size=reader.integer("SENTIMENT_MICRO_BATCH_SIZE", 16, minimum=1),
                micro_batch_tokens=reader.integer("SENTIMENT_MICRO_BATCH_TOKENS", 384, minimum=1),
                max_wait_s=reader.number("SENTIMENT_BATCH_WAIT_MS", 10.0, allow_zero=True) / 1000,
                max_queue=reader.integer("SENTIMENT_QUEUE_SIZE", 2048, minimum=1),
            ),
            datasets=DatasetSettings(
                data_dir=env.get("SENTIMENT_DATA_DIR", "").strip() or "./datasets",
                max_upload_bytes=reader.integer("SENTIMENT_MAX_UPLOAD_BYTES", 1 << 30, minimum=1024),
                chunk_rows=reader.integer("SENTIMENT_DATASET_CHUNK_ROWS", 1024, minimum=1),
            ),
            cache_size=reader.integer("SENTIMENT_CACHE_SIZE", 10_000, minimum=0),
            device=_device(env.get("SENTIMENT_DEVICE", "").strip().lower() or "auto"),
            cache_dir=env.get("SENTIMENT_CACHE_DIR") or str(Path.home() / ".cache" / "sentiment"),
            sync_interval_s=reader.number("SENTIMENT_SYNC_INTERVAL_SECONDS", 2.0),
            host=env.get("HOST", "127.0.0.1"),
            port=reader.integer("PORT", 8080, minimum=1, maximum=65535),
            admin_token=env.get("SENTIMENT_ADMIN_TOKEN") or None,
            session_secret=env.get("SENTIMENT_SESSION_SECRET") or None,
            secure_cookies=reader.boolean("SENTIMENT_SECURE_COOKIES", False),
            torch_threads=reader.integer("OMP_NUM_THREADS", None, minimum=1),
            store_text=reader.boolean("SENTIMENT_STORE_TEXT", True),
            max_text_length=reader.integer("SENTIMENT_MAX_TEXT_LENGTH", 10_000, minimum=1),
            max_batch_size=reader.integer("SENTIMENT_MAX_BATCH_SIZE", 256, minimum=1),
            max_body_bytes=reader.integer("SENTIMENT_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            rate_limit=_rate_limit(env.get("SENTIMENT_RATE_LIMIT", "").strip()),
            retention_days=reader.integer("SENTIMENT_RETENTION_DAYS", None, minimum=1),
            auto_migrate=reader.boolean("SENTIMENT_AUTO_MIGRATE", make_url(database_url).get_backend_name() == "sqlite"),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_json=reader.boolean("LOG_JSON", False),
            warnings=tuple(
                f"{name} is set but means nothing in the single-process service; it is ignored"
                for name in OBSOLETE_SETTINGS
                if name in env
            ),
        )


class _EnvReader:
    """Typed reads of environment values, each failing with a message that names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int | None, minimum: int | None = None, maximum: int | None = None) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise SettingsError(f"{name}={value} is out of range ({minimum}..{maximum if maximum is not None else ''})")
        return value

    def number(self, name: str, default: float, allow_zero: bool = False) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
            raise SettingsError(f"{name}={raw!r} must be {'0 or more' if allow_zero else 'greater than 0'}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def _rate_limit(raw: str) -> tuple[RateUnit, int] | None:
    """`N/unit` (unit: second, minute, hour or day) requests per client to the prediction endpoints."""
    if not raw or raw.lower() in {"0", "off", "none"}:
        return None
    count, _, unit = raw.partition("/")
    unit = unit.strip().lower().rstrip("s")
    if not count.strip().isdigit() or int(count) < 1 or unit not in RATE_UNITS:
        raise SettingsError(f"SENTIMENT_RATE_LIMIT={raw!r} is not of the form N/minute (or /second, /hour, /day)")
    return unit, int(count)  # type: ignore[return-value]


def _device(raw: str) -> Literal["cpu", "cuda", "auto"]:
    if raw not in {"cpu", "cuda", "auto"}:
        raise SettingsError(f"SENTIMENT_DEVICE={raw!r} is not a device; use cpu, cuda or auto")
    return raw  # type: ignore[return-value]


def _execution_path(raw: str, where: str) -> ExecutionPath:
    if raw not in EXECUTION_PATHS:
        raise SettingsError(f"{where}={raw!r} is not an execution path; use one of {', '.join(EXECUTION_PATHS)}")
    return raw  # type: ignore[return-value]


def _parse_models(raw: str, path: ExecutionPath) -> tuple[ModelSpec, ...]:
    specs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, source = (s.strip() for s in item.partition("="))
        if not sep or not key or not source:
            raise SettingsError(f"SENTIMENT_MODELS entry {item!r} is not of the form key=folder-or-hub-id")
        specs.append(spec_from_source(key, source, path))
    return tuple(specs)


def _models_file(path: str, default_path: ExecutionPath) -> tuple[ModelSpec, ...]:
    """`[models.KEY]` tables with a `source` each (a folder, a hub id or a remote server URL) and optionally
    a `path` (fp32, int8, onnx, onnx-int8)."""
    if not path:
        return ()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"SENTIMENT_MODELS_FILE={path!r} cannot be read: {error}") from None
    specs = []
    for key, table in document.get("models", {}).items():
        if not isinstance(table, dict) or not isinstance(table.get("source"), str):
            raise SettingsError(f"SENTIMENT_MODELS_FILE {path!r}: [models.{key}] needs a source = \"...\"")
        execution = _execution_path(str(table.get("path", default_path)), f"[models.{key}] path")
        specs.append(spec_from_source(key, table["source"], execution))
    return tuple(specs)


def _remote_model(url: str) -> tuple[ModelSpec, ...]:
    if not url:
        return ()
    parsed = urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise SettingsError(f"MODEL_SERVICE_URL={url!r} is not an http(s) URL")
    return (spec_from_source(REMOTE_KEY, url),)


def _resolve_model_key(key: str, known: list[str]) -> str:
    key = KEY_ALIASES.get(key, key)
    if key not in known:
        raise SettingsError(f"PRELOAD_MODEL={key!r} is not a known model; known models: {', '.join(known)}")
    return key


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL", "").strip()
    if not url and env.get("POSTGRES_HOST"):
        user = quote(env.get("POSTGRES_USER", "postgres"), safe="")
        password = env.get("POSTGRES_PASSWORD")
        credentials = f"{user}:{quote(password, safe='')}" if password else user
        port = env.get("POSTGRES_PORT", "5432")
        url = f"postgresql+asyncpg://{credentials}@{env['POSTGRES_HOST']}:{port}/{env.get('POSTGRES_DB', 'sentiment')}"
    url = url or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"DATABASE_URL={url!r} is not a database URL (e.g. postgresql+asyncpg://user@host/db)") from None
    # Accept the plain URLs people paste and pick the async drivers this service uses.
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise SettingsError(f"DATABASE_URL uses {backend!r}; supported: sqlite, postgresql")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)
