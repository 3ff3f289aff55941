"""HTML forms of the console, derived from the API's own models, and their errors beside each field.

A destination's form comes from its config model (the same pydantic model the API validates with), so a
new destination or option needs no console change. A submitted form becomes the API's request body and
goes through the same schema and service; their errors (``details[].field``, e.g.
``destinationConfig.bucket``) are shown beside the input of that name.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from skuport.console.web import Form
from skuport.errors import SkuportError
from skuport.exporting.destinations import destination_class, secret_fields, secret_urls
from skuport.exporting.destinations.base import MASK

MULTILINE = frozenset({"privateKey", "connectionString"})


@dataclass(frozen=True)
class Input:
    """One input of a form: its name (the API field path), label, kind and choices."""

    name: str
    label: str
    kind: Literal["text", "password", "number", "checkbox", "select", "textarea", "headers"]
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    help: str = ""
    secret: bool = False
    shown: bool = False
    """A secret shown with only its credentials masked (a URL): the form shows it as the API does."""


def _label(alias: str) -> str:
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in alias).strip()
    return words[:1].upper() + words[1:]


def _kind(annotation: Any, alias: str, secret: bool) -> tuple[str, tuple[str, ...]]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in args if a is not type(None))
        args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return "select", tuple(str(a) for a in args)
    if annotation is bool:
        return "checkbox", ()
    if annotation in (int, float):
        return "number", ()
    if typing.get_origin(annotation) is dict:
        return "headers", ()
    if alias in MULTILINE:
        return "textarea", ()
    return ("password" if secret else "text"), ()


def destination_inputs(destination_type: str) -> list[Input]:
    """The inputs of a destination's config, from its config model."""
    cls = destination_class(destination_type)
    secrets = secret_fields(destination_type)
    urls = secret_urls(destination_type)
    model: type[BaseModel] = cls.config_model
    inputs = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        secret = alias in secrets or f"{alias}.*" in secrets
        kind, choices = _kind(info.annotation, alias, secret)
        default = None if info.is_required() or info.default_factory is not None else info.default
        inputs.append(
            Input(
                name=f"destinationConfig.{alias}",
                label=_label(alias),
                kind=kind,  # type: ignore[arg-type]
                required=info.is_required(),
                choices=choices,
                default=default,
                help=info.description or "",
                secret=secret,
                shown=alias in urls,
            )
        )
    return inputs


@dataclass
class FormState:
    """What a form shows: its values by input name, and the errors beside them."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str | None = None

    def add(self, name: str, message: str) -> None:
        """An error beside the input ``name`` (or above the form when no input has that name)."""
        self.errors.setdefault(name, []).append(message)

    def absorb(self, exc: SkuportError | ValidationError, known: AbstractSet[str]) -> None:
        """The errors of a refused request, each beside its field (the rest above the form)."""
        if isinstance(exc, ValidationError):
            for err in exc.errors():
                self.add(_field_name([str(p) for p in err["loc"]], known), err["msg"])
            self.message = "Please correct the fields marked below."
            return
        self.message = exc.message
        for detail in exc.details:
            if isinstance(detail, dict) and detail.get("field"):
                where = str(detail["field"])
                message = str(detail.get("message") or exc.message)
                if "[" in where:  # columns[3]: beside the columns input, naming the entry
                    message, where = f"{where}: {message}", where.split("[", 1)[0]
                self.add(_field_name(where.split("."), known), message)


def _field_name(path: list[str], known: AbstractSet[str]) -> str:
    """The input a field path belongs to: the longest known prefix (``filters.price.gte`` → filters)."""
    for end in range(len(path), 0, -1):
        name = ".".join(path[:end])
        if name in known:
            return name
    return ".".join(path)


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # refused by the model, with its own message beside the field


def _headers(text: str, state: FormState, name: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            state.add(name, f"line {number}: write each header as 'Name: value'")
            continue
        headers[key.strip()] = value.strip()
    return headers


def destination_config(
    form: Form, destination_type: str, state: FormState, *, stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The destination config a form carries; on an edit (``stored``: the job's masked config), an empty
    secret keeps the stored one, and a secret that was never set stays unset."""
    config: dict[str, Any] = {}
    for item in destination_inputs(destination_type):
        alias = item.name.split(".", 1)[1]
        raw = form.get(item.name)
        if item.kind == "checkbox":
            config[alias] = raw is not None
            continue
        text = (raw or "").strip() if item.kind != "textarea" else (raw or "")
        if item.kind == "headers":
            config[alias] = _headers(text, state, item.name)
        elif not text.strip():
            if item.secret and stored is not None and alias in stored:
                config[alias] = MASK
        else:
            config[alias] = _number(text) if item.kind == "number" else text
    return config


