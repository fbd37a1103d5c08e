"""The one label map: QuakeML event types -> class indices.

raydisc discriminates two classes. Catalogs name events with the QuakeML
``EventType`` vocabulary; every anthropogenic blasting type maps to class 1.
Anything not listed here is an *unknown label*: the recording is rejected with that
reason, never guessed.
"""
from __future__ import annotations

from typing import Mapping

CLASS_NAMES: tuple[str, ...] = ("earthquake", "blast")

EVENT_TYPE_TO_CLASS: dict[str, int] = {
    "earthquake": 0,
    "induced or triggered event": 0,
    "quarry blast": 1,
    "explosion": 1,
    "mining explosion": 1,
    "chemical explosion": 1,
    "industrial explosion": 1,
    "controlled explosion": 1,
    "experimental explosion": 1,
    "road cut": 1,
}


class UnknownLabelError(ValueError):
    """An event type that the label map does not cover."""


def class_in(event_type: str | None, label_map: Mapping[str, int] = EVENT_TYPE_TO_CLASS) -> int | None:
    """Class index of a QuakeML event type (case-insensitive) in ``label_map`` (a bundle's
    own, or this module's); None when the map does not cover it."""
    key = (str(event_type) if event_type is not None else "").strip().lower()
    return label_map.get(key)


def label_of(event_type: str | None, *, event_id: str = "?",
             label_map: Mapping[str, int] = EVENT_TYPE_TO_CLASS) -> int:
    """Class index of a QuakeML event type (case-insensitive); UnknownLabelError if
    ``label_map`` does not cover it."""
    label = class_in(event_type, label_map)
    if label is None:
        raise UnknownLabelError(
            f"event {event_id}: event type {event_type!r} is not in the label map "
            f"(known: {sorted(label_map)})"
        )
    return label


def event_type_of(class_index: int, label_map: Mapping[str, int] = EVENT_TYPE_TO_CLASS) -> str:
    """QuakeML event type written for a verdict of ``class_index``: the first type
    ``label_map`` sends to that class (``earthquake`` for 0, ``quarry blast`` for 1 in
    this module's map)."""
    for event_type, c in label_map.items():
        if c == class_index:
            return event_type
    raise UnknownLabelError(f"no event type of the label map is class {class_index}")


def class_name(index: int) -> str:
    return CLASS_NAMES[index]
