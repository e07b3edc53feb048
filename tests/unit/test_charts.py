"""Chart geometry: round scales, calendar ticks in UTC, time mapped to percent of the width, gaps, the bucket
still filling, hover texts, and the share view's bands."""

from datetime import UTC, datetime

from sentiment.web.charts import (
    Bucket,
    bar_chart,
    calendar_ticks,
    nice_ticks,
    sentiment_charts,
    span_caption,
    time_chart,
)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 2, year: int = 2015) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_nice_ticks_cover_the_maximum_in_round_steps() -> None:
    assert nice_ticks(87) == [0, 25, 50, 75, 100]
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(1_234_567)[-1] >= 1_234_567


def test_bars_are_percent_of_the_width_on_a_round_scale() -> None:
    shares = bar_chart([("negative", 25.0), ("positive", 75.0)], unit="%", row_height=30)
    assert [(b.label, b.percent, b.text, b.y, b.css) for b in shares.bars] == [
        ("negative", 25.0, "25.0%", 0, "bar-negative"),
        ("positive", 75.0, "75.0%", 30, "bar-positive"),
    ]
    assert shares.height == 60
    counts = bar_chart([("a", 1200.0), ("b", 360.0)])
    assert [(b.percent, b.text) for b in counts.bars] == [(80.0, "1.2k"), (24.0, "360")]  # scale 0-1500


def test_calendar_ticks_fall_on_midnights_hours_mondays_months_and_years() -> None:
    labels = [label for _, label in calendar_ticks(at(20), at(24))]
    assert labels == ["20 Feb", "21 Feb", "22 Feb", "23 Feb", "24 Feb"]
    hours = calendar_ticks(at(20, 13), at(21, 2))
    assert [(t.hour, label) for t, label in hours] == [
        (15, "15:00"),
        (18, "18:00"),
        (21, "21:00"),
        (0, "21 Feb"),
    ]
    weeks = calendar_ticks(datetime(2026, 1, 3, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC))
    assert all(t.weekday() == 0 and t.hour == 0 for t, _ in weeks) and weeks[0][1] == "05 Jan"
    months = calendar_ticks(datetime(2025, 3, 3, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC))
    assert [label for _, label in months] == ["May 2025", "Jul 2025", "Sep 2025", "Nov 2025", "Jan 2026"]
    years = calendar_ticks(datetime(2020, 1, 3, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC))
    assert [label for _, label in years] == ["2021", "2022", "2023", "2024", "2025", "2026"]
    assert len(calendar_ticks(datetime(1, 3, 3, tzinfo=UTC), datetime(9999, 2, 20, tzinfo=UTC))) <= 6
    assert calendar_ticks(at(20), at(20)) == []


def test_the_caption_names_the_span_and_the_time_zone() -> None:
    assert span_caption(at(21), at(24)) == "21 Feb 2015 00:00 – 23 Feb 2015 23:59, UTC"


def days(*values: float | None) -> list[Bucket]:
    return [
        Bucket(at(20 + i), at(21 + i), {"positive": value, "negative": 1.0}) for i, value in enumerate(values)
    ]


def test_time_runs_across_the_width_with_values_at_bucket_middles() -> None:
    chart = time_chart(days(0, 5, 10), ("positive", "negative"), height=240)
    assert chart.plot_height == 240 - 16 - 34
    positive = chart.series[0]
    # x in the nested SVG's 0-1000: middles of three equal days; y in pixels, 10 at the top of a 0-10 scale.
    assert positive.path == "M166.7,190 L500,95 L833.3,0"
    assert positive.partial_path == ""
    assert [(c.x, c.width) for c in chart.columns] == [(0.0, 33.333), (33.333, 33.333), (66.667, 33.333)]
    assert chart.columns[1].title == "21 Feb 2015 00:00–00:00 UTC: positive 5, negative 1"
    assert [(t.position, t.label, t.anchor) for t in chart.x_ticks][:2] == [
        (0.0, "20 Feb", "start"),
        (33.33, "21 Feb", "middle"),
    ]
    assert [t.label for t in chart.y_ticks] == ["0", "2.5", "5", "7.5", "10"]
    assert chart.caption == "20 Feb 2015 00:00 – 22 Feb 2015 23:59, UTC" and not chart.empty


def test_a_missing_value_breaks_the_line_and_the_bucket_still_filling_is_dashed() -> None:
    chart = time_chart(days(1, None, 3, 4), ("positive",), now=at(23, 12))
    (positive,) = chart.series
    assert positive.path.count("M") == 2  # two stretches: before and after the gap
    assert positive.partial_path.startswith("M625,") and " L875," in positive.partial_path
    assert positive.path.endswith(
        positive.partial_path.split(" ")[0][1:]
    )  # the dash starts where the line ends
    assert chart.columns[-1].title.endswith("(still filling)")
    assert "still filling" in chart.caption


def test_buckets_side_by_side_when_time_is_not_linear() -> None:
    buckets = [
        Bucket(datetime(1900, 1, 1, tzinfo=UTC), datetime(1900, 2, 1, tzinfo=UTC), {"positive": 1.0}),
        Bucket(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 2, 1, tzinfo=UTC), {"positive": 2.0}),
    ]
    chart = time_chart(buckets, ("positive",), linear=False)
    assert [(c.x, c.width) for c in chart.columns] == [(0.0, 50.0), (50.0, 50.0)]
    assert [t.label for t in chart.x_ticks] == ["01 Jan 1900", "01 Jan 2000"]


def test_nothing_to_draw_is_marked_empty() -> None:
    assert time_chart([], ("positive",)).empty
    assert time_chart(days(0, 0), ("positive",)).series[0].path  # zeros still draw, the chart says empty
    assert sentiment_charts([], "counts").main.empty


def test_the_share_view_draws_bands_and_net_sentiment_with_n_in_the_hover_text() -> None:
    series = [
        (at(20), at(21), {"negative": 1, "neutral": 1, "positive": 2}),
        (at(21), at(22), {}),
        (at(22), at(23), {"negative": 300, "neutral": 0, "positive": 100}),
    ]
    charts = sentiment_charts(series, "share")
    assert charts.view == "share" and charts.net is not None
    assert [t.label for t in charts.main.y_ticks] == ["0%", "25%", "50%", "75%", "100%"]
    assert {band.name for band in charts.main.bands} == {"negative", "neutral", "positive"}
    negative = next(band for band in charts.main.bands if band.name == "negative")
    assert negative.path.count("M") == 2  # the empty day leaves a gap in the band too
    assert charts.main.columns[0].title.startswith(
        "20 Feb 2015 00:00–00:00 UTC: negative 25.0% (95% CI 4.6–69.9)"
    )
    assert charts.main.columns[0].title.endswith("; n 4")
    assert charts.main.columns[1].title.endswith("no rows; n 0")
    assert [t.label for t in charts.net.y_ticks] == ["-100", "-50", "0", "50", "100"]
    assert "net 25" in charts.net.columns[0].title and "net -50" in charts.net.columns[2].title
    counts = sentiment_charts(series, "counts")
    assert counts.net is None and not counts.main.bands
    assert counts.main.columns[2].title.endswith("negative 300, neutral 0, positive 100; n 400")


def test_a_value_with_no_neighbour_is_a_dot_not_an_invisible_line() -> None:
    chart = time_chart(days(None, 4, None, 2, 3), ("positive",), height=240)
    (positive,) = chart.series
    assert positive.dots == [(30.0, 16 + 0.0)]  # the lone 4 (the top of a 0-4 scale); 2 and 3 join up
    assert positive.path.count("M") == 2
