"""A recipe: the YAML file that says what to render, validated into a `Recipe`.

`load_recipe` reads with `yaml.safe_load` only, validates every section against
its schema and checks, before anything is rendered, that every font can draw
every character its text blocks can produce. Every problem becomes one
`RecipeError` that names the file, the field and what is allowed.
"""
from __future__ import annotations

import datetime
import difflib
import re
import hashlib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Discriminator, Field, PrivateAttr, Tag, ValidationError

from .stages import text as textgen
from .core.assets import bundled_dir, bundled_roots
from .stages.backgrounds import BackgroundConfig
from .stages.dotmatrix import DotMatrixSource
from .stages.effects import EffectsConfig
from .stages.framing import CropConfig
from .stages.context import ContextConfig
from .stages.display import DisplayConfig
from .fit import fit_problems
from .stages.fonts import FontFace, TrueTypeSource, axis_problem, describe_missing, lookalikes_to_avoid
from .stages.layout import CanvasConfig, LayoutConfig, TypographyConfig
from .stages.marking import ColourConfig, InkjetStyle, MarkingStyle
from .stages.surface import SurfaceConfig
from .core.config import RecipeError, StrictModel


def _font_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "bitmap" if "bitmap" in value else "truetype"
    return "bitmap" if isinstance(value, DotMatrixSource) else "truetype"


FontEntry = Annotated[
    Union[Annotated[TrueTypeSource, Tag("truetype")], Annotated[DotMatrixSource, Tag("bitmap")]],
    Discriminator(_font_kind),
]


def _default_fonts() -> list:
    return [TrueTypeSource(category="ocr"), TrueTypeSource(category="monospace"),
            TrueTypeSource(category="industrial-sans")]


class Recipe(StrictModel):
    """Everything one dataset is rendered from."""

    version: Literal[1] = Field(1, description="recipe format version")
    name: str = Field("", description="a short name for this recipe")
    description: str = Field("", description="free text")
    canvas: CanvasConfig = Field(default_factory=CanvasConfig)
    text: textgen.TextConfig = Field(default_factory=textgen.TextConfig)
    fonts: list[FontEntry] = Field(default_factory=_default_fonts, min_length=1,
                                   description="fonts and dot-matrix tables, drawn by weight per block")
    typography: TypographyConfig = Field(default_factory=TypographyConfig)
    layout: LayoutConfig = Field(default_factory=LayoutConfig)
    surface: SurfaceConfig = Field(default_factory=SurfaceConfig)
    marking: list[MarkingStyle] = Field(default_factory=lambda: [InkjetStyle()], min_length=1,
                                        description="marking styles, drawn by weight per block")
    colour: ColourConfig = Field(default_factory=ColourConfig)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    crops: CropConfig = Field(default_factory=CropConfig)
    effects: EffectsConfig = Field(default_factory=EffectsConfig)

    _source: str = PrivateAttr("<memory>")
    _text: str = PrivateAttr("")
    _font_choices: list = PrivateAttr(default_factory=list)

    @property
    def source(self) -> str:
        """Where the recipe came from (a path, or <memory>)."""
        return self._source

    @property
    def raw_text(self) -> str:
        """The recipe file verbatim."""
        return self._text

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._text.encode("utf-8")).hexdigest()

    def font_choices(self, template: int) -> list[tuple[FontFace | DotMatrixSource, float]]:
        """The fonts that can draw text block template `template`, with their weights."""
        return [(font, weight) for font, weight, _avoid in self._font_choices[template]]

    def font_avoid(self, template: int) -> list[frozenset[str]]:
        """Per entry of `font_choices(template)`: the characters its classes must not draw in that font."""
        return [avoid for _font, _weight, avoid in self._font_choices[template]]


# ----------------------------------------------------------------------------- errors

def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind Annotated/Optional/Union annotations."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model whose keys are allowed at `loc`, walking the schema (best effort)."""
    candidates: list[Any] = [Recipe]
    for part in loc:
        following = []
        for cand in candidates:
            origin = typing.get_origin(cand)
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                if isinstance(part, str) and part in cand.model_fields:
                    following += _unwrap(cand.model_fields[part].annotation)
                elif isinstance(part, str):  # a union tag such as 'inkjet' or 'truetype'
                    following.append(cand)
            elif origin in (list, tuple) and isinstance(part, int):
                following += _unwrap(typing.get_args(cand)[0])
            elif origin is dict:
                following += _unwrap(typing.get_args(cand)[1])
        candidates = following
        if part not in ("truetype", "bitmap") and isinstance(part, str):
            tagged = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)
                      and "kind" in c.model_fields and typing.get_args(c.model_fields["kind"].annotation) == (part,)]
            if tagged:
                candidates = tagged
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if len(models) == 1 else None