def json_field(
    form: Form, name: str, state: FormState, *, shape: type = dict, example: str = '{"brand": "Ma Marque"}'
) -> Any:
    """A JSON object (or list: ``shape``) typed into a textarea (None when empty)."""
    text = form.text(name)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        state.add(name, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        return None
    if not isinstance(value, shape):
        state.add(name, f"must be a JSON {'object' if shape is dict else 'list'}, e.g. {example}")
        return None
    return value


def json_text(value: Any) -> str:
    """A JSON value as its textarea shows it ('' for none)."""
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


def scope_value(chosen: str | list[str] | None) -> str:
    """A dimension's segment as its select holds it: a list of segments comma-joined (one with a comma
    after it, so a list of one stays a list)."""
    if isinstance(chosen, list):
        return ",".join(chosen) + ("," if len(chosen) == 1 else "")
    return chosen or ""


def list_field(form: Form, name: str) -> list[str] | None:
    """A comma-separated list (None when empty)."""
    items = [part.strip() for part in form.text(name).split(",") if part.strip()]
    return items or None


def headers_text(headers: dict[str, str] | None) -> str:
    """Headers as the textarea shows them."""
    return "\n".join(f"{key}: {value}" for key, value in (headers or {}).items())


SELECTION_INPUTS = frozenset(
    {
        "format",
        "compress",
        "schemaId",
        "fields",
        "filters",
        "includeVariants",
        "dryData",
        "includes",
        "headerLanguage",
        "lifecycleStateIds",
        "dimensionScope",
        "valueLabels",
        "columns",
        "csv",
    }
)
"""The inputs of the selection partial (``_selection.html``), by the API's field names."""


def selection_context(session: Session) -> dict[str, Any]:
    """What the selection partial offers: schemas, scopes, header languages, states, includes."""
    from skuport.catalog import service as catalog
    from skuport.exporting.selection import Include

    schemas, dimensions = list(catalog.list_schemas(session)), list(catalog.list_dimensions(session))
    states = catalog.list_states(session)
    return {
        "dimensions": dimensions,
        "states": states,
        "includes": [i.value for i in Include],
        "schema_choices": [("", "all schemas")] + [(schema.id, schema.name) for schema in schemas],
        "scope_choices": {
            dim.id: [("", "every scope")]
            + [(seg.id, seg.name) for seg in dim.segments]
            + [(scope_value([seg.id for seg in dim.segments]), "each, a column per segment")]
            for dim in dimensions
        },
        "header_choices": [("", "attribute codes")]
        + [(seg.id, f"{seg.name} ({dim.name})") for dim in dimensions for seg in dim.segments],
    }


def selection_body(form: Form, dimensions: list[Any], state: FormState) -> dict[str, Any]:
    """The selection a submitted form carries, in the API's field names (format and compress included)."""
    scope = {dim.id: form.text(f"dimensionScope.{dim.id}") for dim in dimensions}
    chosen: dict[str, str | list[str]] = {
        dim: [s for s in seg.split(",") if s] if "," in seg else seg for dim, seg in scope.items() if seg
    }
    for name in ("compress", "includeVariants", "dryData", "globalOnly", "valueLabels"):
        state.values[name] = name in form
    for name in ("includes", "lifecycleStateIds"):
        state.values[name] = form.getlist(name)
    return {
        "format": form.text("format") or "csv",
        "compress": "compress" in form,
        "schemaId": form.text("schemaId") or None,
        "fields": list_field(form, "fields"),
        "filters": json_field(form, "filters", state),
        "columns": json_field(
            form, "columns", state, shape=list, example='[{"header": "Title", "attribute": "product-name"}]'
        ),
        "csv": json_field(form, "csv", state, example='{"delimiter": ";", "decimalSeparator": ","}'),
        # {}: global values only, one column per attribute; None: one column per attribute and scope
        "dimensionScope": chosen or ({} if "globalOnly" in form else None),
        "headerLanguage": form.text("headerLanguage") or None,
        "includeVariants": "includeVariants" in form,
        "dryData": "dryData" in form,
        "valueLabels": "valueLabels" in form,
        "includes": form.getlist("includes"),
        "lifecycleStateIds": form.getlist("lifecycleStateIds"),
    }
