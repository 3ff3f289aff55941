"""The column plan: which columns an export has and how one record's values fill them.

Computed once per export from the catalogue model, then applied to every row with no further lookups.

Column naming (see docs/export-format.md):

* with a ``dimensionScope``: one column per attribute, named by its alias, holding the value of the most
  specific scope that applies (:func:`skuport.records.values.scope_candidates` order, restricted to the
  attribute's own dimensions), else the global value;
* a dimension mapped to several segments (``{"dim-language": ["seg-da", "seg-en"]}``): one such
  column per segment for each attribute of that dimension, named ``alias-segment``
  (``product-name-seg-da``; :func:`~skuport.exporting.conventions.segment_column`);
* without one: one column per (attribute, scope) of the catalogue model, global first, named
  ``alias`` for the global value and ``alias[scope key]`` otherwise, e.g.
  ``product-name[dim-language=seg-da]`` or ``price[dim-language=seg-en&dim-market=seg-dk]``;
* with ``columns`` (:class:`Wanted`): exactly the columns named, in that order, each attribute column
  resolved in its own scope as a dimensionScope export's.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from skuport.exporting.conventions import (
    DEFAULT_TEXT,
    DELETED_COLUMN,
    DRY_DATA_DROPS,
    FIXED_COLUMNS,
    LIST_SEPARATOR,
    TextForm,
    boolean_text,
    column_key,
    join_list,
    number_text,
    segment_column,
)
from skuport.records.codecs import DataType
from skuport.records.scopes import scope_key
from skuport.records.values import GLOBAL_CELL, scope_candidates

CATEGORIES_COLUMN = "categories"
"""Column added by ``includes=("categories",)``: the record's category ids, in assignment order."""
COMPLETENESS_COLUMN = "completeness"
"""Column added by ``includes=("completeness",)``: percentage complete for the record's current state."""
SYSTEM_FIELDS = (*FIXED_COLUMNS, CATEGORIES_COLUMN)
"""Record fields an export's ``fields`` may name beside attribute aliases."""

# Index of each fixed column in the raw row the selection yields.
RAW_INDEX = {"id": 1, "parentId": 2, "schemaId": 3, "lifecycleStateId": 4, "createdAt": 6, "updatedAt": 7}
RAW_VALUES = 5
RAW_TIMES = ("createdAt", "updatedAt")
"""The fixed columns that are timestamps (read as ISO 8601 text, or as PLAIN_TIME by the frame engine)."""


class Kind(StrEnum):
    """How a writer should treat a column's values."""

    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LIST = "list"
    DATE = "date"
    """A ``YYYY-MM-DD`` date: text, except where a text form has a date format."""


def kind_of(data_type: str) -> Kind:
    """The column kind for an attribute data type."""
    if data_type in (DataType.NUMBER, DataType.INTEGER):
        return Kind.NUMBER
    if data_type == DataType.BOOLEAN:
        return Kind.BOOLEAN
    if data_type == DataType.MULTISELECT:
        return Kind.LIST
    if data_type == DataType.DATE:
        return Kind.DATE
    return Kind.TEXT


@dataclass(frozen=True)
class AttributeInfo:
    """What the plan needs to know of an attribute."""

    alias: str
    data_type: str
    dimension_ids: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    option_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """A select's or multiselect's option -> segment id -> label."""

    def option_texts(self, segments: Iterable[str]) -> dict[str, str]:
        """Each option's label in the first of ``segments`` that has one (options without one: absent)."""
        order = list(dict.fromkeys(segments))
        texts: dict[str, str] = {}
        for option, labels in self.option_labels.items():
            found = next((labels[seg] for seg in order if labels.get(seg)), None)
            if found is not None:
                texts[option] = found
        return texts


@dataclass(frozen=True)
class Column:
    """One output column."""

    key: str
    """Canonical name: a fixed column name, ``alias`` or ``alias[scope key]``."""
    header: str
    """Name written in the file (the key, or a label when headers are in a language)."""
    kind: Kind
    alias: str | None = None
    scope: Mapping[str, str] = field(default_factory=dict)
    """The exact scope of an unscoped export's column ({} for global); empty for resolved columns."""
    default: Any = None
    """What a resolved attribute column holds where the record has no value (None: nothing)."""
    value: Any = None
    """A constant column's value (every row holds it)."""
    labels: Mapping[str, str] | None = None
    """``valueLabels``: option -> the label the column writes instead (options not named stay codes)."""


