from sentiment.core.domain import first_line


def test_first_line_keeps_only_the_message_line_of_a_driver_error() -> None:
    error = RuntimeError('relation "predictions" does not exist\n[SQL: INSERT INTO predictions ...]')
    assert first_line(error) == 'relation "predictions" does not exist'


def test_an_error_without_a_message_is_named_by_its_type() -> None:
    assert first_line(OSError()) == "OSError"
    assert first_line(ConnectionResetError("")) == "ConnectionResetError"
