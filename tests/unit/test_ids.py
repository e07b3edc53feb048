"""Row ids: standard-library UUIDs of version 7, in the order they were made."""

import uuid

import msgspec

from sentiment.core.ids import new_id


def test_new_ids_are_standard_uuid7_in_the_order_they_were_made() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(type(made) is uuid.UUID and made.version == 7 for made in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # They behave as any other UUID: parsed back from their text, hashed and encoded alike.
    first = ids[0]
    assert uuid.UUID(str(first)) == first and hash(uuid.UUID(str(first))) == hash(first)
    assert msgspec.json.decode(msgspec.json.encode(first), type=uuid.UUID) == first
