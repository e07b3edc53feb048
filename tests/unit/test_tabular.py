"""Tables read and written as streams: rows with their line
numbers, problem rows reported, broken files refused."""

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentiment.core.domain import Scored
from sentiment.services.tabular import (
    Problem,
    Row,
    ScoredWriter,
    TableError,
    inspect_rows,
    open_table,
    read_chunks,
    read_rows,
    scored_sink,
)


def write(tmp_path: Path, content: bytes | str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_rows_carry_the_line_they_start_on_even_after_quoted_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,text\n1,"two\nlines"\n2,"say ""hi"", then go"\n\n3,last\n')
    table = open_table(path)
    assert table.columns == ["id", "text"]
    assert list(read_rows(table)) == [
        Row(2, ["1", "two\nlines"]),
        Row(4, ["2", 'say "hi", then go']),
        Row(6, ["3", "last"]),
    ]


def test_a_row_that_is_not_utf8_is_reported_by_line_and_the_others_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,text\n1,fine\n2,caf\xe9 latin-1\n3,also fine\n")
    assert list(read_rows(open_table(path))) == [
        Row(2, ["1", "fine"]),
        Problem(3, "not valid UTF-8 (in field 2)"),
        Row(4, ["3", "also fine"]),
    ]


def test_rows_with_the_wrong_number_of_fields_or_broken_quoting_are_problems(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,text\n1,fine\n2,one,too many\n3\n4,"quoted"then text\n5,ok\n6,"never closed\n')
    assert list(read_rows(open_table(path))) == [
        Row(2, ["1", "fine"]),
        Problem(3, "3 fields where the header has 2"),
        Problem(4, "1 fields where the header has 2"),
        Problem(5, "not valid CSV: ',' expected after '\"'"),
        Row(6, ["5", "ok"]),
        Problem(7, "not valid CSV: unexpected end of data"),
    ]


def test_an_empty_text_is_a_problem_and_chunks_hold_usable_rows_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "text,n\na,1\n  ,2\nb,3\nc,4\nd,5\n")
    chunks = list(read_chunks(open_table(path), 0, 2))
    assert [[row.values[0] for row in chunk.rows] for chunk in chunks] == [["a", "b"], ["c", "d"]]
    assert chunks[0].problems == [Problem(3, "the text ('text') is empty")]
    assert [chunk.consumed for chunk in chunks] == [3, 2]


def test_a_text_of_zero_width_characters_only_is_empty_too(tmp_path: Path) -> None:
    path = write(tmp_path, "text,n\na,1\n\u200b\u200d,2\n\ufeffb\u200b,3\n")
    chunks = list(read_chunks(open_table(path), 0, 10))
    assert [row.values[0] for row in chunks[0].rows] == ["a", "\ufeffb\u200b"]
    assert chunks[0].problems == [Problem(3, "the text ('text') is empty")]


def test_tsv_lines_split_on_their_last_tab_and_keep_quotes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'text\tlabel\n"quoted" text\twith a tab\tpositive\nplain\tnegative\r\nno label\n',
        name="data.tsv",
    )
    table = open_table(path)
    assert (table.kind, table.columns) == ("tsv", ["text", "label"])
    assert list(read_rows(table)) == [
        Row(2, ['"quoted" text\twith a tab', "positive"]),
        Row(3, ["plain", "negative"]),
        Problem(4, "1 fields where the header has 2"),
    ]


def test_delimiter_and_byte_order_mark_are_read_off_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufefftext;airline\nbonjour, hello;AF\n")
    table = open_table(path)
    assert (table.delimiter, table.columns) == (";", ["text", "airline"])
    assert list(read_rows(table)) == [Row(2, ["bonjour, hello", "AF"])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"PK\x03\x04\x00\x00binary", "not text"),
        (b"t\xe9xt,label\na,b\n", "header line is not valid UTF-8"),
    ],
)
def test_a_file_that_is_not_a_table_is_refused_with_the_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(TableError, match=message):
        open_table(write(tmp_path, content))


def test_a_missing_or_ambiguous_column_names_the_columns_there_are(tmp_path: Path) -> None:
    table = open_table(write(tmp_path, "id,text,text\n1,a,b\n"))
    with pytest.raises(
        TableError, match=r"no column 'tweet' to use as the text column; the columns are: 'id', 'text'"
    ):
        table.index("tweet", "text")
    with pytest.raises(TableError, match="names 'text' 2 times"):
        table.index("text", "text")
    assert table.index("id", "group") == 0


def test_a_quote_that_swallows_the_file_stops_the_read_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,text\n1,ok\n2,"opened\n' + "x" * 200_000 + "\n")
    with pytest.raises(TableError, match=r"line 3: a field is longer than 131,072 characters"):
        list(read_rows(open_table(path)))


def test_inspection_counts_every_row_and_samples_times_and_gold_values(tmp_path: Path) -> None:
    path = write(tmp_path, "text,at,gold\na,24-02-2015 11:35,Positive\n,,neutral\nbroken\nb,,negative\n")
    table = open_table(path)
    found = inspect_rows(table, time_index=1, gold_index=2)
    assert found.rows == 4  # the problem row is counted: progress goes to the total whatever happens to a row
    assert found.time_sample == ["24-02-2015 11:35"]
    assert found.gold_values == {"positive", "neutral", "negative"}
    assert inspect_rows(table, limit=2).rows == 2


