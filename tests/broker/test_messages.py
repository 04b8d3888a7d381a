"""Reading a broker message's body: its items, the ids and sources they get, and the errors
of a body that holds no touchpoint."""

import hashlib
import json

from app.broker import messages
from app.touchpoints.schemas import BatchItemError


def test_a_single_object_is_one_item_with_an_id_from_the_message_id() -> None:
    decoded = messages.decode(b'{"moment": "desk.call"}', message_id="m-1", app_id="desk")
    digest = hashlib.sha256(b"m-1").hexdigest()[:40]
    assert decoded.error is None
    assert decoded.items == [{"moment": "desk.call", "id": f"amqp-{digest}-0", "source": "desk"}]


def test_list_items_get_ids_by_position_and_keep_the_ones_they_name() -> None:
    body = json.dumps([{"moment": "a"}, {"moment": "b", "id": "mine", "source": "portal"}])
    decoded = messages.decode(body.encode(), message_id="m-2", app_id="desk")
    first, second = decoded.items
    assert first["id"] == messages.derived_id("m-2", 0)
    assert first["id"] != messages.derived_id("m-2", 1)
    assert second == {"moment": "b", "id": "mine", "source": "portal"}


def test_derived_ids_fit_the_id_rules_whatever_the_message_id() -> None:
    derived = messages.derived_id("x" * 500 + " spaces and ünïcode", 9999)
    assert len(derived) <= 64
    assert derived.replace("-", "").isalnum()
    assert messages.derived_id("a", 0) != messages.derived_id("b", 0)


def test_without_a_message_id_items_keep_no_id_and_are_given_one_when_stored() -> None:
    decoded = messages.decode(b'{"moment": "a"}', message_id=None, app_id=None)
    assert decoded.items == [{"moment": "a"}]


def test_a_body_that_is_not_json_or_an_empty_list_is_an_error_about_the_body() -> None:
    for body, kind in [
        (b"{oops", "json_invalid"),
        (b"\xff\xfe", "json_invalid"),
        (b"[]", "too_short"),
    ]:
        decoded = messages.decode(body, message_id="m", app_id=None)
        assert decoded.items == []
        assert decoded.error is not None
        (detail,) = decoded.error["details"]
        assert (decoded.error["index"], detail["field"], detail["type"]) == (None, "body", kind)


def test_items_that_are_not_objects_are_left_for_validation_to_refuse() -> None:
    decoded = messages.decode(b"[42, null]", message_id="m", app_id="desk")
    assert decoded.items == [42, None]


def test_dead_letter_headers_keep_the_original_ones_and_cut_long_error_lists() -> None:
    error = BatchItemError(index=7, id=None, code="validation_failed", message="bad", details=[])
    errors = [messages.item_error(error, position=n) for n in range(150)]
    headers = messages.dead_letter_headers({"trace": "abc"}, errors)
    shown = json.loads(headers[messages.ERRORS_HEADER])
    assert headers["trace"] == "abc"
    assert headers[messages.ERROR_COUNT_HEADER] == 150
    assert [item["index"] for item in shown] == list(range(messages.MAX_ERRORS_IN_HEADER))
