"""Settings, read from the environment (and an optional `.env`) once, then passed down explicitly.

Each package owns the settings of what it configures, with its defaults and bounds written there once
(`BreakerSettings` in the breaker, `WriterSettings` by the writer, `BatchPolicy` by the batching logic, ...);
this module only composes them and maps environment names onto their fields."""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, cast, get_args
from urllib.parse import quote, urlsplit

import msgspec
from dotenv import dotenv_values
from msgspec.inspect import BoolType, DataclassType, FloatType, IntType, NoneType, StructType, Type, UnionType
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sentiment.breaker import BreakerSettings, InvalidBreakerSetting
from sentiment.core.bounds import AtLeastOne, Positive
from sentiment.core.domain import VADER_KEY
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import (
    BUILTIN_MODELS,
    KEY_ALIASES,
    LOCAL_AI_KEY,
    REMOTE_KEY,
    LlmOptions,
    ModelSpec,
    openai_base_url,
    spec_from_source,
    trained_models,
)
from sentiment.inference.llm_settings import LlmEntryError, llm_options
from sentiment.inference.long_texts import LONG_TEXT_MODES, LongTexts
from sentiment.inference.paths import DEFAULT_CACHE_DIR, EXECUTION_PATHS, ExecutionPath
from sentiment.services.settings import AlertRules, DatasetSettings, UploadPolicy
from sentiment.storage.settings import WriterSettings
from sentiment.web.settings import ServerLimits

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./sentiment.db"
DEFAULT_MODELS_DIR = "./models"

# Settings that mean nothing here, with why: those of the original multi-process system, the key of the signed
# session cookie of old (a page session is now a row in the database, its cookie only a random id), and the
# memory bound of waiting predictions (they wait in the journal now).
OBSOLETE_SETTINGS = {
    **dict.fromkeys(
        ("REDIS_HOST", "REDIS_PASSWORD", "MKL_NUM_THREADS"),
        "means nothing in the single-process service",
    ),
    "SENTIMENT_SESSION_SECRET": "means nothing now that page sessions are kept in the database",
    "SENTIMENT_MAX_PENDING_MB": "means nothing now that waiting predictions are kept in the journal on disk "
    "(SENTIMENT_JOURNAL_MB bounds it)",
}


