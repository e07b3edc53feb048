from pathlib import Path

import pytest

from sentiment.breaker import BreakerSettings
from sentiment.inference.batching import BatchPolicy
from sentiment.settings import DEFAULT_DATABASE_URL, ENV_FIELDS, Settings, SettingsError, field_type


def test_defaults_serve_vader_on_a_local_sqlite_file() -> None:
    settings = Settings.from_env({})
    assert settings.default_model == "vader"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.auto_migrate is True
    assert (settings.breaker.max_failures, settings.breaker.window_s, settings.breaker.open_s) == (
        3,
        300.0,
        60.0,
    )


def test_extra_models_are_catalogued_and_preload_picks_the_default(tmp_path) -> None:
    settings = Settings.from_env(
        {"SENTIMENT_MODELS": f"local={tmp_path}, hub=org/some-model", "PRELOAD_MODEL": "local"}
    )
    assert settings.model("local").source == str(tmp_path)
    assert settings.model("hub").source == "org/some-model"
    assert settings.default_model == "local"


def test_original_preload_key_is_accepted_as_distilbert_sst2() -> None:
    assert Settings.from_env({"PRELOAD_MODEL": "distilbert-sentiment"}).default_model == "distilbert-sst2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PRELOAD_MODEL": "gpt-5"},
            "PRELOAD_MODEL='gpt-5' is not a known model; known models: distilbert-sst2",
        ),
        ({"FAILSAFE_MAX_LLM_FAILURES": "three"}, "FAILSAFE_MAX_LLM_FAILURES='three' is not a whole number"),
        (
            {"FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": "soon"},
            "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT='soon' is not a number",
        ),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL='not a url' is not a database URL"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL uses 'mysql'"),
        ({"SENTIMENT_MODELS": "just-a-key"}, "SENTIMENT_MODELS entry 'just-a-key' is not of the form"),
        ({"PORT": "99999"}, "PORT=99999 is out of range"),
        ({"SENTIMENT_STORE_TEXT": "maybe"}, "SENTIMENT_STORE_TEXT='maybe' is not a boolean"),
    ],
)
def test_bad_settings_stop_start_up_with_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_postgres_parts_build_an_asyncpg_url_and_plain_urls_get_async_drivers() -> None:
    parts = {"POSTGRES_HOST": "db", "POSTGRES_DB": "s", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p@ss"}
    assert Settings.from_env(parts).database_url == "postgresql+asyncpg://u:p%40ss@db:5432/s"
    assert (
        Settings.from_env({"DATABASE_URL": "postgres://u@h/d"}).database_url == "postgresql+asyncpg://u@h/d"
    )
    # Migrations apply at start on every database (on Postgres under an advisory lock) unless turned off.
    assert Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"}).auto_migrate is True
    off = {"DATABASE_URL": "postgresql://u@h/d", "SENTIMENT_AUTO_MIGRATE": "false"}
    assert Settings.from_env(off).auto_migrate is False


def test_obsolete_settings_are_accepted_with_a_warning_each() -> None:
    settings = Settings.from_env({"REDIS_HOST": "redis", "MKL_NUM_THREADS": "4"})
    assert len(settings.warnings) == 2
    assert any("REDIS_HOST" in w for w in settings.warnings)


def test_the_session_secret_of_cookie_sessions_is_ignored_with_a_warning_saying_why() -> None:
    (warning,) = Settings.from_env({"SENTIMENT_SESSION_SECRET": "x"}).warnings
    assert warning == (
        "SENTIMENT_SESSION_SECRET is set but means nothing now that page sessions are kept in the database; "
        "it is ignored"
    )


def test_session_idle_minutes_is_unset_by_default_and_bounded_by_the_12_hours_of_a_session() -> None:
    assert Settings.from_env({}).session_idle_minutes is None
    assert Settings.from_env({"SENTIMENT_SESSION_IDLE_MINUTES": "30"}).session_idle_minutes == 30
    for refused in ("0", "721", "half an hour"):
        with pytest.raises(SettingsError, match="SENTIMENT_SESSION_IDLE_MINUTES"):
            Settings.from_env({"SENTIMENT_SESSION_IDLE_MINUTES": refused})


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("PORT", "9100")
    settings = Settings.from_env(dotenv=dotenv)
    assert (settings.port, settings.log_level) == (9100, "DEBUG")


def test_device_defaults_to_auto_and_refuses_unknown_ones() -> None:
    assert Settings.from_env({}).device == "auto"
    assert Settings.from_env({"SENTIMENT_DEVICE": "CUDA"}).device == "cuda"
    with pytest.raises(SettingsError, match="SENTIMENT_DEVICE='tpu'"):
        Settings.from_env({"SENTIMENT_DEVICE": "tpu"})


def test_long_texts_default_to_the_head_and_refuse_unknown_modes() -> None:
    assert Settings.from_env({}).long_texts == "head"
    assert Settings.from_env({"SENTIMENT_LONG_TEXTS": "Head-Tail"}).long_texts == "head_tail"
    with pytest.raises(
        SettingsError, match="SENTIMENT_LONG_TEXTS='middle' is not a mode; use head, head_tail, windows"
    ):
        Settings.from_env({"SENTIMENT_LONG_TEXTS": "middle"})


def test_every_environment_name_lands_on_a_field_of_its_own() -> None:
    for name, entry in ENV_FIELDS.items():
        try:
            kind = field_type(entry.path)
        except KeyError:
            pytest.fail(f"{name} points at {'.'.join(entry.path)}, which Settings does not have")
        assert not hasattr(kind, "fields"), f"{name} points at a whole struct, not a field"
    paths = [entry.path for entry in ENV_FIELDS.values()]
    assert len(set(paths)) == len(paths)


def test_defaults_come_from_the_structs_themselves() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.breaker == BreakerSettings()
    assert settings.batching == BatchPolicy()


def test_nested_settings_are_read_into_their_structs() -> None:
    settings = Settings.from_env(
        {"FAILSAFE_MAX_LLM_FAILURES": "5", "SENTIMENT_BATCH_WAIT_MS": "25", "SENTIMENT_DATA_DIR": "/data"}
    )
    assert settings.breaker == BreakerSettings(max_failures=5)
    assert settings.batching.max_wait_s == 0.025
    assert settings.datasets.data_dir == "/data"


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("Yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_booleans_take_the_usual_spellings(text: str, value: bool) -> None:
    assert Settings.from_env({"SENTIMENT_STORE_TEXT": text}).store_text is value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FAILSAFE_MAX_LLM_FAILURES": "0"}, "FAILSAFE_MAX_LLM_FAILURES=0 is out of range (1..)"),
        (
            {"FAILSAFE_CALL_TIMEOUT_SECONDS": "-1"},
            "FAILSAFE_CALL_TIMEOUT_SECONDS='-1' must be greater than 0",
        ),
        ({"SENTIMENT_WRITE_BATCH_SIZE": "0"}, "SENTIMENT_WRITE_BATCH_SIZE=0 is out of range (1..)"),
        ({"SENTIMENT_ALERT_FALLBACK_RATE": "0"}, "SENTIMENT_ALERT_FALLBACK_RATE='0' must be greater than 0"),
        ({"SENTIMENT_BATCH_WAIT_MS": "-1"}, "SENTIMENT_BATCH_WAIT_MS='-1' must be 0 or more"),
        ({"SENTIMENT_BATCH_WAIT_MS": "soon"}, "SENTIMENT_BATCH_WAIT_MS='soon' is not a number"),
        ({"SENTIMENT_MAX_UPLOAD_BYTES": "10"}, "SENTIMENT_MAX_UPLOAD_BYTES=10 is out of range (1024..)"),
        ({"SENTIMENT_CACHE_SIZE": "-1"}, "SENTIMENT_CACHE_SIZE=-1 is out of range (0..)"),
        ({"OMP_NUM_THREADS": "two"}, "OMP_NUM_THREADS='two' is not a whole number"),
        ({"SENTIMENT_ALERT_P95_MS": "nan"}, "SENTIMENT_ALERT_P95_MS='nan' must be greater than 0"),
        (
            {"FAILSAFE_FAILURE_WINDOW_SECONDS": "nan"},
            "FAILSAFE_FAILURE_WINDOW_SECONDS='nan' must be greater than 0",
        ),
        ({"PORT": "8080.0"}, "PORT='8080.0' is not a whole number"),
        ({"SENTIMENT_RETENTION_DAYS": "null"}, "SENTIMENT_RETENTION_DAYS='null' is not a whole number"),
        ({"OMP_NUM_THREADS": "1e3"}, "OMP_NUM_THREADS='1e3' is not a whole number"),
        (
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL='verbose' is not a log level; use DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
    ],
)
def test_a_bad_value_of_any_field_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message


def test_numbers_are_read_as_python_reads_them() -> None:
    settings = Settings.from_env(
        {
            "PORT": "+9000",
            "SENTIMENT_MAX_PENDING_WRITES": "1_000",
            "OMP_NUM_THREADS": "04",
            "SENTIMENT_ALERT_P95_MS": "1_5e2",
        }
    )
    assert (settings.port, settings.writer.max_pending, settings.torch_threads) == (9000, 1000, 4)
    assert settings.alert_rules.latency_p95_ms == 1500.0


def write_models_file(folder: Path, text: str) -> dict[str, str]:
    (folder / "models.toml").write_text(text)
    return {"SENTIMENT_MODELS_FILE": str(folder / "models.toml")}


def test_a_language_model_entry_is_catalogued_with_its_key_read_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "shots.tsv").write_text("text\tlabel\nlate again\tNegative\n")
    env = write_models_file(
        tmp_path,
        """
[models.annotator]
kind = "openai"
base_url = "http://llm:8000/v1/"
model = "qwen2.5-7b"
api_key_env = "LLM_KEY"
labels = ["negative", "positive"]
examples = [{text = "great trip", label = "positive"}]
examples_file = "shots.tsv"
timeout_seconds = 12
max_concurrent = 8
requests_per_minute = 600
""",
    )
    settings = Settings.from_env({**env, "LLM_KEY": "sk-secret", "PRELOAD_MODEL": "annotator"})
    spec = settings.model("annotator")
    assert spec is not None and spec.llm is not None
    assert (spec.kind, spec.source, spec.labels, settings.default_model) == (
        "openai",
        "http://llm:8000/v1",
        ("negative", "positive"),
        "annotator",
    )
    assert spec.llm.api_key is not None and spec.llm.api_key.reveal() == "sk-secret"
    assert [example.label for example in spec.llm.examples] == ["positive", "negative"]
    assert (spec.llm.timeout_s, spec.llm.max_concurrent, spec.llm.requests_per_minute) == (12, 8, 600)
    # The key never shows itself, whatever prints the settings.
    assert "sk-secret" not in repr(settings) and "sk-secret" not in str(spec)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('base_url = "llm:8000"', "is not an http(s) URL"),
        (
            'base_url = "http://x"\napi_key_env = "MISSING_KEY"',
            "api_key_env names MISSING_KEY, which is not set",
        ),
        ('base_url = "http://x"\nlabels = ["negative"]', "labels must be two or three distinct"),
        ('base_url = "http://x"\nprompt = "Classify."', "prompt must hold {text}"),
        ('base_url = "http://x"\nprompt = "{post}"', "prompt is not a template"),
        ('base_url = "http://x"\ntemprature = 0', "unknown field `temprature`"),
        ('base_url = "http://x"\nmax_concurrent = 0', "Expected `int` >= 1"),
        (
            (
                'base_url = "http://x"\nlabels = ["negative", "positive"]\n'
                'examples = [{text = "ok", label = "neutral"}]'
            ),
            "examples are labelled neutral, which is not among labels",
        ),
    ],
)
def test_a_language_model_entry_that_cannot_work_is_refused_with_one_line(
    tmp_path: Path, entry: str, says: str
) -> None:
    env = write_models_file(tmp_path, f'[models.llm]\nkind = "openai"\n{entry}\n')
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert "[models.llm]" in str(refused.value) and says in str(refused.value)


