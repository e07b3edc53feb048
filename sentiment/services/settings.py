"""The services' settings, kept apart from the services so that reading settings imports none of them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from sentiment.core.bounds import AtLeastOne, NonNegative, Positive


class AlertRules(msgspec.Struct, frozen=True):
    """Thresholds of the rules below, judged over the last `window_s` once it holds `min_requests`."""

    fallback_rate: Positive = 0.2
    latency_p95_ms: Positive = 2_000.0
    window_s: Positive = 300.0
    min_requests: AtLeastOne = 20
    check_interval_s: Positive = 5.0


class DatasetSettings(msgspec.Struct, frozen=True):
    """Data-set uploads: where files are kept, how big one may be, rows per chunk; how much the folder may
    hold, the free space its disk keeps, and how long an upload nobody started is kept."""

    data_dir: str = "./datasets"
    max_upload_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 30
    chunk_rows: AtLeastOne = 1024
    quota_mb: Positive = 2048.0
    min_free_mb: NonNegative = 100.0
    upload_expiry_hours: Positive = 24.0


# Who may upload and start data sets: anyone (a laptop), or only an admin or an API-key holder (a deployment).
UploadPolicy = Literal["open", "admin"]
