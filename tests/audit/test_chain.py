"""The hashing format is a promise to everyone holding an export or an anchor: it must never drift."""

import hashlib

import orjson
import pytest

from audit.chain import (
    GENESIS_HASH,
    _copy_unescape,
    canonical_bytes,
    canonical_data,
    event_hash,
    parse_anchors,
)

SIGNOFF = {
    "seq": 42,
    "at": "2026-11-28T10:00:00.000000Z",
    "actor": "vera",
    "kind": "rollback.signoff",
    "action_id": 17,
    "rollback_id": 5,
    "data": canonical_data({"decision": "approve", "comment": 'ok "fine"'}),
    "prev_hash": GENESIS_HASH,
}


def test_the_hash_of_a_known_event_never_changes():
    assert event_hash(**SIGNOFF) == "ca8b00f6cfd91e944c2c3eabfe776e88a2a02c1037432a21ba4014fc113963f8"


@pytest.mark.parametrize("actor", ["alice", 'we"ird\\name', "tab\tand\nnewline", "café ☃", "\u0001", ""])
@pytest.mark.parametrize("action_id", [None, 0, 2**62])
def test_the_canonical_bytes_are_the_events_json_with_sorted_keys(actor, action_id):
    event = {**SIGNOFF, "actor": actor, "action_id": action_id, "rollback_id": None}
    expected = orjson.dumps(
        {
            "action": action_id,
            "actor": actor,
            "at": event["at"],
            "data": orjson.loads(event["data"]),
            "kind": event["kind"],
            "prev_hash": event["prev_hash"],
            "rollback": None,
            "seq": event["seq"],
        },
        option=orjson.OPT_SORT_KEYS,
    )
    assert canonical_bytes(**event) == expected
    assert event_hash(**event) == hashlib.sha256(expected).hexdigest()


def test_stored_data_is_canonical_so_an_export_can_rebuild_it():
    data = {"b": [1, 2.5, None], "a": {"z": "é", "y": 'q"uote\\'}, "amount": "25.00"}
    text = canonical_data(data)
    assert text == canonical_data(orjson.loads(text))
    assert text.startswith('{"a":{"y":')


@pytest.mark.parametrize(
    ("copied", "value"),
    [
        (rb"back\\slash", b"back\\slash"),
        (rb"tab\there", b"tab\there"),
        (rb"line\nbreak\r", b"line\nbreak\r"),
        (rb"octal\101", b"octalA"),
        (rb"plain", b"plain"),
    ],
)
def test_copy_escapes_are_undone(copied, value):
    assert _copy_unescape(copied) == value


def test_anchor_lines_are_read_as_seq_and_hash_skipping_blank_ones_and_the_empty_trail():
    lines = [
        orjson.dumps({"seq": 0, "hash": GENESIS_HASH, "at": "t0"}),
        b"",
        orjson.dumps({"seq": 3, "hash": "a" * 64, "at": "t1"}),
    ]
    assert parse_anchors(lines) == {3: "a" * 64}


@pytest.mark.parametrize(
    "line",
    [b"not json", b'{"seq": 3}', b'{"seq": "3", "hash": "' + b"a" * 64 + b'"}', b'{"seq": 3, "hash": "xyz"}'],
)
def test_a_bad_anchor_line_is_refused_with_its_number(line):
    with pytest.raises(ValueError, match="anchor line 2"):
        parse_anchors([orjson.dumps({"seq": 1, "hash": "b" * 64, "at": "t"}), line])