def test_gold_columns_with_too_many_values_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "text,id\n" + "".join(f"t,{i}\n" for i in range(60)))
    with pytest.raises(TableError, match="more than 50 different values"):
        inspect_rows(open_table(path), gold_index=1)


def test_scored_rows_keep_every_input_column_and_never_shadow_one() -> None:
    out = io.StringIO()
    writer = ScoredWriter(out, ["id", "label", "text"], ("negative", "positive"))
    scored = Scored("positive", 0.9, {"negative": 0.1, "positive": 0.9})
    writer.write([Row(2, ["7", "gold", "a, b"])], [scored])
    assert out.getvalue().splitlines() == [
        "id,label,text,predicted_label,confidence,score_negative,score_positive",
        '7,gold,"a, b",positive,0.900000,0.100000,0.900000',
    ]


def parquet(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.parquet"
    table = pa.table(
        {
            "id": pa.array([10, 11, 12, 13], pa.int64()),
            "text": ["good", "   ", None, "bad"],
            "at": pa.array([datetime(2015, 2, 24, 11, 35, tzinfo=UTC)] * 4, pa.timestamp("us", tz="UTC")),
            "flag": [True, False, None, True],
        }
    )
    pq.write_table(table, path, row_group_size=2)  # two row groups: rows cross batch boundaries
    return path


def test_parquet_rows_are_read_as_text_numbered_by_row_and_empty_texts_are_problems(tmp_path: Path) -> None:
    table = open_table(parquet(tmp_path))
    assert (table.kind, table.columns, table.position) == ("parquet", ["id", "text", "at", "flag"], "row")
    assert next(read_rows(table)) == Row(1, ["10", "good", "2015-02-24T11:35:00+00:00", "true"])
    (chunk,) = read_chunks(table, 1, 10)
    assert [row.line for row in chunk.rows] == [1, 4]
    assert chunk.problems == [
        Problem(2, "the text ('text') is empty"),
        Problem(3, "the text ('text') is empty"),
    ]
    assert [row.line for row in next(read_chunks(table, 1, 10, skip=3)).rows] == [4]


def test_a_file_that_is_not_parquet_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="not Parquet"):
        open_table(write(tmp_path, "text\nhello\n", "fake.parquet"))


def test_scored_parquet_keeps_the_input_types_of_the_rows_it_writes(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = open_table(parquet(tmp_path))
    (chunk,) = read_chunks(table, 1, 10)
    scored = [Scored("positive", 0.9, {"positive": 0.9}), Scored("negative", 0.8, {"positive": 0.2})]
    target = tmp_path / "out.parquet"
    with scored_sink(target, table, ("positive",)) as sink:
        sink.write(chunk.rows[:1], scored[:1])
        sink.write(chunk.rows[1:], scored[1:])
    written = pq.read_table(target)
    assert written.schema.names == ["id", "text", "at", "flag", "label", "confidence", "score_positive"]
    assert written.schema.field("id").type == pq.read_schema(table.path).field("id").type
    assert written.column("id").to_pylist() == [10, 13]
    assert written.column("at").to_pylist()[0] == datetime(2015, 2, 24, 11, 35, tzinfo=UTC)
    assert written.column("label").to_pylist() == ["positive", "negative"]
    assert written.column("score_positive").to_pylist() == [0.9, 0.2]


def test_a_csv_scored_into_parquet_or_tsv_keeps_its_columns_as_text(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = open_table(write(tmp_path, "id,text\n1,fine\n2,grand\n"))
    (chunk,) = read_chunks(table, 1, 10)
    scored = [Scored("positive", 0.75, {"positive": 0.75})] * 2
    with scored_sink(tmp_path / "out.parquet", table, ("positive",)) as sink:
        sink.write(chunk.rows, scored)
    assert pq.read_table(tmp_path / "out.parquet").to_pydict()["id"] == ["1", "2"]
    with scored_sink(tmp_path / "out.tsv", table, ("positive",)) as sink:
        sink.write(chunk.rows, scored)
    assert (tmp_path / "out.tsv").read_text().splitlines()[:2] == [
        "id\ttext\tlabel\tconfidence\tscore_positive",
        "1\tfine\tpositive\t0.750000\t0.750000",
    ]


def test_a_quote_that_never_closes_refuses_the_file_naming_the_line(tmp_path: Path) -> None:
    table = open_table(write(tmp_path, 'id,text\n1,fine\n2,"never closed\n3,more\n4,again\n'))
    with pytest.raises(TableError, match=r"^line 3: a quote opened here is never closed"):
        list(read_rows(table))


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_reads_as_spreadsheets_write_it(tmp_path: Path, codec: str) -> None:
    # Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated, CRLF line ends.
    content = '\ufefftext\tairline\r\ncaf\u00e9 \U0001f600 fine\tUnited\r\n"quoted\ttab"\tDelta\r\n'
    table = open_table(write(tmp_path, content.encode(codec), "unicode.txt"))
    assert (table.encoding, table.delimiter, table.columns) == ("utf-16", "\t", ["text", "airline"])
    assert list(read_rows(table)) == [
        Row(2, ["caf\u00e9 \U0001f600 fine", "United"]),
        Row(3, ["quoted\ttab", "Delta"]),
    ]


def test_utf16_without_a_byte_order_mark_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"holds NUL bytes\): upload a CSV file saved as UTF-8 \(or UTF-16"):
        open_table(write(tmp_path, "text\nhello\n".encode("utf-16-le")))