def test_use_local_ai_defines_the_local_ai_model_as_the_original_system_did() -> None:
    env = {"USE_LOCAL_AI": "true", "MODEL_SERVICE_URL": "http://localai:8080", "PRELOAD_MODEL": "local-ai"}
    settings = Settings.from_env(env)
    spec = settings.model("local-ai")
    assert spec is not None and spec.llm is not None
    assert (spec.kind, spec.source, spec.llm.model, settings.default_model) == (
        "openai",
        "http://localai:8080/v1",
        None,
        "local-ai",
    )
    assert settings.warnings == ()
    named = Settings.from_env(
        {**env, "MODEL_SERVICE_URL": "http://localai:8080/v1/", "LOCAL_AI_MODEL": "phi"}
    )
    assert named.model("local-ai").source == "http://localai:8080/v1"  # type: ignore[union-attr]
    assert named.model("local-ai").llm.model == "phi"  # type: ignore[union-attr]
    # Without USE_LOCAL_AI the URL is a text-embeddings-inference server, as before.
    assert Settings.from_env({"MODEL_SERVICE_URL": "http://tei:8080"}).model("remote") is not None
    with pytest.raises(SettingsError, match="USE_LOCAL_AI=true needs MODEL_SERVICE_URL"):
        Settings.from_env({"USE_LOCAL_AI": "true"})


def test_models_fine_tuned_before_are_catalogued_from_the_models_folder(tmp_path: Path) -> None:
    for folder in ("airline-minilm", ".half-written.partial-1a2b", "not-a-trained-model"):
        (tmp_path / folder).mkdir()
    (tmp_path / "airline-minilm" / "training.json").write_text("{}")
    (tmp_path / ".half-written.partial-1a2b" / "training.json").write_text("{}")
    settings = Settings.from_env({"SENTIMENT_MODELS_DIR": str(tmp_path)})
    assert settings.models_dir == str(tmp_path)
    trained = settings.model("airline-minilm")
    assert trained is not None and trained.source == str(tmp_path / "airline-minilm")
    assert (
        settings.model("not-a-trained-model") is None and settings.model(".half-written.partial-1a2b") is None
    )
    with pytest.raises(SettingsError, match="airline-minilm is configured and is also a fine-tuned model"):
        Settings.from_env(
            {"SENTIMENT_MODELS_DIR": str(tmp_path), "SENTIMENT_MODELS": f"airline-minilm={tmp_path}"}
        )