def _field_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("truetype", "bitmap") or (isinstance(part, str) and part.startswith("function-")):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def _describe_error(err: dict) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]")))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_loc, key = loc[:-1], loc[-1]
        model = _model_at(tuple(p for p in parent_loc if p not in ("truetype", "bitmap")))
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = _field_path(parent_loc)
        allowed_text = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"field `{where}`: unknown key {key!r}{hint}{allowed_text}"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    form = _allowed_form(kind, loc)
    if form:
        message = form
    if kind == "missing":
        message = "is required"
    elif kind == "literal_error" and "expected" in err.get("ctx", {}):
        message = f"got {err.get('input')!r}; allowed: {err['ctx']['expected']}"
    elif kind not in ("value_error", "assertion_error") and "input" in err:
        shown = repr(err["input"])
        message = f"{message} (got {shown[:80]})"
    return f"field `{_field_path(loc)}`: {message}"


_FORMS = {  # pydantic's type errors, said as the form a value must take
    "date": "must be a calendar date written YYYY-MM-DD (e.g. 2026-01-31)",
    "int": "must be a whole number",
    "float": "must be a number",
    "bool": "must be true or false",
    "string": "must be text (quote it in YAML if it looks like a number or a date)",
    "list": "must be a list, written [a, b] or as YAML lines starting with '- '",
    "tuple": "must be a list, written [a, b]",
    "literal": "",
}


def _allowed_form(kind: str, loc: tuple) -> str:
    """What a value of the wrong type should look like, or '' to keep pydantic's words."""
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        model = _model_at(tuple(p for p in loc if p not in ("truetype", "bitmap")))
        keys = f" with keys from: {', '.join(model.model_fields)}" if model else " (key: value)"
        return f"must be a mapping{keys}"
    if kind == "union_tag_invalid" or kind.startswith("datetime"):
        return ""
    prefix = kind.split("_", 1)[0]
    if prefix in _FORMS and (kind.endswith(("_type", "_parsing")) or kind.startswith("date_")
                             or kind == "int_from_float"):
        return _FORMS[prefix]
    return ""


def _shorten(line: str, limit: int = 2000) -> str:
    return line if len(line) <= limit else line[:limit] + " ..."


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [_shorten(_describe_error(e)) for e in exc.errors(include_url=False)]
    unique = list(dict.fromkeys(lines))
    head = f"{source}: invalid recipe" + (f" ({len(unique)} problems)" if len(unique) > 1 else "")
    return head + "\n  " + "\n  ".join(unique[:12]) + ("\n  ..." if len(unique) > 12 else "")


# ----------------------------------------------------------------------------- loading

MAX_VALUES = 100_000  # a real recipe holds a few hundred
MAX_DEPTH = 50


