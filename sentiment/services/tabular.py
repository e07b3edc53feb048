"""Tables on disk (CSV, TSV, Parquet) read and written as streams: one row (Parquet: one record batch) at a
time, so a file far larger than memory is fine. A row that cannot be used is reported with its line number
(Parquet: its row number) and skipped; a file that cannot be read as a table at all raises `TableError` with
a message that names the problem.

TSV files have no quoting (texts contain `"`): a line is split at its last tabs,
so a text column that comes first keeps any tab of its own. CSV files follow RFC
4180 quoting; the delimiter (`,` `;` tab `|`) is read off the header line.
Parquet values are read as text (a time as ISO 8601); a Parquet output keeps its input columns' types.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, NamedTuple, Protocol

import msgspec

from sentiment.core.domain import InvalidInput, Scored, is_blank

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

TableKind = Literal["csv", "tsv", "parquet"]
DELIMITERS = (",", ";", "\t", "|")
ENCODING = "utf-8-sig"  # a byte-order mark, as spreadsheets write, is not part of the first column's name
PROBE_BYTES = 64 * 1024
PARQUET_BATCH_ROWS = 8192
PARQUET_SUFFIXES = {".parquet", ".pq"}


class TableError(InvalidInput):
    """The file cannot be read as a table (empty, binary, no header, a column missing, broken quoting)."""


class Row(NamedTuple):
    line: int  # where the row starts in the file, 1-based, the header being line 1 (Parquet: its row number)
    values: list[str]


class Problem(NamedTuple):
    line: int
    reason: str


class Table(msgspec.Struct, frozen=True):
    path: str
    kind: TableKind
    delimiter: str
    columns: list[str]
    encoding: str = ENCODING

    @property
    def position(self) -> str:
        """What `Row.line` counts, for messages: lines of a text file, rows of a Parquet file."""
        return "row" if self.kind == "parquet" else "line"

    def index(self, name: str, role: str) -> int:
        """The position of column `name`, chosen as the `role` column (text, time, group, gold)."""
        positions = [i for i, column in enumerate(self.columns) if column == name]
        if not positions:
            raise TableError(
                f"there is no column {name!r} to use as the {role} column; the columns are: "
                + ", ".join(repr(column) for column in self.columns)
            )
        if len(positions) > 1:
            raise TableError(
                f"the header names {name!r} {len(positions)} times; rename the copies to choose one"
            )
        return positions[0]


def kind_of(path: str | Path) -> TableKind:
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    return "tsv" if suffix in {".tsv", ".tab"} else "csv"


def open_table(path: str | Path, kind: TableKind | None = None) -> Table:
    """Read the header line: the columns, and for CSV the delimiter (Parquet: the schema's column names)."""
    kind = kind or kind_of(path)
    if kind == "parquet":
        return Table(str(path), kind, "", [str(name) for name in _parquet_file(path).schema_arrow.names])
    with open(path, "rb") as raw:
        probe = raw.read(PROBE_BYTES)
    if not probe.strip():
        raise TableError("the file is empty")
    encoding = ENCODING
    if probe.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Spreadsheets' "Unicode text": UTF-16 with a byte-order mark, read as it is.
        encoding = "utf-16"
        with _open_text(path, encoding, newline="\n") as text:
            header_text = text.readline()
    elif b"\x00" in probe:
        raise TableError(
            "the file is not text (it holds NUL bytes): upload a CSV file saved as UTF-8 (or UTF-16 with a "
            "byte-order mark)"
        )
    else:
        first_line = probe.split(b"\n", 1)[0]
        try:
            header_text = first_line.decode(ENCODING)
        except UnicodeDecodeError:
            if len(first_line) < len(probe) or len(probe) < PROBE_BYTES:  # a whole line, not cut by the probe
                raise TableError("the header line is not valid UTF-8: save the file as UTF-8") from None
            header_text = first_line.decode(ENCODING, "replace")
    if kind == "tsv":
        delimiter = "\t"
        columns = header_text.rstrip("\r\n").split("\t")
    else:
        delimiter = (
            max(DELIMITERS, key=header_text.count) if any(d in header_text for d in DELIMITERS) else ","
        )
        with _open_text(path, encoding) as text:
            try:
                columns = next(csv.reader(text, delimiter=delimiter), [])
            except csv.Error as error:
                raise TableError(f"line 1 (the header) is not CSV: {error}") from None
    columns = [column.strip() for column in columns]
    if not any(columns):
        raise TableError("the first line should name the columns, but it is blank")
    return Table(str(path), kind, delimiter, columns, encoding)


def _open_text(path: str | Path, encoding: str = ENCODING, newline: str = "") -> IO[str]:
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate, found per row and reported with the
    # row's line number, instead of one decoding error that ends the whole read.
    return open(path, encoding=encoding, errors="surrogateescape", newline=newline)


def _checked(line: int, values: list[str], width: int) -> Row | Problem:
    """The row, or what makes it unusable: a field count
    other than the header's, or a field that is not UTF-8."""
    if len(values) != width:
        return Problem(line, f"{len(values)} fields where the header has {width}")
    for index, value in enumerate(values):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Problem(line, f"not valid UTF-8 (in field {index + 1})")
    return Row(line, values)


def read_rows(table: Table) -> Iterator[Row | Problem]:
    """Every data row in file order, or the problem that makes it unusable. Blank lines are not rows."""
    if table.kind == "tsv":
        yield from _read_tsv(table)
    elif table.kind == "parquet":
        yield from _read_parquet(table)
    else:
        yield from _read_csv(table)


def _parquet_file(path: str | Path) -> pq.ParquetFile:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(
            "reading Parquet needs pyarrow, from the cluster extra: pip install 'sentiment[cluster]'"
        ) from None
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise TableError(f"the file is not Parquet: {error}") from None


def as_text(value: object) -> str:
    """A Parquet value as a CSV cell would hold it: nothing for a null, ISO 8601 for a time, true/false."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_parquet(table: Table) -> Iterator[Row | Problem]:
    number = 0
    for batch in _parquet_file(table.path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        columns = [[as_text(value) for value in column.to_pylist()] for column in batch.columns]
        for values in zip(*columns, strict=True):
            number += 1
            yield Row(number, list(values))


def _read_csv(table: Table) -> Iterator[Row | Problem]:
    width = len(table.columns)
    with _open_text(table.path, table.encoding) as text:
        # strict: a broken row (`"quoted"text`, a quote still open at the end of the file) raises, is reported
        # with its line number, and the reader starts afresh on the next line.
        reader = csv.reader(text, delimiter=table.delimiter, strict=True)
        try:
            next(reader)
        except csv.Error as error:
            raise TableError(f"line 1 (the header) is not valid CSV: {error}") from None
        end = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                start, end = end + 1, reader.line_num
                if "field larger" in str(error):
                    raise TableError(
                        f"line {start}: a field is longer than {csv.field_size_limit():,} characters: "
                        "a quote that is never closed?"
                    ) from None
                if "unexpected end of data" in str(error) and end > start:
                    # The end of the file came inside quotes opened lines ago: those lines all read as one
                    # field, and the rows in them would be lost without a word. (On the last line alone, it
                    # is one broken row.)
                    raise TableError(
                        f"line {start}: a quote opened here is never closed, so the {end - start + 1:,} "
                        "lines to the end of the file read as one field: fix the quoting"
                    ) from None
                yield Problem(start, f"not valid CSV: {error}")
                continue
            start, end = end + 1, reader.line_num
            if values:
                yield _checked(start, values, width)


def _read_tsv(table: Table) -> Iterator[Row | Problem]:
    width = len(table.columns)
    # newline="\n": only a line feed ends a row; a stray carriage return inside a text stays in it.
    with _open_text(table.path, table.encoding, newline="\n") as text:
        next(text, None)
        for line_number, line in enumerate(text, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            values = line.rsplit("\t", width - 1) if width > 1 else [line]
            yield _checked(line_number, values, width)


class Inspection(msgspec.Struct):
    """What one pass over the file found: its row count, and samples for choosing how to read columns."""

    rows: int = 0
    time_sample: list[str] = msgspec.field(default_factory=list)
    gold_values: set[str] = msgspec.field(default_factory=set)


MAX_GOLD_VALUES = 50


def inspect_rows(
    table: Table,
    time_index: int | None = None,
    gold_index: int | None = None,
    sample_size: int = 1000,
    limit: int | None = None,
) -> Inspection:
    """Count the rows (problem rows included) and collect a time sample and the gold column's distinct values.
    `limit` stops after that many rows (a quick look before the full count)."""
    found = Inspection()
    for item in read_rows(table):
        found.rows += 1
        if isinstance(item, Row):
            if (
                time_index is not None
                and len(found.time_sample) < sample_size
                and item.values[time_index].strip()
            ):
                found.time_sample.append(item.values[time_index])
            if gold_index is not None:
                found.gold_values.add(item.values[gold_index].strip().lower())
                if len(found.gold_values) > MAX_GOLD_VALUES:
                    raise TableError(
                        f"the gold column {table.columns[gold_index]!r} has more than {MAX_GOLD_VALUES} "
                        "different values: it does not look like a column of labels"
                    )
        if limit is not None and found.rows >= limit:
            break
    return found


def added_columns(columns: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The columns scoring adds: label, confidence, one score per class; none shadows an input column
    (`label` becomes `predicted_label` when the input has one)."""
    taken = set(columns)
    return [_unique(name, taken) for name in ("label", "confidence", *(f"score_{label}" for label in labels))]


def _unique(name: str, taken: set[str]) -> str:
    candidate = name
    while candidate in taken:
        candidate = f"predicted_{candidate}"
    taken.add(candidate)
    return candidate


class ScoredSink(Protocol):
    """Where scored rows go, in input order: every input column, then the added ones."""

    added: list[str]

    def write(self, rows: Sequence[Row], scored: Sequence[Scored]) -> None: ...

    def close(self) -> None: ...


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# RFC 4180's line end. With a bare "\n" the csv module leaves a field holding a lone carriage return unquoted,
# and readers take that "\r" for the end of the row.
LINE_END = "\r\n"


def neutralised(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (OWASP's CSV injection rule: it starts with = + - @, a tab
    or a carriage return) made inert with a leading apostrophe, which spreadsheets show as text."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


class ScoredWriter:
    """A CSV (or, with `delimiter="\\t"`, TSV) of the scored rows. `for_spreadsheets`: input cells are
    neutralised against formula injection (a file others download, such as a data set's export)."""

    def __init__(
        self,
        out: IO[str],
        columns: Sequence[str],
        labels: Sequence[str],
        delimiter: str = ",",
        for_spreadsheets: bool = False,
    ) -> None:
        self.added = added_columns(columns, labels)
        self._labels = tuple(labels)
        self._cell = neutralised if for_spreadsheets else str
        self._writer = csv.writer(out, delimiter=delimiter, lineterminator=LINE_END)
        self._writer.writerow([*map(self._cell, columns), *self.added])

    def write(self, rows: Sequence[Row], scored: Sequence[Scored]) -> None:
        self._writer.writerows(
            [
                *map(self._cell, row.values),
                result.label,
                f"{result.confidence:.6f}",
                *(f"{result.scores.get(label, 0.0):.6f}" for label in self._labels),
            ]
            for row, result in zip(rows, scored, strict=True)
        )

    def close(self) -> None:
        return None


class ParquetScoredWriter:
    """A Parquet file of the scored rows. From a Parquet input, the input columns keep their types: the rows
    are taken from a second pass over the input by row number (a stream, like the first); from a CSV, they
    are text."""

    def __init__(self, path: Path, table: Table, labels: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.added = added_columns(table.columns, labels)
        self._labels = tuple(labels)
        self._table = table
        if table.kind == "parquet":
            source = _parquet_file(table.path)
            schema = source.schema_arrow
            self._batches: Iterator[pa.RecordBatch] | None = source.iter_batches(
                batch_size=PARQUET_BATCH_ROWS
            )
        else:
            schema = pa.schema([(name, pa.string()) for name in table.columns])
            self._batches = None
        self._ahead = pa.Table.from_batches([], schema=schema)
        self._ahead_first = 1  # the row number of the first row read ahead
        schema = schema.append(pa.field(self.added[0], pa.string()))
        for name in self.added[1:]:
            schema = schema.append(pa.field(name, pa.float64()))
        self._writer = pq.ParquetWriter(path, schema)

    def _input_rows(self, rows: Sequence[Row]) -> pa.Table:
        import pyarrow as pa

        if self._batches is None:
            return pa.table(
                {name: [row.values[i] for row in rows] for i, name in enumerate(self._table.columns)},
                schema=self._ahead.schema,
            )
        last = rows[-1].line
        parts = [self._ahead]
        end = self._ahead_first + self._ahead.num_rows
        while end <= last:
            batch = next(self._batches)
            parts.append(pa.Table.from_batches([batch]))
            end += batch.num_rows
        ahead = pa.concat_tables(parts)
        taken = ahead.take([row.line - self._ahead_first for row in rows])
        # Rows are written in input order: nothing before the last one taken is needed again.
        self._ahead = ahead.slice(last + 1 - self._ahead_first)
        self._ahead_first = last + 1
        return taken

    def write(self, rows: Sequence[Row], scored: Sequence[Scored]) -> None:
        import pyarrow as pa

        if not rows:
            return
        table = self._input_rows(rows)
        added = [
            pa.array([result.label for result in scored], pa.string()),
            pa.array([result.confidence for result in scored], pa.float64()),
            *(
                pa.array([result.scores.get(label, 0.0) for result in scored], pa.float64())
                for label in self._labels
            ),
        ]
        for name, column in zip(self.added, added, strict=True):
            table = table.append_column(name, column)
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


@contextmanager
def scored_sink(target: Path, table: Table, labels: Sequence[str]) -> Iterator[ScoredSink]:
    """The writer for `target`'s kind (by its suffix: .parquet, .tsv, else CSV), closed on the way out."""
    kind = kind_of(target)
    if kind == "parquet":
        sink = ParquetScoredWriter(target, table, labels)
        try:
            yield sink
        finally:
            sink.close()
        return
    with target.open("w", encoding="utf-8", newline="") as out:
        yield ScoredWriter(out, table.columns, labels, "\t" if kind == "tsv" else ",")


class Chunk(NamedTuple):
    """Up to a chunk's worth of usable rows, with the problem rows met on the way (both in file order)."""

    rows: list[Row]
    problems: list[Problem]

    @property
    def consumed(self) -> int:
        return len(self.rows) + len(self.problems)


def read_chunks(
    table: Table, text_index: int, size: int, skip: int = 0, max_length: int | None = None
) -> Iterator[Chunk]:
    """The file's rows in chunks of `size` usable rows, after the first `skip` rows (problem rows included); a
    row whose text is empty, or longer than `max_length` characters (the service's own limit on a text), is a
    problem, not a row."""
    rows: list[Row] = []
    problems: list[Problem] = []
    column = table.columns[text_index]
    for item in islice(read_rows(table), skip, None):
        if isinstance(item, Problem):
            problems.append(item)
        elif is_blank(item.values[text_index]):
            problems.append(Problem(item.line, f"the text ({column!r}) is empty"))
        elif max_length is not None and len(item.values[text_index]) > max_length:
            length = len(item.values[text_index])
            problems.append(
                Problem(
                    item.line, f"the text ({column!r}) is {length:,} characters; the limit is {max_length:,}"
                )
            )
        else:
            rows.append(item)
            if len(rows) >= size:
                yield Chunk(rows, problems)
                rows, problems = [], []
    if rows or problems:
        yield Chunk(rows, problems)
