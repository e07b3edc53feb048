"""The services' settings, kept apart from the services so that reading settings imports none of them."""

from __future__ import annotations

from typing import Annotated

import msgspec

from sentiment.core.bounds import AtLeastOne, Positive


class AlertRules(msgspec.Struct, frozen=True):
    """Thresholds of the rules below, judged over the last `window_s` once it holds `min_requests`."""

    fallback_rate: Positive = 0.2
    latency_p95_ms: Positive = 2_000.0
    window_s: Positive = 300.0
    min_requests: AtLeastOne = 20
    check_interval_s: Positive = 5.0


class DatasetSettings(msgspec.Struct, frozen=True):
    """Data-set uploads: where files are kept, how big one may be, rows per chunk."""

    data_dir: str = "./datasets"
    max_upload_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1 << 30
    chunk_rows: AtLeastOne = 1024
