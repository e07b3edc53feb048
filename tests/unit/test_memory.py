"""Process memory figures read from /proc/<pid>/status."""

from pathlib import Path

from sentiment.inference.memory import status_kib

STATUS = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nRssAnon:\t   81920 kB\n"


def test_a_status_figure_is_read_in_kib_by_its_exact_name(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(STATUS)
    assert status_kib("VmHWM", status) == 204800
    assert status_kib("RssAnon", status) == 81920
    assert status_kib("Rss", status) is None  # a prefix of another figure's name is not that figure


def test_a_missing_status_file_gives_no_figure(tmp_path: Path) -> None:
    assert status_kib("VmHWM", tmp_path / "absent") is None
