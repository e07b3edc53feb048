"""Fine-tuning from a data set's gold column: the JSON endpoints and the page's form and progress."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, URLEncodedBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from sentiment.core.domain import Conflict, SentimentError
from sentiment.core.training import Hyperparameters
from sentiment.services.training import TrainingJob, TrainingService
from sentiment.web.datasets_api import DatasetId
from sentiment.web.errors import error_responses
from sentiment.web.guard import ADMIN_SECURITY, require_admin, require_json
from sentiment.web.pages import context

DEFAULTS = Hyperparameters()


class TrainIn(msgspec.Struct, frozen=True):
    """A new model's key, the model to start from, and optionally how to train it."""

    name: str
    base: str
    epochs: int = DEFAULTS.epochs
    seed: int = DEFAULTS.seed
    validation_share: float = DEFAULTS.validation_share
    test_share: float = DEFAULTS.test_share
    max_length: int = DEFAULTS.max_length
    batch_size: int = DEFAULTS.batch_size
    learning_rate: float = DEFAULTS.learning_rate

    def options(self) -> Hyperparameters:
        return Hyperparameters(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_length=self.max_length,
            seed=self.seed,
            validation_share=self.validation_share,
            test_share=self.test_share,
        )


@post(
    "/datasets/{dataset_id:uuid}/train",
    guards=[require_admin],
    before_request=require_json,
    security=ADMIN_SECURITY,
    status_code=202,
    summary="Fine-tune a model on the data set's text and gold columns (admin): a background job, one at a "
    "time; the new model is served under its name when it ends",
    tags=["training"],
    responses=error_responses(400, 401, 403, 404, 409, 415),
)
async def train_on_dataset(
    dataset_id: DatasetId, data: JSONBody[TrainIn], training: NamedDependency[TrainingService]
) -> TrainingJob:
    job = await training.start_on_dataset(dataset_id, data.name, data.base, data.options())
    if job is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return job


@get(
    "/training",
    summary="The running training job's progress (step, epoch, loss, validation figures, time left), or "
    "the last one's outcome and report",
    tags=["training"],
    responses=error_responses(404),
)
async def training_job(training: NamedDependency[TrainingService]) -> TrainingJob:
    job = training.current()
    if job is None:
        raise NotFoundException("no model has been trained since the service started")
    return job


@post(
    "/training/cancel",
    guards=[require_admin],
    security=ADMIN_SECURITY,
    status_code=200,
    summary="Stop the running training job at its next step (admin); nothing is saved",
    tags=["training"],
    responses=error_responses(401, 403, 409),
)
async def cancel_training(training: NamedDependency[TrainingService]) -> TrainingJob:
    return training.cancel()


# -- the data-set page's part --------------------------------------------------------------------------------


class TrainForm(msgspec.Struct):
    name: str = ""
    base: str = ""
    epochs: int = DEFAULTS.epochs
    seed: int = DEFAULTS.seed
    csrf_token: str = ""


def progress_values(job: TrainingJob | None) -> dict[str, object]:
    """The job, and its test figures as the data-set report's tables take them (model, metrics) pairs."""
    report = job.report if job is not None else None
    metrics = [(f"{s.model} ({s.role})", s.figures) for s in report.test] if report is not None else []
    return {"job": job, "metrics": metrics}


def _progress(request: Request[Any, Any, Any], job: TrainingJob | None, error: str | None = None) -> Template:
    return Template(
        template_name="partials/training_progress.html",
        context=context(request, "/ui/analyze", error=error, **progress_values(job)),
    )


@get("/ui/datasets/{dataset_id:uuid}/training", include_in_schema=False)
async def training_part(
    request: Request[Any, Any, Any], dataset_id: DatasetId, training: NamedDependency[TrainingService]
) -> Template:
    """The form (admin, when no job runs) and the current job's progress, loaded into the data-set page."""
    return Template(
        template_name="partials/training_form.html",
        context=context(
            request,
            "/ui/analyze",
            dataset_id=dataset_id,
            bases=training.bases(),
            defaults=DEFAULTS,
            **progress_values(training.current()),
        ),
    )


@post(
    "/ui/datasets/{dataset_id:uuid}/train", guards=[require_admin], status_code=200, include_in_schema=False
)
async def train_from_page(
    request: Request[Any, Any, Any],
    dataset_id: DatasetId,
    data: URLEncodedBody[TrainForm],
    training: NamedDependency[TrainingService],
) -> Template:
    options = msgspec.structs.replace(DEFAULTS, epochs=data.epochs, seed=data.seed)
    try:
        job = await training.start_on_dataset(dataset_id, data.name.strip(), data.base, options)
    except SentimentError as error:
        return _progress(request, training.current(), error.detail)
    if job is None:
        raise NotFoundException(f"no data set {dataset_id}")
    return _progress(request, job)


@get("/ui/training/progress", include_in_schema=False)
async def progress_part(
    request: Request[Any, Any, Any], training: NamedDependency[TrainingService]
) -> Template:
    return _progress(request, training.current())


@post("/ui/training/cancel", guards=[require_admin], status_code=200, include_in_schema=False)
async def cancel_from_page(
    request: Request[Any, Any, Any], training: NamedDependency[TrainingService]
) -> Template:
    try:
        return _progress(request, training.cancel())
    except Conflict:
        return _progress(request, training.current())  # it ended meanwhile: show how


ROUTES: list[ControllerRouterHandler] = [
    train_on_dataset,
    training_job,
    cancel_training,
    training_part,
    train_from_page,
    progress_part,
    cancel_from_page,
]
