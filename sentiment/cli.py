"""`sentiment`: serve the API, score a text or a whole file and evaluate a model without a server, upgrade the
database schema, manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

import msgspec
import structlog

from sentiment.core.training import Hyperparameters
from sentiment.settings import EXECUTION_PATHS, Settings, SettingsError

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Exit codes: the command line was wrong (an unknown model, a missing file or column, a bad setting), or the
# work could not be done.
USAGE = 2
FAILED = 1


class Failed(NamedTuple):
    """A command's work that ended in an error already reported; `code` is the exit code."""

    code: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the HTTP service")
    serve.add_argument("--host", help="address to listen on (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")

    predict = commands.add_parser(
        "predict", help="score one text and print the prediction as JSON (no server)"
    )
    predict.add_argument("text")
    predict.add_argument("--model", help="model key or model folder (default: PRELOAD_MODEL, else vader)")

    score = commands.add_parser(
        "score",
        help="score every row of a CSV, TSV or Parquet file into a new one, with a progress bar (no server)",
        description="Reads IN as a stream and writes OUT with every input column plus label, confidence and "
        "one score per class; rows that cannot be scored are reported by line (Parquet: row) number and "
        "skipped. With --cluster the scoring runs on a Dask cluster; the output is the same.",
    )
    score.add_argument(
        "source", metavar="IN", help="CSV, TSV (.tsv) or Parquet (.parquet) with a header; text as UTF-8"
    )
    score.add_argument("--text-column", required=True, help="the column holding the texts")
    score.add_argument("--model", help="model key or model folder (default: PRELOAD_MODEL, else vader)")
    score.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="where the scored rows go: .csv, .tsv or .parquet",
    )
    score.add_argument(
        "--execution-path",
        choices=EXECUTION_PATHS,
        help="how a transformers model runs (default: the model's own, else SENTIMENT_EXECUTION_PATH)",
    )
    score.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="score on a Dask cluster: a scheduler address (tcp://host:8786), or local:N for N worker "
        "processes on this machine",
    )
    score.add_argument(
        "--threads",
        type=int,
        help="with --cluster: torch / ONNX Runtime threads per worker process (default: local:N shares the "
        "cores out; a remote cluster uses OMP_NUM_THREADS, else 1, for one worker process per core)",
    )
    score.add_argument(
        "--chunk-rows",
        type=int,
        help="rows sorted by length and scored together (default: SENTIMENT_DATASET_CHUNK_ROWS)",
    )
    score.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "eval",
        help="score a labelled file and print accuracy, macro-F1, macro recall, confusion matrix (no server)",
    )
    evaluate.add_argument(
        "source", metavar="DATA", help="a .tsv (text<TAB>label, split on the last tab) or a .csv"
    )
    evaluate.add_argument("--model", help="model key or model folder (default: PRELOAD_MODEL, else vader)")
    evaluate.add_argument("--text-column", default="text", help="default: text")
    evaluate.add_argument("--label-column", default="label", help="the gold labels (default: label)")
    evaluate.add_argument(
        "--chunk-rows",
        type=int,
        help="rows sorted by length and scored together (default: SENTIMENT_DATASET_CHUNK_ROWS)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")

    imports = commands.add_parser(
        "import-scores",
        help="load a file scored by `sentiment score` (with or without --cluster) as a data set",
        description="Stores every row of a scored CSV, TSV or Parquet file as a data set's predictions, in "
        "batches, with its counts by label, time and group and its metrics against a gold column; an "
        "interrupted import goes on where it stopped when run again with the same file and options.",
    )
    imports.add_argument("source", metavar="SCORED", help="a file written by `sentiment score`")
    imports.add_argument("--name", required=True, help="the data set's name on the pages")
    imports.add_argument("--text-column", default="text", help="default: text")
    imports.add_argument("--model", default="imported", help="what scored the file, as the pages name it")
    imports.add_argument("--time-column", help="a column of times: the trend by the corpus's own time")
    imports.add_argument(
        "--time-format", help="a strptime pattern, when the times are not read by themselves"
    )
    imports.add_argument("--group-column", help="a column of groups (an account, a topic, a country)")
    imports.add_argument("--gold-column", help="a column of gold labels: metrics of the scores against it")
    imports.add_argument("--no-progress", action="store_true", help="no progress bar")

    train = commands.add_parser(
        "train",
        help="fine-tune a model on labelled rows; it is served under --name from then on",
        description="Splits the labelled rows (stratified, fixed by --seed) into train, validation and test "
        "parts, fine-tunes --base with early stopping on validation macro-F1, and writes the model with its "
        "card to SENTIMENT_MODELS_DIR/NAME; prints the base model, the new one and VADER on the test part.",
    )
    train.add_argument("source", metavar="DATA", help="a CSV, TSV or Parquet file with texts and labels")
    train.add_argument("--text-column", default="text", help="default: text")
    train.add_argument(
        "--label-column",
        default="label",
        help="the labels to learn: a gold column, or another model's answers (default: label)",
    )
    train.add_argument("--base", required=True, help="model key or model folder to start from")
    train.add_argument("--name", required=True, help="the new model's key (and folder name)")
    defaults = Hyperparameters()
    for flag, kind, value, what in (
        ("--epochs", int, defaults.epochs, "passes over the training rows (early stopping may end sooner)"),
        ("--validation-share", float, defaults.validation_share, "share of rows held out for early stopping"),
        ("--test-share", float, defaults.test_share, "share of rows held out for the final report"),
        ("--max-length", int, defaults.max_length, "tokens per text the model sees"),
        ("--seed", int, defaults.seed, "fixes the split, the batch order and the new head's weights"),
        ("--batch-size", int, defaults.batch_size, "rows per optimiser step"),
        ("--learning-rate", float, defaults.learning_rate, "AdamW's peak rate"),
        ("--accumulation", int, defaults.accumulation, "split each batch in this many passes (less memory)"),
    ):
        train.add_argument(flag, type=kind, default=value, help=f"{what} (default: {value})")
    train.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        help="where to train (default: SENTIMENT_DEVICE, else auto)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress lines")

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply every pending migration")

    models = commands.add_parser("models", help="the model catalogue")
    models_actions = models.add_subparsers(dest="action", required=True)
    models_actions.add_parser("list", help="every known model with its source, labels and status")
    pull = models_actions.add_parser(
        "pull", help="download a hub model into the local cache, with a progress bar"
    )
    pull.add_argument("key")
    default = models_actions.add_parser(
        "default",
        help="the default model chosen through the API, which is stored and wins over PRELOAD_MODEL",
    )
    default.add_argument(
        "--clear",
        action="store_true",
        help="forget it (and the models loaded through the API): PRELOAD_MODEL rules at the next start",
    )

    keys = commands.add_parser(
        "keys",
        help="API keys: create (the key is printed once), list with usage, revoke",
        description="Keys live in the database every replica shares; a revoked key is refused everywhere "
        "within 5 seconds.",
    )
    keys_actions = keys.add_subparsers(dest="action", required=True)
    create = keys_actions.add_parser("create", help="make a key and print it: it is never shown again")
    create.add_argument("name", help="who the key is for (a team, a client)")
    create.add_argument(
        "--rate-per-minute",
        type=int,
        help="requests that score text per minute for this key (default: the service-wide limit only)",
    )
    keys_actions.add_parser("list", help="every key with its prefix, limit, usage and state")
    revoke = keys_actions.add_parser("revoke", help="revoke a key by its id or its prefix")
    revoke.add_argument("key", metavar="ID_OR_PREFIX", help="as `sentiment keys list` shows them")

    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"sentiment: configuration error: {error}", file=sys.stderr)
        return USAGE

    from sentiment.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    for warning in settings.warnings:
        log.warning("obsolete_setting", detail=warning)

    if args.command == "serve":
        return _serve(settings, args.host or settings.host, args.port or settings.port)
    if args.command == "predict":
        return _predict(settings, args.text, args.model)
    if args.command == "score":
        return _score(settings, args)
    if args.command == "eval":
        return _eval(settings, args)
    if args.command == "import-scores":
        return _import_scores(settings, args)
    if args.command == "train":
        return _train(settings, args)
    if args.command == "keys":
        return _keys(settings, args)
    if args.command == "models":
        if args.action == "default":
            return _stored_default(settings, args.clear)
        return _list_models(settings) if args.action == "list" else _pull_model(settings, args.key)
    from sentiment.storage.database import upgrade

    upgrade(settings.database_url)
    log.info("database_upgraded", url=_safe_url(settings.database_url))
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from sentiment.app import create_app
    from sentiment.inference.memory import limit_malloc_arenas
    from sentiment.services.system import journal_problem
    from sentiment.web.server import GuardedHttpToolsProtocol

    journal = settings.writer.journal_dir
    if (problem := journal_problem(journal)) is not None:
        print(f"sentiment: configuration error: SENTIMENT_JOURNAL_DIR={journal!r} {problem}", file=sys.stderr)
        return USAGE
    limit_malloc_arenas()
    log.info(
        "starting",
        host=host,
        port=port,
        default_model=settings.default_model,
        database=_safe_url(settings.database_url),
    )
    # log_config=None: uvicorn logs through the handler configure_logging installed.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=partial(GuardedHttpToolsProtocol, limits=settings.server),  # type: ignore[arg-type]  # a factory
        loop="uvloop",
        timeout_keep_alive=settings.server.keep_alive_s,  # type: ignore[arg-type]  # uvicorn reads a float
        timeout_graceful_shutdown=settings.server.drain_s,  # type: ignore[arg-type]  # a float too
    )
    return 0


