from datetime import UTC, datetime, timedelta

from sentiment.web.charts import bar_chart, line_chart, nice_ticks


def test_nice_ticks_cover_the_maximum_in_round_steps() -> None:
    assert nice_ticks(87) == [0, 25, 50, 75, 100]
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(1_234_567)[-1] >= 1_234_567


def test_bars_are_scaled_to_the_largest_tick_and_labelled() -> None:
    chart = bar_chart(
        [("negative", 25.0), ("neutral", 0.0), ("positive", 75.0)], unit="%", width=400, label_width=100
    )
    plot = 400 - 100 - 56
    assert [b.length for b in chart.bars] == [plot * 25 / 80, 0.0, plot * 75 / 80]
    assert [b.text for b in chart.bars] == ["25.0%", "0.0%", "75.0%"]
    assert chart.bars[2].css == "bar-positive"
    assert chart.ticks[0].label == "0%" and chart.ticks[-1].label == "80%"


def test_line_chart_maps_time_to_x_and_counts_to_y() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(hours=h) for h in range(3)]
    chart = line_chart(times, {"positive": [0, 5, 10], "negative": [10, 0, 0]}, width=300, height=200)
    positive = chart.series[0]
    assert positive.points[0] == (48, 172) and positive.points[-1] == (268, 8)
    assert positive.path == "M48.0,172.0 L158.0,90.0 L268.0,8.0"
    assert [t.label for t in chart.x_ticks] == ["00:00", "01:00", "02:00"]
    assert chart.y_ticks[-1].label == "10" and not chart.empty


def test_line_chart_of_nothing_is_marked_empty() -> None:
    assert line_chart([], {}).empty
