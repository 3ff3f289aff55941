"""Scope keys: the one text form of a scope, used by storage, filters and export column names alike."""

from __future__ import annotations

from collections.abc import Mapping


def scope_key(scope: Mapping[str, str]) -> str:
    """Canonical text of a scope: ``dim-a=seg-x&dim-b=seg-y`` sorted by dimension; '' is global."""
    return "&".join(f"{k}={scope[k]}" for k in sorted(scope))


def parse_scope_key(key: str) -> dict[str, str]:
    """Inverse of :func:`scope_key`."""
    if not key:
        return {}
    return dict(part.split("=", 1) for part in key.split("&"))
