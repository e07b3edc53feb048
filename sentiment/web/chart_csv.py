"""A time chart's numbers as CSV, for the researcher's own analysis: per bucket its rows, counts per label,
each label's share with its 95% Wilson interval, and net sentiment."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime

from litestar import Response
from litestar.openapi.datastructures import ResponseSpec

from sentiment.core.domain import LABELS
from sentiment.core.shares import share_buckets

SERIES_CSV = ResponseSpec(data_container=str, media_type="text/csv", description="CSV, a header line first")

COLUMNS = (
    "group",
    "bucket_start",
    "bucket_end",
    "n",
    *LABELS,
    *(f"{label}_{part}" for label in LABELS for part in ("share", "ci_low", "ci_high")),
    "net",
)

Point = tuple[str, datetime, datetime, Mapping[str, int]]  # (group, start, end, counts per label)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def series_csv(points: Sequence[Point]) -> str:
    """One line per bucket (and group: '' for the whole); shares and intervals in percent, net in points;
    empty where a bucket holds no rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    shares = share_buckets([(start, counts) for _, start, _, counts in points])
    for (group, start, end, counts), share in zip(points, shares, strict=True):
        cells = [group, _iso(start), _iso(end), str(share.n)]
        cells += [str(counts.get(label, 0)) for label in LABELS]
        for label in LABELS:
            found = share.shares[label]
            cells += (
                [_percent(found.percent), _percent(found.interval.low), _percent(found.interval.high)]
                if found
                else ["", "", ""]
            )
        cells.append(_percent(share.net))
        writer.writerow(cells)
    return out.getvalue()


def csv_response(body: str, filename: str) -> Response[str]:
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
