"""Print the field reference of the recipe schema as Markdown (pasted into recipes/README.md).

    .venv/bin/python tools/recipe_reference.py > /tmp/ref.md

tests/test_docs.py checks that recipes/README.md names every field this prints.
"""
from __future__ import annotations

import typing

from pydantic import BaseModel

from synthtext_industrial.recipe import Recipe, _unwrap


def _models(annotation) -> list[type[BaseModel]]:
    found = []
    for t in _unwrap(annotation):
        origin = typing.get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            found.append(t)
        elif origin in (list, tuple, dict):
            args = typing.get_args(t)
            inner = args[-1] if origin is dict else args[0]
            found += _models(inner)
    return found


def _default(field) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return ""
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], BaseModel):
        return ", ".join(v.model_dump_json(exclude_defaults=True) for v in value)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, dict):
        value = {k: round(v, 3) if isinstance(v, float) else v for k, v in value.items()}
    return "" if value is None or repr(value) == "PydanticUndefined" else f"`{value}`"


def field_rows(model: type[BaseModel], prefix: str, seen: set) -> list[tuple[str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        subs = [m for m in _models(field.annotation) if m not in seen or m is model]
        rows.append((path, _default(field), (field.description or "").replace("|", "\\|")))
        for sub in subs:
            if sub is model:
                continue
            kind = sub.model_fields.get("kind")
            label = path
            if kind is not None and typing.get_args(kind.annotation):
                label = f"{path}[kind={typing.get_args(kind.annotation)[0]}]"
            elif "bitmap" in sub.model_fields:
                label = f"{path}[bitmap]"
            rows += field_rows(sub, label, seen | {sub})
    return rows


def main() -> None:
    print("| field | default | meaning |\n|---|---|---|")
    for path, default, meaning in field_rows(Recipe, "", {Recipe}):
        print(f"| `{path}` | {default} | {meaning} |")


if __name__ == "__main__":
    main()
