"""Column guesses from a header and the first rows, and the label check made before scoring."""

from sentiment.core.columns import ColumnGuess, covering_model, guess_columns, label_mismatch


def test_the_obvious_columns_are_found_by_their_values_when_names_do_not_say() -> None:
    columns = ["n", "stamp", "company", "y", "words", "likes"]
    rows = [
        [
            str(i),
            f"24-02-2015 11:{i % 60:02d}",
            ("Acme", "Globex")[i % 2],
            ("0", "1")[i % 2],
            f"a longer post {i}",
            "7",
        ]
        for i in range(40)
    ]
    assert guess_columns(columns, rows) == ColumnGuess(
        text="words", time="stamp", group="company", gold="y", gold_labels=("negative", "positive")
    )


def test_columns_that_only_look_like_roles_are_left_unguessed() -> None:
    columns = ["text", "created", "user", "label"]
    rows = [[f"post {i}", str(i), f"user{i}", ("happy", "sad")[i % 2]] for i in range(30)]
    guess = guess_columns(columns, rows)
    # Small integers are not times, a name per row is no group, and happy/sad are not sentiment labels
    # (though two values, seen again and again, group well).
    assert guess == ColumnGuess(text="text", group="label")


def test_a_model_missing_gold_labels_is_named_before_scoring() -> None:
    gold = ("negative", "neutral", "positive")
    note = label_mismatch("sst2", ("negative", "positive"), gold)
    assert note is not None and note.startswith(
        "sst2 answers negative or positive only: the gold column's neutral"
    )
    assert label_mismatch("tweets3", gold, gold) is None
    assert label_mismatch("sst2", ("negative", "positive"), ()) is None


def test_the_model_preselected_covers_the_gold_labels() -> None:
    labels = {"sst2": ("negative", "positive"), "vader": ("negative", "neutral", "positive")}
    three = ("negative", "neutral", "positive")
    assert covering_model(["sst2", "vader"], labels, three, preferred="sst2") == "vader"
    assert covering_model(["sst2", "vader"], labels, ("negative", "positive"), preferred="sst2") == "sst2"
    assert covering_model(["sst2"], labels, three, preferred="sst2") == "sst2"  # nothing better offered
