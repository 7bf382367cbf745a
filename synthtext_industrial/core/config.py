"""Building blocks shared by every recipe section: a strict base model, range types, recipe paths.

Each stage (text, backgrounds, marking, effects, ...) defines its own pydantic models
on top of these, so a recipe section and the code that uses it live together. Errors
raised here become recipe errors (`RecipeError`) that name the field path.
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

class RecipeError(ValueError):
    """A mistake in a recipe, worded for the person who wrote it."""


class StrictModel(BaseModel):
    """Base for recipe sections: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _pair_parser(lo: float | None, hi: float | None, whole: bool):
    """Accept one number or a [min, max] list; anything else is refused saying which form is allowed."""
    kind = "whole numbers" if whole else "numbers"

    def is_number(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        return not whole or isinstance(v, int) or (np.isfinite(v) and float(v).is_integer())

    def parse(value: Any) -> Any:
        if is_number(value):
            return (value, value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value):
            return tuple(value)
        raise ValueError(f"must be a pair [min, max] of {kind} {_describe(lo, hi)}, or one number for both "
                         f"(e.g. {_example(lo, hi, whole)}); got {repr(value)[:60]}")

    return parse


def _example(lo: float | None, hi: float | None, whole: bool) -> str:
    a = lo if lo is not None else 0
    b = hi if hi is not None else a + 10
    if whole:
        return f"[{int(a)}, {int(b)}]"
    return f"[{a:g}, {b:g}]"


def _describe(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return "any number"


def _range_checker(lo: float | None, hi: float | None):
    def check(pair: tuple) -> tuple:
        a, b = pair
        for v in pair:
            if not np.isfinite(v):
                raise ValueError(f"{v} is not a finite number; values must be {_describe(lo, hi)}")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ValueError(f"{v} is out of range; values must be {_describe(lo, hi)}")
        if a > b:
            raise ValueError(f"min {a} is greater than max {b}; write [min, max]")
        return pair

    return check


def FloatRange(lo: float | None = None, hi: float | None = None):
    """A `[min, max]` pair of floats (a single number means min == max)."""
    return Annotated[tuple[float, float], BeforeValidator(_pair_parser(lo, hi, False)),
                     AfterValidator(_range_checker(lo, hi))]


def IntRange(lo: int | None = None, hi: int | None = None):
    """A `[min, max]` pair of integers, both ends inclusive (a single number means min == max)."""
    return Annotated[tuple[int, int], BeforeValidator(_pair_parser(lo, hi, True)),
                     AfterValidator(_range_checker(lo, hi))]


def resolve_path(value: str, context: dict[str, Any] | None) -> "Path":
    """Resolve a path written in a recipe: relative to the recipe's folder, inside the allowed roots.

    The validation context (passed by `load_recipe`) holds `base_dir` (the recipe's
    folder) and `allowed_roots` (folders a recipe may read from). Raises ValueError
    with a readable message when the path escapes them.
    """
    from pathlib import Path

    context = context or {}
    base_dir = Path(context.get("base_dir", "."))
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    path = path.resolve()
    roots = [Path(r).resolve() for r in context.get("allowed_roots", [])]
    if roots and not any(path == r or r in path.parents for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise ValueError(f"path {value!r} resolves to {path}, outside the allowed folders ({allowed}); "
                         f"pass --assets-root to allow another folder")
    return path
