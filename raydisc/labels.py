"""The one label map: QuakeML event types -> class indices.

raydisc discriminates two classes. Catalogs name events with the QuakeML
``EventType`` vocabulary; every anthropogenic blasting type maps to class 1.
Anything not listed here is an *unknown label*: the recording is rejected with that
reason, never guessed.
"""
from __future__ import annotations

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


def label_of(event_type: str | None, *, event_id: str = "?") -> int:
    """Class index of a QuakeML event type (case-insensitive)."""
    key = (str(event_type) if event_type is not None else "").strip().lower()
    try:
        return EVENT_TYPE_TO_CLASS[key]
    except KeyError:
        raise UnknownLabelError(
            f"event {event_id}: event type {event_type!r} is not in the label map "
            f"(known: {sorted(EVENT_TYPE_TO_CLASS)})"
        ) from None


def class_name(index: int) -> str:
    return CLASS_NAMES[index]