RateUnit = Literal["second", "minute", "hour", "day"]
Device = Literal["cpu", "cuda", "auto"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RATE_UNITS = get_args(RateUnit)


class SettingsError(ValueError):
    """A setting that cannot be used; its message is the one line start-up prints."""


class Settings(msgspec.Struct, frozen=True):
    database_url: str = DEFAULT_DATABASE_URL
    default_model: str = VADER_KEY
    models: tuple[ModelSpec, ...] = BUILTIN_MODELS
    breaker: BreakerSettings = BreakerSettings()
    alert_rules: AlertRules = AlertRules()
    writer: WriterSettings = WriterSettings()
    batching: BatchPolicy = BatchPolicy()
    datasets: DatasetSettings = DatasetSettings()
    cache_size: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    cache_mb: Positive = 64.0
    device: Device = "auto"
    # How a transformers model named by its folder alone runs (configured ones carry their own path).
    execution_path: ExecutionPath = "auto"
    long_texts: LongTexts = "head"
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    # Where `sentiment train` and the training page put fine-tuned models; each is catalogued at start.
    models_dir: str = DEFAULT_MODELS_DIR
    sync_interval_s: Positive = 2.0
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    server: ServerLimits = ServerLimits()
    admin_token: str | None = None
    # A page session unused this long ends; at most (and when unset) 12 h.
    session_idle_minutes: Annotated[int, msgspec.Meta(ge=1, le=720)] | None = None
    api_keys: bool = False  # the JSON endpoints need an API key (or the admin token)
    uploads: UploadPolicy = "open"
    secure_cookies: bool = False
    torch_threads: AtLeastOne | None = None
    store_text: bool = True
    max_text_length: AtLeastOne = 10_000
    max_batch_size: AtLeastOne = 256
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 4 * 1024 * 1024
    rate_limit: tuple[RateUnit, int] | None = None
    retention_days: AtLeastOne | None = None
    # Pending migrations applied at start (on Postgres under an advisory lock: replicas starting together take
    # turns); off where a release job migrates (deploy/k8s).
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
            file_values = (
                {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
            )
            env = {**file_values, **os.environ}
        values = _table_values(env)
        path = _execution_path(
            env.get("SENTIMENT_EXECUTION_PATH", "").strip() or "auto", "SENTIMENT_EXECUTION_PATH"
        )
        models = (
            BUILTIN_MODELS
            + _models_file(env.get("SENTIMENT_MODELS_FILE", "").strip(), path, env)
            + _parse_models(env.get("SENTIMENT_MODELS", ""), path)
            + _remote_model(env)
        )
        models_dir = Path(env.get("SENTIMENT_MODELS_DIR", "").strip() or DEFAULT_MODELS_DIR)
        keys = [spec.key for spec in models]
        if len(set(keys)) != len(keys):
            raise SettingsError(f"SENTIMENT_MODELS repeats a model key: {', '.join(keys)}")
        trained = trained_models(models_dir, path)
        if clashes := sorted(set(keys) & {spec.key for spec in trained}):
            raise SettingsError(
                f"model key {', '.join(clashes)} is configured and is also a fine-tuned model in "
                f"{models_dir}: rename one of them"
            )
        models += trained
        values[("models",)] = models
        values[("execution_path",)] = path
        if preload := env.get("PRELOAD_MODEL", "").strip():
            values[("default_model",)] = _resolve_model_key(preload, keys)
        values[("database_url",)] = _database_url(env)
        values[("warnings",)] = tuple(
            f"{name} is set but {why}; it is ignored"
            for name, why in OBSOLETE_SETTINGS.items()
            if name in env
        )
        tree = _nested(values)
        breaker = _breaker(tree.pop("breaker", {}), env)
        try:
            settings = msgspec.convert(tree, cls)
        except msgspec.ValidationError as error:  # every variable was read and checked: a bug, said as such
            raise SettingsError(f"settings refused: {error}") from None
        return msgspec.structs.replace(settings, breaker=breaker)


class EnvField(NamedTuple):
    """The `Settings` field an environment variable sets; `parse` reads texts that are not plain numbers,
    booleans or strings, and `per` divides a number given in a smaller unit (milliseconds for seconds)."""

    path: tuple[str, ...]
    parse: Callable[[str], object] | None = None
    per: float = 1.0


def _device(raw: str) -> str:
    device = raw.lower()
    if device not in get_args(Device):
        raise SettingsError(f"SENTIMENT_DEVICE={device!r} is not a device; use cpu, cuda or auto")
    return device


def _long_texts(raw: str) -> str:
    mode = raw.lower().replace("-", "_")
    if mode not in LONG_TEXT_MODES:
        raise SettingsError(
            f"SENTIMENT_LONG_TEXTS={raw!r} is not a mode; use {', '.join(LONG_TEXT_MODES)} (see the README)"
        )
    return mode


def _uploads(raw: str) -> str:
    policy = raw.lower()
    if policy not in get_args(UploadPolicy):
        raise SettingsError(
            f"SENTIMENT_UPLOADS={raw!r} is not a policy; use open (anyone) or admin (an admin or an API key)"
        )
    return policy


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL={raw!r} is not a log level; use {', '.join(LOG_LEVELS)}")
    return level


def _rate_limit(raw: str) -> tuple[RateUnit, int] | None:
    """`N/unit` (unit: second, minute, hour or day) requests per client to the prediction endpoints."""
    if not raw or raw.lower() in {"0", "off", "none"}:
        return None
    count, _, unit = raw.partition("/")
    unit = unit.strip().lower().rstrip("s")
    if not count.strip().isdigit() or int(count) < 1 or unit not in RATE_UNITS:
        raise SettingsError(
            f"SENTIMENT_RATE_LIMIT={raw!r} is not of the form N/minute (or /second, /hour, /day)"
        )
    return unit, int(count)  # type: ignore[return-value]  # unit was checked against RATE_UNITS just above


# Environment name -> the field it sets. Defaults and bounds are written on the fields only: a variable that
# is not set (or is empty) leaves its field's default; a set one is read by its field's type and checked
# against the field's bounds, and a refusal names the variable.
ENV_FIELDS: dict[str, EnvField] = {
    "FAILSAFE_MAX_LLM_FAILURES": EnvField(("breaker", "max_failures")),
    "FAILSAFE_FAILURE_WINDOW_SECONDS": EnvField(("breaker", "window_s")),
    "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": EnvField(("breaker", "open_s")),
    "FAILSAFE_CALL_TIMEOUT_SECONDS": EnvField(("breaker", "call_timeout_s")),
    "SENTIMENT_ALERT_FALLBACK_RATE": EnvField(("alert_rules", "fallback_rate")),
    "SENTIMENT_ALERT_P95_MS": EnvField(("alert_rules", "latency_p95_ms")),
    "SENTIMENT_ALERT_WINDOW_SECONDS": EnvField(("alert_rules", "window_s")),
    "SENTIMENT_ALERT_MIN_REQUESTS": EnvField(("alert_rules", "min_requests")),
    "SENTIMENT_ALERT_CHECK_SECONDS": EnvField(("alert_rules", "check_interval_s")),
    "SENTIMENT_WRITE_BATCH_SIZE": EnvField(("writer", "batch_size")),
    "SENTIMENT_MAX_PENDING_WRITES": EnvField(("writer", "max_pending")),
    "SENTIMENT_JOURNAL_DIR": EnvField(("writer", "journal_dir")),
    "SENTIMENT_JOURNAL_MB": EnvField(("writer", "journal_mb")),
    "SENTIMENT_WRITE_INTERVAL_SECONDS": EnvField(("writer", "flush_interval_s")),
    "SENTIMENT_BATCH_SIZE": EnvField(("batching", "max_batch_size")),
    "SENTIMENT_BATCH_TOKENS": EnvField(("batching", "max_batch_tokens")),
    "SENTIMENT_MICRO_BATCH_SIZE": EnvField(("batching", "micro_batch_size")),
    "SENTIMENT_MICRO_BATCH_TOKENS": EnvField(("batching", "micro_batch_tokens")),
    "SENTIMENT_BATCH_WAIT_MS": EnvField(("batching", "max_wait_s"), per=1000),
    "SENTIMENT_QUEUE_SIZE": EnvField(("batching", "max_queue")),
    "SENTIMENT_DATA_DIR": EnvField(("datasets", "data_dir")),
    "SENTIMENT_MAX_UPLOAD_BYTES": EnvField(("datasets", "max_upload_bytes")),
    "SENTIMENT_DATASET_CHUNK_ROWS": EnvField(("datasets", "chunk_rows")),
    "SENTIMENT_DATA_QUOTA_MB": EnvField(("datasets", "quota_mb")),
    "SENTIMENT_DATA_MIN_FREE_MB": EnvField(("datasets", "min_free_mb")),
    "SENTIMENT_UPLOAD_EXPIRY_HOURS": EnvField(("datasets", "upload_expiry_hours")),
    "SENTIMENT_CACHE_SIZE": EnvField(("cache_size",)),
    "SENTIMENT_CACHE_MB": EnvField(("cache_mb",)),
    "SENTIMENT_DEVICE": EnvField(("device",), _device),
    "SENTIMENT_LONG_TEXTS": EnvField(("long_texts",), _long_texts),
    "SENTIMENT_CACHE_DIR": EnvField(("cache_dir",)),
    "SENTIMENT_MODELS_DIR": EnvField(("models_dir",)),
    "SENTIMENT_SYNC_INTERVAL_SECONDS": EnvField(("sync_interval_s",)),
    "HOST": EnvField(("host",)),
    "PORT": EnvField(("port",)),
    "SENTIMENT_HEADER_TIMEOUT_SECONDS": EnvField(("server", "header_timeout_s")),
    "SENTIMENT_KEEP_ALIVE_SECONDS": EnvField(("server", "keep_alive_s")),
    "SENTIMENT_MAX_CONNECTIONS": EnvField(("server", "max_connections")),
    "SENTIMENT_SHUTDOWN_SECONDS": EnvField(("server", "shutdown_s")),
    "SENTIMENT_ADMIN_TOKEN": EnvField(("admin_token",)),
    "SENTIMENT_SESSION_IDLE_MINUTES": EnvField(("session_idle_minutes",)),
    "SENTIMENT_API_KEYS": EnvField(("api_keys",)),
    "SENTIMENT_UPLOADS": EnvField(("uploads",), _uploads),
    "SENTIMENT_SECURE_COOKIES": EnvField(("secure_cookies",)),
    "OMP_NUM_THREADS": EnvField(("torch_threads",)),
    "SENTIMENT_STORE_TEXT": EnvField(("store_text",)),
    "SENTIMENT_MAX_TEXT_LENGTH": EnvField(("max_text_length",)),
    "SENTIMENT_MAX_BATCH_SIZE": EnvField(("max_batch_size",)),
    "SENTIMENT_MAX_BODY_BYTES": EnvField(("max_body_bytes",)),
    "SENTIMENT_RATE_LIMIT": EnvField(("rate_limit",), _rate_limit),
    "SENTIMENT_RETENTION_DAYS": EnvField(("retention_days",)),
    "SENTIMENT_AUTO_MIGRATE": EnvField(("auto_migrate",)),
    "LOG_LEVEL": EnvField(("log_level",), _log_level),
    "LOG_JSON": EnvField(("log_json",)),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _table_values(env: Mapping[str, str]) -> dict[tuple[str, ...], object]:
    """The values of the `ENV_FIELDS` variables that are set, read and checked, by field path."""
    values: dict[tuple[str, ...], object] = {}
    for name, (path, parse, per) in ENV_FIELDS.items():
        raw = env.get(name, "").strip()
        if raw:
            value = parse(raw) if parse is not None else _read(name, raw, field_type(path))
            values[path] = cast(float, value) / per if per != 1.0 else value
    return values


def _read(name: str, raw: str, kind: Type) -> object:
    """`raw` as a value of the field type `kind`, within its bounds; else the one line that says why not."""
    if isinstance(kind, UnionType):  # `int | None` and the like: a set variable is never None
        kind = next(member for member in kind.types if not isinstance(member, NoneType))
    if isinstance(kind, BoolType):
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")
    if isinstance(kind, IntType):
        try:
            whole = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if (kind.ge is not None and whole < kind.ge) or (kind.le is not None and whole > kind.le):
            low, high = ("" if bound is None else bound for bound in (kind.ge, kind.le))
            raise SettingsError(f"{name}={whole} is out of range ({low}..{high})")
        return whole
    if isinstance(kind, FloatType):
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if kind.gt is not None and not number > kind.gt:  # NaN too
            raise SettingsError(f"{name}={raw!r} must be greater than {kind.gt}")
        if kind.ge is not None and not number >= kind.ge:
            raise SettingsError(f"{name}={raw!r} must be {kind.ge} or more")
        return number
    return raw


def _breaker(given: dict[str, Any], env: Mapping[str, str]) -> BreakerSettings:
    """The breaker checks its own bounds (it imports nothing that could read them off a type); its refusal is
    said as `_read` says one: a whole number as read, any other value as it was written."""
    try:
        return BreakerSettings(**given)
    except InvalidBreakerSetting as invalid:
        name = next(name for name, field in ENV_FIELDS.items() if field.path == ("breaker", invalid.field))
        shown = invalid.value if isinstance(invalid.value, int) else repr(env[name].strip())
        raise SettingsError(f"{name}={shown} {invalid.rule}") from None


def _nested(values: Mapping[tuple[str, ...], object]) -> dict[str, Any]:
    """`{("breaker", "max_failures"): 5}` -> `{"breaker": {"max_failures": 5}}`."""
    tree: dict[str, Any] = {}
    for path, value in values.items():
        branch = tree
        for name in path[:-1]:
            branch = branch.setdefault(name, {})
        branch[path[-1]] = value
    return tree


@functools.cache
def field_type(path: tuple[str, ...]) -> Type:
    """The type (with its bounds) of the `Settings` field at `path`; KeyError when there is none."""
    kind: Type = msgspec.inspect.type_info(Settings)
    for name in path:
        fields = kind.fields if isinstance(kind, StructType | DataclassType) else ()
        found = next((field.type for field in fields if field.name == name), None)
        if found is None:
            raise KeyError(f"Settings has no field {'.'.join(path)}")
        kind = found
    return kind


def _execution_path(raw: str, where: str) -> ExecutionPath:
    if raw not in EXECUTION_PATHS:
        raise SettingsError(
            f"{where}={raw!r} is not an execution path; use one of {', '.join(EXECUTION_PATHS)}"
        )
    return raw


def _parse_models(raw: str, path: ExecutionPath) -> tuple[ModelSpec, ...]:
    specs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, source = (s.strip() for s in item.partition("="))
        if not sep or not key or not source:
            raise SettingsError(f"SENTIMENT_MODELS entry {item!r} is not of the form key=folder-or-hub-id")
        specs.append(spec_from_source(key, source, path))
    return tuple(specs)


def _models_file(path: str, default_path: ExecutionPath, env: Mapping[str, str]) -> tuple[ModelSpec, ...]:
    """`[models.KEY]` tables: a `source` each (a folder, a hub id or a remote server URL) and optionally a
    `path` (fp32, int8, onnx, onnx-int8); or `kind = "openai"`, a language model behind an OpenAI-compatible
    server (`base_url`, `model`, `api_key_env`, prompt and limits: see the README)."""
    if not path:
        return ()
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"SENTIMENT_MODELS_FILE={path!r} cannot be read: {error}") from None
    specs = []
    for key, table in document.get("models", {}).items():
        where = f"SENTIMENT_MODELS_FILE {path!r}: [models.{key}]"
        if isinstance(table, dict) and table.get("kind") == "openai":
            try:
                base_url, options = llm_options(table, Path(path).parent, env)
            except LlmEntryError as error:
                raise SettingsError(f"{where} {error}") from None
            specs.append(ModelSpec(key, base_url, kind="openai", known_labels=options.labels, llm=options))
            continue
        if not isinstance(table, dict) or not isinstance(table.get("source"), str):
            raise SettingsError(f'{where} needs a source = "..." (or kind = "openai" and a base_url)')
        execution = _execution_path(str(table.get("path", default_path)), f"[models.{key}] path")
        specs.append(spec_from_source(key, table["source"], execution))
    return tuple(specs)


def _remote_model(env: Mapping[str, str]) -> tuple[ModelSpec, ...]:
    """MODEL_SERVICE_URL as the original system read it: with USE_LOCAL_AI=true a LocalAI server (OpenAI API;
    the served model from LOCAL_AI_MODEL or else the first it lists), otherwise a server speaking
    text-embeddings-inference's /predict."""
    url = env.get("MODEL_SERVICE_URL", "").strip()
    local_ai = _read("USE_LOCAL_AI", env.get("USE_LOCAL_AI", "").strip() or "false", BoolType())
    if local_ai and not url:
        raise SettingsError(
            "USE_LOCAL_AI=true needs MODEL_SERVICE_URL, the LocalAI server (http://host:8080)"
        )
    if not url:
        return ()
    parsed = urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise SettingsError(f"MODEL_SERVICE_URL={url!r} is not an http(s) URL")
    if local_ai:
        options = LlmOptions(model=env.get("LOCAL_AI_MODEL", "").strip() or None)
        return (
            ModelSpec(
                LOCAL_AI_KEY, openai_base_url(url), kind="openai", known_labels=options.labels, llm=options
            ),
        )
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
        database = env.get("POSTGRES_DB", "sentiment")
        url = f"postgresql+asyncpg://{credentials}@{env['POSTGRES_HOST']}:{port}/{database}"
    url = url or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            f"DATABASE_URL={url!r} is not a database URL (e.g. postgresql+asyncpg://user@host/db)"
        ) from None
    # Accept the plain URLs people paste and pick the async drivers this service uses.
    drivers = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise SettingsError(f"DATABASE_URL uses {backend!r}; supported: sqlite, postgresql")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)