@dataclass(frozen=True)
class Wanted:
    """One column of an export that names its columns (``columns``), already checked by the pipeline.

    Exactly one of ``attribute`` (resolved in ``scope``: the export's dimensionScope with the column's
    own scope over it), ``field`` (a record field of :data:`SYSTEM_FIELDS`) and ``value`` (a constant).
    """

    header: str
    attribute: AttributeInfo | None = None
    scope: Mapping[str, str] = field(default_factory=dict)
    field: str | None = None
    value: Any = None
    default: Any = None


def kind_of_value(value: Any) -> Kind:
    """The column kind of a constant."""
    if isinstance(value, bool):
        return Kind.BOOLEAN
    return Kind.NUMBER if isinstance(value, int | float) else Kind.TEXT


def value_text(value: Any, form: TextForm) -> Any:
    """A constant or default as a text format writes it (numbers, booleans, lists in ``form``)."""
    if isinstance(value, bool):
        return boolean_text(value)
    if isinstance(value, int | float):
        return form.number(value)
    return form.join(value) if isinstance(value, list) else value


def attribute_scopes(attribute: AttributeInfo, segments: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every scope an attribute can hold: global first, then each combination of its dimensions' segments."""
    dims = [d for d in attribute.dimension_ids if segments.get(d)]
    scopes: list[dict[str, str]] = [{}]
    for size in range(1, len(dims) + 1):
        for combo in itertools.combinations(dims, size):
            for segs in itertools.product(*(segments[d] for d in combo)):
                scopes.append(dict(zip(combo, segs, strict=True)))
    return scopes


@dataclass
class _Slot:
    """Where the items of one attribute go: scope signature -> (column offset, rank)."""

    alias: str
    dims: tuple[str, ...]
    targets: dict[Any, tuple[int, int]]
    global_target: tuple[int, int] | None
    ranked_cells: tuple[str, ...] = ()
    """Resolved exports: the cells keys to try, most specific first (global last)."""


_RowSlot = tuple[str, str | None, tuple[str, ...], dict[Any, tuple[int, int]], tuple[int, int]]
"""A slot as the generic loop reads it: alias, :func:`_lone_dimension`, dims, targets, global target."""

_NOWHERE = (0, 99)
"""Target of an item no column takes: rank 99 never beats a cell's rank (99 while empty)."""


def _fixed_columns(
    fields: Sequence[str] | None, aliases: set[str], *, dry_data: bool, categories_column: bool
) -> tuple[list[str], bool]:
    """The fixed columns of an export, and whether it has the categories column."""
    if fields is None:
        fixed = [name for name in FIXED_COLUMNS if not (dry_data and name in DRY_DATA_DROPS)]
        return fixed, categories_column
    # ``fields`` names the columns of the file, system fields included, and nothing else.
    named = set(fields) - aliases
    return [name for name in FIXED_COLUMNS if name in named], categories_column or CATEGORIES_COLUMN in named


_Resolved = tuple[AttributeInfo, str, str, Mapping[str, str], Any]
"""A resolved attribute column: its attribute, header, key, scope and default."""


def _resolved_columns(
    attributes: Sequence[AttributeInfo],
    dimension_scope: Mapping[str, str | Sequence[str]],
    header_language: str | None,
) -> list[_Resolved]:
    """A dimensionScope export's attribute columns: one per attribute, or one per segment of each
    dimension the scope lists several segments of (their product for two such dimensions)."""
    resolved: list[_Resolved] = []
    for attribute in attributes:
        label = (attribute.labels or {}).get(header_language, "") if header_language else ""
        base = label or attribute.alias
        listed = [
            (dim, segments)
            for dim, segments in dimension_scope.items()
            if not isinstance(segments, str) and dim in attribute.dimension_ids
        ]
        chosen = {dim: segs if isinstance(segs, str) else segs[0] for dim, segs in dimension_scope.items()}
        if not listed:
            resolved.append((attribute, base, attribute.alias, chosen, None))
            continue
        for combo in itertools.product(*(segments for _dim, segments in listed)):
            scope = chosen | {dim: seg for (dim, _segments), seg in zip(listed, combo, strict=True)}
            resolved.append(
                (attribute, segment_column(base, combo), segment_column(attribute.alias, combo), scope, None)
            )
    return resolved


def _attribute_slots(
    attributes: Sequence[AttributeInfo],
    segments: Mapping[str, Sequence[str]],
    resolved: Sequence[_Resolved] | None,
    header_language: str | None,
) -> tuple[list[_Slot], list[Column]]:
    """Each attribute column's slot (resolved), or each attribute's (unscoped), and the attribute columns in
    order (offsets count from the first one)."""
    slots: list[_Slot] = []
    attr_columns: list[Column] = []
    if resolved is not None:
        for start, (attribute, header, key, scope, default) in enumerate(resolved):
            slot, column = _resolved_slot(attribute, header, key, scope, start)
            slots.append(slot)
            attr_columns.append(dataclasses.replace(column, default=default))
        return slots, attr_columns
    for attribute in attributes:
        label = (attribute.labels or {}).get(header_language, "") if header_language else ""
        slot, columns = _unscoped_slot(attribute, label or attribute.alias, segments, len(attr_columns))
        slots.append(slot)
        attr_columns += columns
    return slots, attr_columns


def _labelled(column: Column, attribute: AttributeInfo, segments: Sequence[str]) -> Column:
    """The column writing its options' labels in the first of ``segments`` that has one (``valueLabels``)."""
    if column.kind not in (Kind.TEXT, Kind.LIST) or not attribute.option_labels:
        return column
    return dataclasses.replace(column, labels=attribute.option_texts(segments) or None)


def _resolved_slot(
    attribute: AttributeInfo, header: str, key: str, scope: Mapping[str, str], start: int
) -> tuple[_Slot, Column]:
    """A resolved column for an attribute in ``scope``, at offset ``start``, and its slot by rank."""
    kind = kind_of(attribute.data_type)
    column = Column(key=key, header=header, kind=kind, alias=attribute.alias)
    applicable = {d: s for d, s in scope.items() if d in attribute.dimension_ids}
    candidates = scope_candidates(applicable)
    placements = [(_parse(key), (start, rank)) for rank, key in enumerate(candidates)]
    ranked_cells = tuple(key or GLOBAL_CELL for key in candidates)
    return _slot(attribute, placements, ranked_cells), column


def _unscoped_slot(
    attribute: AttributeInfo, base: str, segments: Mapping[str, Sequence[str]], start: int
) -> tuple[_Slot, list[Column]]:
    """An unscoped export's columns for an attribute, one per scope from offset ``start``, and its slot."""
    kind = kind_of(attribute.data_type)
    scopes = attribute_scopes(attribute, segments)
    columns = [
        Column(
            key=column_key(attribute.alias, scope_key(scope)),
            header=column_key(base, scope_key(scope)),
            kind=kind,
            alias=attribute.alias,
            scope=scope,
        )
        for scope in scopes
    ]
    placements = [(scope, (start + i, 0)) for i, scope in enumerate(scopes)]
    return _slot(attribute, placements), columns


def _slot(
    attribute: AttributeInfo,
    placements: Iterable[tuple[Mapping[str, str], tuple[int, int]]],
    ranked_cells: tuple[str, ...] = (),
) -> _Slot:
    """The slot of an attribute whose scopes go to the given (column offset, rank) targets."""
    dims = tuple(attribute.dimension_ids)
    targets: dict[Any, tuple[int, int]] = {}
    global_target: tuple[int, int] | None = None
    for scope, target in placements:
        if scope:
            targets[_signature(scope, dims)] = target
        else:
            global_target = target
    return _Slot(attribute.alias, dims, targets, global_target, ranked_cells)


def _wanted_order(columns: Sequence[Column], wanted: Sequence[Wanted]) -> list[int] | None:
    """Natural column order -> the order ``columns`` names them in (None when it is the same)."""
    by_field = {c.key: i for i, c in enumerate(columns) if c.alias is None and c.value is None}
    attributes = iter([i for i, c in enumerate(columns) if c.alias is not None])
    constants = iter([i for i, c in enumerate(columns) if c.value is not None])
    order = [
        by_field[w.field] if w.field is not None else next(attributes if w.attribute else constants)
        for w in wanted
    ]
    order += [i for i in range(len(columns)) if i not in order]  # _deleted, includes not named
    return order if order != list(range(len(columns))) else None


def _file_order(columns: Sequence[Column], fields: Sequence[str]) -> list[int] | None:
    """Natural column order -> the order ``fields`` names them in (None when it is the same)."""
    groups: dict[str, list[int]] = {}
    for i, column in enumerate(columns):
        groups.setdefault(column.alias or column.key, []).append(i)
    order = [i for name in fields for i in groups.pop(name, [])]
    order += [i for rest in groups.values() for i in rest]  # _deleted, includes not named
    return order if order != list(range(len(columns))) else None


class ColumnPlan:
    """Columns of an export and the flattening of raw rows into lists of values."""

    def __init__(
        self,
        *,
        attributes: Sequence[AttributeInfo],
        segments: Mapping[str, Sequence[str]],
        dimension_scope: Mapping[str, str | Sequence[str]] | None = None,
        header_language: str | None = None,
        dry_data: bool = False,
        deleted_column: bool = False,
        categories_column: bool = False,
        completeness: Callable[[str, str | None, Mapping[str, Any]], Any] | None = None,
        fields: Sequence[str] | None = None,
        columns: Sequence[Wanted] | None = None,
        value_labels: bool = False,
    ) -> None:
        resolved: list[_Resolved] | None = None
        if columns is not None:
            named = {w.field: w.header for w in columns if w.field is not None}
            self.fixed = [name for name in FIXED_COLUMNS if name in named]
            categories_column = categories_column or CATEGORIES_COLUMN in named
            resolved = [(w.attribute, w.header, w.header, w.scope, w.default) for w in columns if w.attribute]
        else:
            named = {}
            aliases = {a.alias for a in attributes}
            self.fixed, categories_column = _fixed_columns(
                fields, aliases, dry_data=dry_data, categories_column=categories_column
            )
            if dimension_scope is not None:
                resolved = _resolved_columns(attributes, dimension_scope, header_language)
        natural = [Column(key=name, header=named.get(name, name), kind=Kind.TEXT) for name in self.fixed]
        self.deleted_column = deleted_column
        self.categories_column = categories_column
        self.completeness = completeness
        if deleted_column:
            natural.append(Column(key=DELETED_COLUMN, header=DELETED_COLUMN, kind=Kind.BOOLEAN))
        self.attr_offset = len(natural)
        slots, attr_columns = _attribute_slots(attributes, segments, resolved, header_language)
        if value_labels:
            by_alias = {a.alias: a for a in attributes} | {r[0].alias: r[0] for r in resolved or ()}
            scopes = [r[3] for r in resolved] if resolved is not None else [c.scope for c in attr_columns]
            attr_columns = [
                _labelled(column, by_alias[column.alias or ""], [*scope.values(), header_language or ""])
                for column, scope in zip(attr_columns, scopes, strict=True)
            ]
        natural.extend(attr_columns)
        self.attr_count = len(attr_columns)
        self.constants = [
            Column(key=w.header, header=w.header, kind=kind_of_value(w.value), value=w.value)
            for w in columns or ()
            if w.value is not None
        ]
        """Constant columns (``columns`` entries with a ``value``), after the attribute columns."""
        natural.extend(self.constants)
        if categories_column:
            header = named.get(CATEGORIES_COLUMN, CATEGORIES_COLUMN)
            natural.append(Column(key=CATEGORIES_COLUMN, header=header, kind=Kind.LIST))
        if completeness is not None:
            natural.append(Column(key=COMPLETENESS_COLUMN, header=COMPLETENESS_COLUMN, kind=Kind.NUMBER))
        self.natural_columns = natural
        """The columns in the plan's natural order: fixed, deleted, attributes, constants, includes."""
        self.permutation: list[int] | None = (
            _wanted_order(natural, columns)
            if columns is not None
            else None
            if fields is None
            else _file_order(natural, fields)
        )
        """Natural column order -> file order, when ``fields`` or ``columns`` order them differently."""
        self.columns = self._permute(natural)
        """The columns in file order."""
        self._slots = slots
        self._fixed_index = [RAW_INDEX[name] for name in self.fixed]
        self._resolved = resolved is not None
        self._compiled: dict[TextForm | None, Any] = {}

    @property
    def uses_cells(self) -> bool:
        """Whether raw rows carry ``cells_json`` instead of ``values_json``.

        They do unless the export includes completeness, which needs the list form.
        """
        return self.completeness is None

    @property
    def fixed_sources(self) -> list[tuple[str, int]]:
        """The leading columns as (name, index in the raw row)."""
        return list(zip(self.fixed, self._fixed_index, strict=True))

    @property
    def attribute_columns(self) -> list[Column]:
        """The attribute columns, in the plan's natural order (fixed, attributes, extras)."""
        return self.natural_columns[self.attr_offset : self.attr_offset + self.attr_count]

    def column_named(self, key: str) -> Column:
        """The fixed or included column of that key (never an attribute or constant column)."""
        return next(c for c in self.natural_columns if c.key == key and c.alias is None and c.value is None)

    def _permute(self, row: list[Any]) -> list[Any]:
        """A row (or column list) in natural order, put in file order."""
        return row if self.permutation is None else [row[i] for i in self.permutation]

    def cell_sources(self) -> list[tuple[Column, str, tuple[str, ...]]]:
        """For each attribute column: (column, alias, cells keys to try, most specific first).

        A resolved column tries its ranked scopes then the global cell; a column of an unscoped export
        reads exactly one cell. Used by engines that read ``cells_json`` directly.
        """
        sources: list[tuple[Column, str, tuple[str, ...]]] = []
        for i, column in enumerate(self.attribute_columns):
            assert column.alias is not None
            if self._resolved:  # one slot per column
                sources.append((column, column.alias, self._slots[i].ranked_cells))
            else:
                sources.append((column, column.alias, (scope_key(column.scope) or GLOBAL_CELL,)))
        return sources

    @property
    def headers(self) -> list[str]:
        """Column headers in file order."""
        return [c.header for c in self.columns]

    def _cells_lines(self, constants: dict[str, Any]) -> list[str]:
        """The generated lines that read each column's cell (cells form): a few dictionary look-ups per
        column, most specific scope first."""
        lines: list[str] = []
        for i, (_column, alias, keys) in enumerate(self.cell_sources()):
            constants[f"A{i}"] = alias
            lines += [f"        c{i} = None", f"        x = v.get(A{i})", "        if x:"]
            for j, key in enumerate(keys):
                constants[f"K{i}_{j}"] = key
                indent = "            " if j == 0 else "            if c{i} is None:\n                "
                lines.append(indent.replace("{i}", str(i)) + f"c{i} = x.get(K{i}_{j})")
        return lines

    def _label_lines(self, constants: dict[str, Any]) -> list[str]:
        """The generated lines that write an option's label instead of its code (``valueLabels``)."""
        lines: list[str] = []
        for i, column in enumerate(self.attribute_columns):
            if column.labels:
                constants[f"L{i}"] = column.labels
                if column.kind == Kind.LIST:
                    lines += [f"        if c{i}:", f"            c{i} = [L{i}.get(o, o) for o in c{i}]"]
                else:
                    lines += [f"        if c{i} is not None:", f"            c{i} = L{i}.get(c{i}, c{i})"]
        return lines

    def _default_lines(self, constants: dict[str, Any]) -> list[str]:
        """The generated lines that put a column's default where the record has no value."""
        lines: list[str] = []
        for i, column in enumerate(self.attribute_columns):
            if column.default is not None:
                constants[f"DEF{i}"] = column.default
                lines += [f"        if c{i} is None:", f"            c{i} = DEF{i}"]
        return lines

    def _compile(self, text: TextForm | None) -> Any:
        """Generate the flattening loop for a resolved (dimensionScope) export, one branch per attribute.

        The hot path of every scoped export: specialising the loop on the plan removes the per-column
        indirection of a generic loop (about twice as fast). Each attribute keeps the value of the best
        ranked scope it holds; ranks come from the plan (scope_candidates order), never from the record.
        """
        form = text or DEFAULT_TEXT
        constants: dict[str, Any] = {
            "_signature": _signature,
            "join_list": join_list if form.list_separator == LIST_SEPARATOR else form.join,
            "number_text": number_text if form.decimal_separator == "." else form.number,
            "date_text": form.date,
        }
        lines = [
            "def flatten(rows, categories, loads, empty):",
            "    out = []",
            "    append = out.append",
            "    for raw in rows:",
            f"        v = loads(raw[{RAW_VALUES}])",
        ]
        if self.uses_cells:
            lines += self._cells_lines(constants)
        for i, slot in enumerate(self._slots if not self.uses_cells else ()):
            ranks = {sig: rank for sig, (_index, rank) in slot.targets.items()}
            glob = slot.global_target[1] if slot.global_target is not None else 99
            constants[f"T{i}"] = ranks
            constants[f"A{i}"] = slot.alias
            lines += [f"        c{i} = None", f"        x = v.get(A{i})", "        if x:"]
            if not slot.dims:
                lines += [
                    "            for it in x:",
                    "                if not it['scope']:",
                    f"                    c{i} = it['value']",
                    "                    break",
                ]
                continue
            if len(slot.dims) == 1:
                constants[f"D{i}"] = slot.dims[0]
                signature = f"(s.get(D{i}) if len(s) == 1 else None)"
            else:
                constants[f"D{i}"] = slot.dims
                signature = f"_signature(s, D{i})"
            lines += [
                "            r = 99",
                "            for it in x:",
                "                s = it['scope']",
                f"                k = T{i}.get({signature}, 99) if s else {glob}",
                "                if k < r:",
                f"                    c{i} = it['value']",
                "                    r = k",
            ]
        lines += self._label_lines(constants)
        lines += self._default_lines(constants)
        fixed = [f"raw[{i}]" for i in self._fixed_index]
        if self.deleted_column:
            fixed.append("'false'" if text else "False")
        kinds = [c.kind for c in self.attribute_columns]
        cells = fixed + [_cell(f"c{i}", kind, text) for i, kind in enumerate(kinds)]
        for k, column in enumerate(self.constants):
            constants[f"V{k}"] = value_text(column.value, form) if text else column.value
            cells.append(f"V{k}")
        if self.categories_column:
            categories = "categories.get(raw[0], empty) if categories is not None else empty"
            cells.append(f"join_list({categories})" if text else categories)
        if self.completeness is not None:
            constants["completeness"] = self.completeness
            cells.append("completeness(raw[3], raw[4], v)")
        lines += [f"        append([{', '.join(self._permute(cells))}])", "    return out"]
        namespace: dict[str, Any] = dict(constants)
        exec(compile("\n".join(lines), "<skuport column plan>", "exec"), namespace)  # plan-generated code
        return namespace["flatten"]

    def flatten(
        self,
        rows: Iterable[Sequence[Any]],
        categories: Mapping[int, list[str]] | None = None,
        *,
        text: TextForm | None = None,
    ) -> list[list[Any]]:
        """Turn raw rows (pk, id, parent, schema, state, values_json, created, updated) into value lists.

        With a ``text`` form, as text formats write them: numbers as text (:meth:`TextForm.number`),
        booleans ``true``/``false``, lists joined (:meth:`TextForm.join`), dates in the form's format;
        None stays None.
        """
        if self._resolved or self.uses_cells:
            if text not in self._compiled:
                self._compiled[text] = self._compile(text)
            flat: list[list[Any]] = self._compiled[text](rows, categories, orjson.loads, [])
            return flat
        out = self._flatten_generic(rows, categories)
        for offset, column in enumerate(self.attribute_columns):
            if column.labels:
                _relabel(out, self.attr_offset + offset, column)
        if self.permutation is not None:
            out = [self._permute(row) for row in out]
        return _as_text(out, self.columns, text) if text else out

    @functools.cached_property
    def _row_slots(self) -> list[_RowSlot]:
        """The slots for :meth:`_flatten_generic`, their targets offset to positions in the output row."""

        def place(target: tuple[int, int] | None) -> tuple[int, int]:
            """A target moved past the row's leading columns (:data:`_NOWHERE` for none)."""
            return _NOWHERE if target is None else (target[0] + self.attr_offset, target[1])

        return [
            (
                s.alias,
                _lone_dimension(s.dims),
                s.dims,
                {sig: place(t) for sig, t in s.targets.items()},
                place(s.global_target),
            )
            for s in self._slots
        ]

    def _flatten_generic(
        self, rows: Iterable[Sequence[Any]], categories: Mapping[int, list[str]] | None
    ) -> list[list[Any]]:
        """Flatten raw rows in list form (``values_json``) by the plan's slots, without generated code.

        Only unscoped exports come here: they have neither defaults nor constants (``columns`` resolves)."""
        assert not self.constants
        loads = orjson.loads
        fixed_index = self._fixed_index
        slots = self._row_slots
        deleted = [False] if self.deleted_column else []
        blank: list[Any] = deleted + [None] * self.attr_count
        size = len(fixed_index) + len(blank)
        empty: list[str] = []
        out: list[list[Any]] = []
        append = out.append
        for raw in rows:
            values = loads(raw[RAW_VALUES])
            row = [raw[i] for i in fixed_index]
            row += blank  # the deleted flag if the plan has one, then the attribute cells, still empty
            ranks = [99] * size
            for alias, dim, dims, targets, global_target in slots:
                items = values.get(alias)
                if not items:
                    continue
                for item in items:
                    scope = item["scope"]
                    if not scope:
                        target = global_target
                    elif dim is not None:
                        target = targets.get(scope.get(dim), _NOWHERE) if len(scope) == 1 else _NOWHERE
                    else:
                        target = targets.get(_signature(scope, dims), _NOWHERE)
                    index, rank = target
                    if rank < ranks[index]:
                        row[index] = item["value"]
                        ranks[index] = rank
            if categories is not None:
                row.append(categories.get(raw[0], empty))
            if self.completeness is not None:
                row.append(self.completeness(raw[3], raw[4], values))
            append(row)
        return out

    def tombstone_row(
        self, *, record_id: str, parent_id: str | None, schema_id: str, text: TextForm | None = None
    ) -> list[Any]:
        """A row announcing a deleted record: its ids, the deleted flag, the constants, every other cell
        empty (in the ``text`` form of a text format)."""
        known = {"id": record_id, "parentId": parent_id, "schemaId": schema_id}
        row: list[Any] = [known.get(name) for name in self.fixed]
        if self.deleted_column:
            row.append("true" if text else True)
        row += [None] * self.attr_count
        row += [value_text(c.value, text) if text else c.value for c in self.constants]
        if self.categories_column:
            row.append(None)
        if self.completeness is not None:
            row.append(None)
        return self._permute(row)


def _relabel(rows: list[list[Any]], index: int, column: Column) -> None:
    """Option codes at ``index`` of each row replaced by their labels (the generic loop's ``valueLabels``)."""
    labels = column.labels or {}
    for row in rows:
        value = row[index]
        if isinstance(value, list):
            row[index] = [labels.get(o, o) for o in value]
        elif value is not None:
            row[index] = labels.get(value, value)


def _parse(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("&")) if key else {}


def _lone_dimension(dims: tuple[str, ...]) -> str | None:
    """The one dimension a column's scope names (None: several; '': none, so no scoped item has a column)."""
    if len(dims) > 1:
        return None
    return dims[0] if dims else ""


def _signature(scope: Mapping[str, str], dims: tuple[str, ...]) -> Any:
    """A hashable form of a scope within an attribute's dimensions (None when it has other keys)."""
    if len(dims) == 1:
        return scope.get(dims[0]) if len(scope) == 1 else None
    if any(k not in dims for k in scope):
        return None
    return tuple(scope.get(d) for d in dims)


def _cell(name: str, kind: Kind, text: TextForm | None) -> str:
    """Expression of a generated cell, converted to text form when asked."""
    if text and kind == Kind.NUMBER:
        return f"number_text({name})"
    if text and kind == Kind.BOOLEAN:
        return f"(None if {name} is None else 'true' if {name} else 'false')"
    if text and kind == Kind.LIST:
        return f"join_list({name})"
    if text and kind == Kind.DATE and text.date_format:
        return f"date_text({name})"
    return name


def _as_text(rows: list[list[Any]], columns: Sequence[Column], form: TextForm) -> list[list[Any]]:
    booleans = [i for i, c in enumerate(columns) if c.kind == Kind.BOOLEAN]
    lists = [i for i, c in enumerate(columns) if c.kind == Kind.LIST]
    numbers = [i for i, c in enumerate(columns) if c.kind == Kind.NUMBER]
    dates = [i for i, c in enumerate(columns) if c.kind == Kind.DATE] if form.date_format else []
    for row in rows:
        for i in numbers:
            row[i] = form.number(row[i])
        for i in dates:
            row[i] = form.date(row[i])
        for i in booleans:
            value = row[i]
            if value is not None and not isinstance(value, str):
                row[i] = "true" if value else "false"
        for i in lists:
            row[i] = form.join(row[i])
    return rows