def _check_size(data: Any, source: str) -> None:
    """Refuse documents that anchors and aliases blow up (a few lines can expand to billions of values).

    Counts values with aliases expanded, stopping at the limit, so the check itself stays cheap.
    """
    count, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise RecipeError(f"{source}: the recipe expands to more than {MAX_VALUES} values "
                              f"(YAML anchors and aliases nested in each other?); write it out plainly")
        if depth > MAX_DEPTH:
            raise RecipeError(f"{source}: the recipe is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack += [(v, depth + 1) for kv in node.items() for v in kv]
        elif isinstance(node, (list, tuple)):
            stack += [(v, depth + 1) for v in node]


def _compile_fonts(recipe: Recipe, source: str) -> None:
    """Match fonts to text blocks by glyph coverage, before any rendering."""
    problems, choices = [], []
    everything = textgen.charset(recipe.text)

    def avoid(groups) -> frozenset[str]:
        return lookalikes_to_avoid(tuple(groups), everything) if recipe.text.lookalikes == "avoid" else frozenset()

    for t, _template in enumerate(recipe.text.blocks):
        chars = textgen.block_charset(recipe.text, t)
        eligible = []
        for i, entry in enumerate(recipe.fonts):
            if isinstance(entry, DotMatrixSource):
                missing = "".join(sorted(chars - entry.coverage() - {" "}))
                if missing:
                    problems.append(f"fonts[{i}] (bitmap {entry.bitmap}) cannot draw {missing!r} "
                                    f"used by text.blocks[{t}]")
                else:
                    eligible.append((entry, entry.weight, avoid(entry.lookalikes)))
                continue
            faces = entry.faces()
            bad_axes = [axis_problem(face) for face in faces if axis_problem(face)]
            if bad_axes:
                problems += [f"fonts[{i}].axes: {why}" for why in bad_axes]
                continue
            for face in faces:
                reasons = face.missing_reasons(chars)
                if not reasons:
                    eligible.append((face, entry.weight / len(faces), avoid(face.lookalikes)))
                elif entry.missing_glyphs == "error":
                    missing = "".join(reasons)
                    detail = f": {describe_missing(reasons)}" if face.check_drawing else ""
                    problems.append(f"fonts[{i}] ({face.label}) cannot draw {missing!r} used by text.blocks[{t}]"
                                    f"{detail} (set `missing_glyphs: skip` on that font to use other fonts for "
                                    f"such text)")
        if not eligible and not problems:
            problems.append(f"no font can draw every character text.blocks[{t}] can produce "
                            f"({''.join(sorted(chars))!r})")
        choices.append(eligible)
    if problems:
        unique = list(dict.fromkeys(problems))
        what = "fonts lack glyphs" if any("cannot draw" in p for p in unique) else "fonts cannot be used"
        raise RecipeError(f"{source}: {what}\n  " + "\n  ".join(unique[:12]))
    recipe._font_choices = choices


def recipe_from_dict(data: Any, source: str = "<memory>", base_dir: str | Path = ".",
                     assets_roots: list[str | Path] | None = None, text: str = "") -> Recipe:
    """Validate an already-parsed recipe (as `yaml.safe_load` returns it)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe must be a mapping of sections (canvas, text, fonts, ...); "
                          f"got {type(data).__name__}")
    _check_size(data, source)
    base = Path(base_dir).resolve()
    roots = [base] + [Path(r).resolve() for r in (assets_roots or [])] + bundled_roots()
    try:
        recipe = Recipe.model_validate(data, context={"base_dir": base, "allowed_roots": roots})
    except ValidationError as exc:
        raise RecipeError(format_validation_error(source, exc)) from None
    recipe._source, recipe._text = source, text
    _compile_fonts(recipe, source)
    misfits = fit_problems(recipe)
    if misfits:
        raise RecipeError(f"{source}: text does not fit the page\n  " + "\n  ".join(misfits[:12]))
    return recipe


def resolve_recipe_path(name: str | Path) -> Path:
    """A recipe path, or the name of a bundled recipe (`default`, `inkjet-dotmatrix`, ...)."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = bundled_dir("recipes") / (path.name if path.suffix else f"{path.name}.yaml")
    if not path.parent.parts and bundled.is_file():
        return bundled
    available = ", ".join(p.stem for p in sorted(bundled_dir("recipes").glob("*.yaml")))
    raise RecipeError(f"{name}: no such recipe file (bundled recipes: {available})")


_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


def _read_yaml(text: str):
    """yaml.safe_load, except that a date that is not in the calendar (2025-02-30) is read as a string.

    PyYAML raises a bare ValueError for such a date while reading, with no field; read as text, the schema
    refuses it with the field's name like any other bad value.
    """
    try:
        return yaml.safe_load(text)
    except ValueError:
        quoted = _quote_impossible_dates(text)
        if quoted == text:
            raise
        return yaml.safe_load(quoted)


def _quote_impossible_dates(text: str) -> str:
    """The text with every plain scalar that looks like a date but is not one put in quotes."""
    spans = []
    for token in yaml.scan(text):
        if isinstance(token, yaml.ScalarToken) and token.plain and _DATE.fullmatch(token.value):
            try:
                datetime.date(*(int(part) for part in token.value.split("-")))
            except ValueError:
                spans.append((token.start_mark.index, token.end_mark.index))
    for start, end in reversed(spans):
        text = f"{text[:start]}'{text[start:end]}'{text[end:]}"
    return text


def load_recipe(path: str | Path, assets_roots: list[str | Path] | None = None) -> Recipe:
    """Read and validate a recipe file; raises RecipeError naming the file, field and what is allowed."""
    path = resolve_recipe_path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{source}: cannot read the recipe: {exc}") from None
    try:
        data = _read_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise RecipeError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise RecipeError(f"{source}: the recipe is nested too deeply to read") from None
    return recipe_from_dict(data, source, path.parent, assets_roots, text)
