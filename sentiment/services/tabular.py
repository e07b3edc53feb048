"""Tables on disk (CSV, TSV) read and written as streams: one row at a time, so a file far larger than memory
is fine. A row that cannot be used is reported with its line number and skipped; a file that cannot be read as
a table at all raises `TableError` with a message that names the problem.

TSV files have no quoting (texts contain `"`): a line is split at its last tabs,
so a text column that comes first keeps any tab of its own. CSV files follow RFC
4180 quoting; the delimiter (`,` `;` tab `|`) is read off the header line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Literal, NamedTuple

import msgspec

from sentiment.core.domain import InvalidInput, Scored, is_blank

TableKind = Literal["csv", "tsv"]
DELIMITERS = (",", ";", "\t", "|")
ENCODING = "utf-8-sig"  # a byte-order mark, as spreadsheets write, is not part of the first column's name
PROBE_BYTES = 64 * 1024


class TableError(InvalidInput):
    """The file cannot be read as a table (empty, binary, no header, a column missing, broken quoting)."""


class Row(NamedTuple):
    line: int  # where the row starts in the file, 1-based; the header is line 1
    values: list[str]


class Problem(NamedTuple):
    line: int
    reason: str


class Table(msgspec.Struct, frozen=True):
    path: str
    kind: TableKind
    delimiter: str
    columns: list[str]

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
    return "tsv" if Path(path).suffix.lower() in {".tsv", ".tab"} else "csv"


def open_table(path: str | Path, kind: TableKind | None = None) -> Table:
    """Read the header line: the columns, and for CSV the delimiter."""
    kind = kind or kind_of(path)
    with open(path, "rb") as raw:
        probe = raw.read(PROBE_BYTES)
    if not probe.strip():
        raise TableError("the file is empty")
    if b"\x00" in probe:
        raise TableError("the file is not text (it holds NUL bytes): upload a CSV file saved as UTF-8")
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
        with _open_text(path) as text:
            try:
                columns = next(csv.reader(text, delimiter=delimiter), [])
            except csv.Error as error:
                raise TableError(f"line 1 (the header) is not CSV: {error}") from None
    columns = [column.strip() for column in columns]
    if not any(columns):
        raise TableError("the first line should name the columns, but it is blank")
    return Table(str(path), kind, delimiter, columns)


def _open_text(path: str | Path, newline: str = "") -> IO[str]:
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate, found per row and reported with the
    # row's line number, instead of one decoding error that ends the whole read.
    return open(path, encoding=ENCODING, errors="surrogateescape", newline=newline)


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
    else:
        yield from _read_csv(table)


def _read_csv(table: Table) -> Iterator[Row | Problem]:
    width = len(table.columns)
    with _open_text(table.path) as text:
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
                yield Problem(start, f"not valid CSV: {error}")
                continue
            start, end = end + 1, reader.line_num
            if values:
                yield _checked(start, values, width)


def _read_tsv(table: Table) -> Iterator[Row | Problem]:
    width = len(table.columns)
    # newline="\n": only a line feed ends a row; a stray carriage return inside a text stays in it.
    with _open_text(table.path, newline="\n") as text:
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


class ScoredWriter:
    """Writes the input columns of each scored row, then its label, confidence and one score per class."""

    def __init__(self, out: IO[str], columns: Sequence[str], labels: Sequence[str]) -> None:
        taken = set(columns)
        self.added = [
            _unique(name, taken) for name in ("label", "confidence", *(f"score_{label}" for label in labels))
        ]
        self._labels = tuple(labels)
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow([*columns, *self.added])
        self.rows = 0

    def write(self, rows: Sequence[Row], scored: Sequence[Scored]) -> None:
        self._writer.writerows(
            [
                *row.values,
                result.label,
                f"{result.confidence:.6f}",
                *(f"{result.scores.get(label, 0.0):.6f}" for label in self._labels),
            ]
            for row, result in zip(rows, scored, strict=True)
        )
        self.rows += len(rows)


def _unique(name: str, taken: set[str]) -> str:
    """An added column never shadows an input column: `label`
    becomes `predicted_label` when the input has one."""
    candidate = name
    while candidate in taken:
        candidate = f"predicted_{candidate}"
    taken.add(candidate)
    return candidate


class Chunk(NamedTuple):
    """Up to a chunk's worth of usable rows, with the problem rows met on the way (both in file order)."""

    rows: list[Row]
    problems: list[Problem]

    @property
    def consumed(self) -> int:
        return len(self.rows) + len(self.problems)


def read_chunks(table: Table, text_index: int, size: int) -> Iterator[Chunk]:
    """The file's rows in chunks of `size` usable rows; a row whose text is empty is a problem, not a row."""
    rows: list[Row] = []
    problems: list[Problem] = []
    column = table.columns[text_index]
    for item in read_rows(table):
        if isinstance(item, Problem):
            problems.append(item)
        elif is_blank(item.values[text_index]):
            problems.append(Problem(item.line, f"the text ({column!r}) is empty"))
        else:
            rows.append(item)
            if len(rows) >= size:
                yield Chunk(rows, problems)
                rows, problems = [], []
    if rows or problems:
        yield Chunk(rows, problems)