def _predict(settings: Settings, text: str, model: str | None) -> int:
    from sentiment.services.offline import predict_text

    answer = _run(lambda: asyncio.run(predict_text(settings, text, model)))
    if isinstance(answer, Failed):
        return answer.code
    print(msgspec.json.format(msgspec.json.encode(answer)).decode())
    return 0


def _run(work: Callable[[], T], label_column: str | None = None) -> T | Failed:
    """Run a command's work; a failure is one line on stderr and an exit code, not a traceback: USAGE for
    what the command line got wrong (a model key or folder, a file, a column, a setting), FAILED for work that
    could not be done (a model that does not load, a cluster that fails)."""
    from sqlalchemy.exc import SQLAlchemyError

    from sentiment.core.domain import InvalidInput, SentimentError, first_line
    from sentiment.core.evaluation import UnreadableGold

    try:
        return work()
    except InvalidInput as error:
        message, code = error.detail, USAGE
    except SentimentError as error:
        message, code = error.detail, FAILED
    except UnreadableGold as error:
        message, code = f"gold column {label_column!r}: {error}", USAGE
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as error:
        message, code = f"{error.strerror}: {error.filename}", USAGE
    except OSError as error:
        message, code = f"{error.strerror}: {error.filename}", FAILED
    except SQLAlchemyError as error:
        message, code = f"the database failed: {first_line(error)}", FAILED
    print(f"sentiment: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever the library said
    return Failed(code)


def _score(settings: Settings, args: argparse.Namespace) -> int:
    from sentiment.services.offline import ScoreRequest, score_file, summary_line

    request = ScoreRequest(
        Path(args.source),
        Path(args.output),
        args.text_column,
        args.model,
        max(args.chunk_rows or settings.datasets.chunk_rows, 1),
        args.execution_path,
    )
    show_bar = not args.no_progress
    if args.cluster:
        from sentiment.services.distributed import score_file_on_cluster

        on_cluster = _run(
            lambda: score_file_on_cluster(settings, request, args.cluster, args.threads, show_bar)
        )
        if isinstance(on_cluster, Failed):
            return on_cluster.code
        print(summary_line(on_cluster.scoring, request.target))
        memory = ", ".join(f"{mb:,.0f}" for mb in on_cluster.worker_peak_rss_mb)
        print(f"  on {on_cluster.workers} Dask workers; peak memory per worker (MB): {memory}")
        return 0
    summary = _run(lambda: asyncio.run(score_file(settings, request, show_bar)))
    if isinstance(summary, Failed):
        return summary.code
    print(summary_line(summary, request.target))
    return 0


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from sentiment.core.evaluation import format_report
    from sentiment.services.offline import evaluate_file

    source = Path(args.source)
    work = evaluate_file(
        settings,
        source,
        args.model,
        args.text_column,
        args.label_column,
        max(args.chunk_rows or settings.datasets.chunk_rows, 1),
        show_bar=not args.no_progress,
    )
    summary = _run(lambda: asyncio.run(work), args.label_column)
    if isinstance(summary, Failed):
        return summary.code
    if args.json:
        figures = msgspec.to_builtins(summary.figures)
        print(
            msgspec.json.format(
                msgspec.json.encode(
                    {
                        "model": summary.model,
                        "data": str(source),
                        **figures,
                        "skipped": summary.skipped,
                        "note": summary.note,
                    }
                )
            ).decode()
        )
    else:
        print(format_report(f"{summary.model} on {source.name}", summary.figures, summary.note))
        print(f"  ({summary.skipped:,} rows skipped; {summary.seconds:.1f} s)")
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from sentiment.core.training import StepReport
    from sentiment.services.training import Trainer, TrainingRequest, report_text

    if args.device:
        settings = msgspec.structs.replace(settings, device=args.device)
    options = Hyperparameters(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        accumulation=args.accumulation,
        seed=args.seed,
        validation_share=args.validation_share,
        test_share=args.test_share,
    )
    request = TrainingRequest(args.source, args.text_column, args.label_column, args.base, args.name, options)
    shown = [0.0]

    def progress(step: StepReport) -> None:
        # A line every 10 s and at each epoch's evaluation: readable in a terminal and in a CI log.
        evaluated = (
            step.validation_macro_f1 is not None and step.step % max(step.total_steps // step.epochs, 1) == 0
        )
        if args.no_progress or not (evaluated or step.elapsed_s - shown[0] >= 10 or step.step == 1):
            return
        shown[0] = step.elapsed_s
        left = f", about {step.seconds_left / 60:.1f} min left" if step.seconds_left is not None else ""
        validation = (
            f", validation accuracy {step.validation_accuracy:.3f} macro-F1 {step.validation_macro_f1:.3f}"
            if step.validation_macro_f1 is not None
            else ""
        )
        loss = f", loss {step.loss:.4f}" if step.loss is not None else ""
        where = f"epoch {step.epoch}/{step.epochs} step {step.step:,}/{step.total_steps:,}"
        print(f"{where}{loss}{validation}{left}", file=sys.stderr)

    trainer = Trainer(settings, Path(settings.models_dir), request, settings.models, on_step=progress)
    try:
        report = _run(trainer.run, args.label_column)
    except KeyboardInterrupt:
        print("sentiment: training cancelled; nothing was written", file=sys.stderr)
        return 130
    if isinstance(report, Failed):
        return report.code
    print(report_text(report))
    return 0


def _import_scores(settings: Settings, args: argparse.Namespace) -> int:
    from sentiment.services.imports import ImportOptions, import_scores, summary_line

    options = ImportOptions(
        name=args.name,
        text_column=args.text_column,
        model=args.model,
        time_column=args.time_column,
        group_column=args.group_column,
        gold_column=args.gold_column,
        time_format=args.time_format,
    )
    work = import_scores(settings, Path(args.source), options, show_bar=not args.no_progress)
    summary = _run(lambda: asyncio.run(work), args.gold_column)
    if isinstance(summary, Failed):
        return summary.code
    print(summary_line(summary))
    return 0


def _stored_default(settings: Settings, clear: bool) -> int:
    from sentiment.services.models import clear_stored_choices, stored_choice
    from sentiment.storage.database import upgrade

    if settings.auto_migrate:
        upgrade(settings.database_url)
    if clear:
        cleared = _run(lambda: asyncio.run(clear_stored_choices(settings.database_url)))
        if isinstance(cleared, Failed):
            return cleared.code
        print(
            "cleared: replicas use PRELOAD_MODEL when they next start"
            if cleared
            else "nothing stored: PRELOAD_MODEL rules"
        )
        return 0
    choice = _run(lambda: asyncio.run(stored_choice(settings.database_url)))
    if isinstance(choice, Failed):
        return choice.code
    if choice is None:
        print(f"nothing stored: the default is PRELOAD_MODEL ({settings.default_model})")
        return 0
    where = choice.chosen_by or "a replica"
    print(f"{choice.default_model}: chosen through the API on {where} at {choice.chosen_at}")
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from sentiment.services.api_keys import create_key, list_keys, revoke_key
    from sentiment.storage.database import upgrade

    if settings.auto_migrate:
        upgrade(settings.database_url)
    url = settings.database_url
    if args.action == "create":
        created = _run(lambda: asyncio.run(create_key(url, args.name, args.rate_per_minute)))
        if isinstance(created, Failed):
            return created.code
        print(created.key)
        record = created.record
        print(f"key {record.id} for {record.name!r}: store it now, it is not shown again", file=sys.stderr)
        return 0
    if args.action == "revoke":
        revoked = _run(lambda: asyncio.run(revoke_key(url, args.key)))
        if isinstance(revoked, Failed):
            return revoked.code
        if revoked is None:
            print(
                f"sentiment: no API key has the id or prefix {args.key!r}; see `sentiment keys list`",
                file=sys.stderr,
            )
            return USAGE
        when = f"{revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
        print(f"revoked {revoked.id} ({revoked.name}, {revoked.prefix}…) at {when}")
        return 0
    stored = _run(lambda: asyncio.run(list_keys(url)))
    if isinstance(stored, Failed):
        return stored.code
    rows = [("ID", "NAME", "PREFIX", "LIMIT/MIN", "REQUESTS", "TEXTS", "LAST USED", "STATE")]
    for key in stored:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        last = f"{key.last_used_at:%Y-%m-%d %H:%M:%S}" if key.last_used_at else "never"
        limit = str(key.rate_per_minute) if key.rate_per_minute is not None else "-"
        usage = (f"{key.requests:,}", f"{key.texts:,}")
        rows.append((str(key.id), key.name, key.prefix, limit, *usage, last, state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _list_models(settings: Settings) -> int:
    from sentiment.services.models import catalogue

    rows = [("KEY", "KIND", "STATUS", "LABELS", "SOURCE")]
    for line in catalogue(settings.models, settings.default_model):
        key = line.key + (" (default)" if line.is_default else "")
        rows.append((key, line.kind, line.status, ",".join(line.labels) or "?", line.source))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[4])
    return 0


def _pull_model(settings: Settings, key: str) -> int:
    from tqdm import tqdm

    from sentiment.services.models import DownloadProgress, pull_model

    spec = settings.model(key)
    if spec is None:
        print(
            f"sentiment: unknown model {key!r}; known models: {', '.join(settings.model_keys)}",
            file=sys.stderr,
        )
        return USAGE
    bars: list[tqdm] = []  # opened on the first progress report, so a hub that cannot be reached shows no bar

    def progress(update: DownloadProgress) -> None:
        if not bars:
            bars.append(tqdm(unit="B", unit_scale=True, desc=key, total=update.bytes_total))
        bars[0].update(update.bytes_done - bars[0].n)

    try:
        folder = _run(lambda: pull_model(spec, progress))
    finally:
        for bar in bars:
            bar.close()
    if isinstance(folder, Failed):
        return folder.code
    print(folder)
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
