"""Label schemes: QuakeML event types -> class indices, named and versioned.

Catalogs name events with the QuakeML 1.2 ``EventType`` vocabulary. A
:class:`LabelScheme` says which class each type belongs to; a type it does not list is an
*unknown label*: the recording is rejected ``unknown_event_type`` (naming the type and
the scheme), never guessed.

Built-in schemes (:func:`scheme_named`):

* ``binary`` (:data:`BINARY`, the default): earthquake / blast, the map of the study.
* ``four-class`` (:data:`FOUR_CLASS`): earthquake / explosion / surface event / noise.
  Induced seismicity (``induced or triggered event``, ``rock burst``, ``reservoir
  loading``, ``fluid injection``, ``fluid extraction``) is earthquake: its sources
  are shear failures, whose records look like tectonic earthquakes. Every explosion
  type of QuakeML 1.2 (accidental, chemical, controlled, experimental, industrial,
  mining, nuclear explosion, quarry blast, road cut, blasting levee) is explosion.
  Mass movements (``landslide``, ``rockslide``, ``slide``, ``avalanche``, ``snow
  avalanche``, ``debris avalanche``) are surface events. ``not existing`` (a window
  holding only noise) is noise. Rejected: ``not reported``, ``anthropogenic event`` and
  ``other event`` (no class can be inferred), the collapse types (implosive sources,
  underground or at the surface: none of the four classes fits them), crashes,
  atmospheric and acoustic sources (sonic boom/blast, thunder, acoustic noise),
  ``hydroacoustic event``, ``ice quake``, ``meteorite`` and ``volcanic eruption``.

A user's scheme is a JSON file (:func:`scheme_named` with a path)::

    {"name": "my-scheme", "version": 1, "classes": ["earthquake", "blast"],
     "event_types": {"earthquake": "earthquake", "quarry blast": "blast"}}

The scheme travels in every shard folder (``_label_scheme.json``) and every bundle
(``label_scheme`` in ``bundle.json``); data of one scheme is never read as another.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from obspy.core.event.header import EventType

#: Every QuakeML 1.2 ``EventType``, lower case (ObsPy's spelling).
QUAKEML_EVENT_TYPES: tuple[str, ...] = tuple(str(t) for t in EventType)


class UnknownLabelError(ValueError):
    """An event type that the label scheme does not cover."""


class LabelSchemeError(ValueError):
    """A label scheme (a user's JSON file, or stored data) is invalid or does not match."""


def _key(event_type: str | None) -> str:
    return (str(event_type) if event_type is not None else "").strip().lower()


def class_in(event_type: str | None, label_map: Mapping[str, int] | None = None) -> int | None:
    """Class index of a QuakeML event type (case-insensitive) in ``label_map`` (a bundle's
    own; default the binary scheme's); None when the map does not cover it."""
    return (BINARY.event_types if label_map is None else label_map).get(_key(event_type))


def label_of(event_type: str | None, *, event_id: str = "?", label_map: Mapping[str, int] | None = None,
             scheme_name: str | None = None) -> int:
    """Class index of a QuakeML event type (case-insensitive); UnknownLabelError naming
    the event, the type and the scheme if ``label_map`` (default: the binary scheme's)
    does not cover it."""
    label_map = BINARY.event_types if label_map is None else label_map
    label = class_in(event_type, label_map)
    if label is None:
        what = f"label scheme {scheme_name!r}" if scheme_name else "the label map"
        raise UnknownLabelError(
            f"event {event_id}: event type {event_type!r} is not in {what} (known: {sorted(label_map)})"
        )
    return label


def event_type_of(class_index: int, label_map: Mapping[str, int] | None = None) -> str:
    """QuakeML event type written for a verdict of ``class_index``: the first type
    ``label_map`` (default: the binary scheme's) sends to that class (``earthquake`` for
    0, ``quarry blast`` for 1 in the binary scheme)."""
    for event_type, c in (BINARY.event_types if label_map is None else label_map).items():
        if c == class_index:
            return event_type
    raise UnknownLabelError(f"no event type of the label map is class {class_index}")


@dataclass(frozen=True)
class LabelScheme:
    """A named, versioned label map.

    ``class_names``: the classes in probability order (index = class index).
    ``event_types``: lower-case QuakeML event type -> class index; its order matters:
    the first type of a class is the one written for a verdict of that class
    (:meth:`event_type_of`). Validated on construction (:class:`LabelSchemeError`).
    """

    name: str
    version: int
    class_names: tuple[str, ...]
    event_types: Mapping[str, int] = field(hash=False)

    def __post_init__(self) -> None:
        where = f"label scheme {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise LabelSchemeError("a label scheme needs a non-empty name")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise LabelSchemeError(f"{where}: version must be an integer >= 1, got {self.version!r}")
        names = tuple(self.class_names)
        if len(names) < 2:
            raise LabelSchemeError(f"{where}: needs at least 2 classes, got {list(names)}")
        if any(not isinstance(n, str) or not n.strip() for n in names) or len(set(names)) != len(names):
            raise LabelSchemeError(f"{where}: class names must be distinct non-empty strings, got {list(names)}")
        types = {_key(t): c for t, c in dict(self.event_types).items()}
        if len(types) != len(self.event_types):
            raise LabelSchemeError(f"{where}: an event type is listed twice (case and spaces are ignored)")
        unknown = [t for t in types if t not in QUAKEML_EVENT_TYPES]
        if unknown:
            raise LabelSchemeError(f"{where}: {unknown} are not QuakeML 1.2 event types "
                                   f"(known: {list(QUAKEML_EVENT_TYPES)})")
        bad = {t: c for t, c in types.items() if isinstance(c, bool) or not isinstance(c, int)
               or not 0 <= c < len(names)}
        if bad:
            raise LabelSchemeError(f"{where}: class indices outside [0, {len(names)}): {bad}")
        unused = [n for i, n in enumerate(names) if i not in types.values()]
        if unused:
            raise LabelSchemeError(f"{where}: class(es) {unused} have no event type")
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "event_types", types)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_map(self) -> dict[str, int]:
        """A copy of ``event_types`` (what a bundle stores as ``label_map``)."""
        return dict(self.event_types)

    def describe(self) -> str:
        """``name vN (class, class, ...)``, for messages."""
        return f"{self.name} v{self.version} ({', '.join(self.class_names)})"

    def class_in(self, event_type: str | None) -> int | None:
        return class_in(event_type, self.event_types)

    def label_of(self, event_type: str | None, *, event_id: str = "?") -> int:
        return label_of(event_type, event_id=event_id, label_map=self.event_types, scheme_name=self.name)

    def event_type_of(self, class_index: int) -> str:
        return event_type_of(class_index, self.event_types)

    def class_name(self, index: int) -> str:
        return self.class_names[index]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of a user's scheme file (event types mapped to class names)."""
        return {"name": self.name, "version": self.version, "classes": list(self.class_names),
                "event_types": {t: self.class_names[c] for t, c in self.event_types.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "label scheme") -> "LabelScheme":
        """Read :meth:`to_dict`'s form; LabelSchemeError naming ``source`` and the problem."""
        if not isinstance(data, Mapping):
            raise LabelSchemeError(f"{source}: a label scheme is a JSON object, got {type(data).__name__}")
        missing = [k for k in ("name", "version", "classes", "event_types") if k not in data]
        extra = sorted(set(data) - {"name", "version", "classes", "event_types"})
        if missing or extra:
            raise LabelSchemeError(f"{source}: needs keys name, version, classes, event_types"
                                   + (f"; missing {missing}" if missing else "")
                                   + (f"; unknown {extra}" if extra else ""))
        classes, types = data["classes"], data["event_types"]
        if not isinstance(classes, list) or not isinstance(types, Mapping):
            raise LabelSchemeError(f"{source}: 'classes' must be a list and 'event_types' an object")
        index = {name: i for i, name in enumerate(classes) if isinstance(name, str)}
        undefined = sorted({str(c) for c in types.values() if c not in index})
        if undefined:
            raise LabelSchemeError(f"{source}: event_types name class(es) {undefined} not in classes {classes}")
        try:
            return cls(data["name"], data["version"], tuple(classes), {t: index[c] for t, c in types.items()})
        except LabelSchemeError as exc:
            raise LabelSchemeError(f"{source}: {exc}") from None

    @classmethod
    def from_label_map(cls, class_names, label_map: Mapping[str, int]) -> "LabelScheme":
        """The scheme of data stored before schemes had names (a bundle's ``class_names``
        and ``label_map``): the built-in one it equals, else an unnamed ``legacy`` scheme."""
        for scheme in BUILT_IN.values():
            if tuple(class_names) == scheme.class_names and dict(label_map) == scheme.event_types:
                return scheme
        return cls("legacy", 1, tuple(class_names), dict(label_map))


BINARY = LabelScheme(
    "binary", 1, ("earthquake", "blast"),
    {
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
    },
)

FOUR_CLASS = LabelScheme(
    "four-class", 1, ("earthquake", "explosion", "surface event", "noise"),
    {
        # earthquake (first: the type written for an earthquake verdict)
        "earthquake": 0, "induced or triggered event": 0, "rock burst": 0, "reservoir loading": 0,
        "fluid injection": 0, "fluid extraction": 0,
        # explosion: every explosion type of QuakeML 1.2
        "quarry blast": 1, "explosion": 1, "accidental explosion": 1, "chemical explosion": 1,
        "controlled explosion": 1, "experimental explosion": 1, "industrial explosion": 1, "mining explosion": 1,
        "nuclear explosion": 1, "road cut": 1, "blasting levee": 1,
        # surface event: mass movements
        "landslide": 2, "rockslide": 2, "slide": 2, "avalanche": 2, "snow avalanche": 2, "debris avalanche": 2,
        # noise: a catalog entry without a seismic event
        "not existing": 3,
    },
)

#: Built-in schemes by name; a user's scheme file may not reuse these names.
BUILT_IN: dict[str, LabelScheme] = {s.name: s for s in (BINARY, FOUR_CLASS)}
DEFAULT_SCHEME = BINARY

#: The binary scheme's classes and map, under their names of before schemes existed.
CLASS_NAMES: tuple[str, ...] = BINARY.class_names
EVENT_TYPE_TO_CLASS: Mapping[str, int] = BINARY.event_types


def scheme_named(name_or_path: str | LabelScheme) -> LabelScheme:
    """A built-in scheme by name (``binary``, ``four-class``), or a user's scheme read from
    a JSON file (a path or URI ending in ``.json``); LabelSchemeError naming the file and
    the problem (unknown QuakeML types, fewer than 2 classes, a class without types, ...)."""
    if isinstance(name_or_path, LabelScheme):
        return name_or_path
    text = str(name_or_path).strip()
    if text in BUILT_IN:
        return BUILT_IN[text]
    if not text.lower().endswith(".json"):
        raise LabelSchemeError(f"unknown label scheme {text!r}: use one of {sorted(BUILT_IN)} or a .json file")
    from .storage import read_bytes  # storage sits beside labels; imported late to keep labels light

    try:
        data = json.loads(read_bytes(text))
    except FileNotFoundError:
        raise LabelSchemeError(f"{text}: label scheme file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelSchemeError(f"{text}: label scheme file is not valid JSON ({exc})") from None
    scheme = LabelScheme.from_dict(data, source=text)
    if scheme.name in BUILT_IN and scheme != BUILT_IN[scheme.name]:
        raise LabelSchemeError(f"{text}: the name {scheme.name!r} is the built-in scheme's; give yours another name")
    return scheme


def class_name(index: int) -> str:
    """Name of class ``index`` in the binary scheme."""
    return CLASS_NAMES[index]


__all__ = ["BINARY", "BUILT_IN", "CLASS_NAMES", "DEFAULT_SCHEME", "EVENT_TYPE_TO_CLASS", "FOUR_CLASS", "LabelScheme",
           "LabelSchemeError", "QUAKEML_EVENT_TYPES", "UnknownLabelError", "class_in", "class_name", "event_type_of",
           "label_of", "scheme_named"]
