"""Text generators: the product codes printed on each sample, and the `text` section of a recipe.

Industrial codes (lot numbers, dates, serials, GTINs) follow rigid layouts, so a
recipe describes them as templates made of literal text, character classes and
named fields rather than free text. Everything a template can ever print is known
up front (`charset`, `block_charset`), so the renderer can check that a font has
every glyph before it renders anything. Field spans go into the ground truth.

Template syntax: literal text plus `{...}` placeholders (`{{` and `}}` are literal
braces). `{A}` A-Z, `{a}` a-z, `{9}` 0-9, `{X}` A-Z or 0-9, `{H}` 0-9A-F,
`{[AB0-5]}` one of the listed characters (`-` between two characters is a range,
`]` cannot be listed); `:N` or `:MIN-MAX` repeats a class (`{9:4}`, `{9:2-4}`).
`{name}` inserts a field (names have 2+ characters). A field used twice in one
block prints the same value both times.
"""
from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from ..core.config import StrictModel, resolve_path

CLASSES = {
    "A": string.ascii_uppercase,
    "a": string.ascii_lowercase,
    "9": string.digits,
    "X": string.ascii_uppercase + string.digits,
    "H": string.digits + "ABCDEF",
}
CLASS_HELP = ("classes {A} A-Z, {a} a-z, {9} 0-9, {X} A-Z or 0-9, {H} 0-9A-F, {[...]} one of the listed "
              "characters ({[A-F0-5]} for ranges), each optionally repeated with :N or :MIN-MAX (e.g. {9:4}, "
              "{9:2-4}); write {{ and }} for literal braces")
MAX_REPEAT = 100
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]+\Z")
REPEAT = re.compile(r"(\d+)(?:-(\d+))?\Z")
DIGITS = frozenset(string.digits)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
TITLE_MONTHS = tuple(month.title() for month in MONTHS)  # as packs set them beside "Best Before"
DATE_DIRECTIVES = {
    "Y": "year", "y": "2-digit year", "m": "month", "d": "day", "b": "month name (JAN..DEC)",
    "h": "month name (Jan..Dec)",
    "j": "day of year", "V": "ISO week", "G": "ISO year", "g": "2-digit ISO year", "u": "ISO weekday 1-7",
    "H": "hour", "M": "minute", "%": "a literal %",
}
MINUTES_PER_DAY = 24 * 60

# Parsed template tokens are plain tuples (fast to dispatch on and picklable):
# (LITERAL, text) | (CLASS, chars, min_count, max_count) | (FIELD, name)
LITERAL, CLASS, FIELD = 0, 1, 2


# ---------------------------------------------------------------- check digits

def _luhn(payload: str) -> str:
    total = 0
    for position, ch in enumerate(reversed(payload)):
        digit = ord(ch) - 48
        if position % 2 == 0:  # the rightmost payload digit is doubled
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str(-total % 10)


def _gs1(payload: str) -> str:
    total = sum((ord(ch) - 48) * (3 if position % 2 == 0 else 1) for position, ch in enumerate(reversed(payload)))
    return str(-total % 10)


def _mod11(payload: str) -> str:
    """ISBN-10 style: weights 2, 3, 4, ... from the right; a check value of 10 is written X."""
    total = sum((ord(ch) - 48) * (position + 2) for position, ch in enumerate(reversed(payload)))
    value = -total % 11
    return "X" if value == 10 else str(value)


CHECK_DIGITS = {"luhn": _luhn, "gs1": _gs1, "mod11": _mod11}


def check_digit(method: Literal["luhn", "gs1", "mod11"], payload: str) -> str:
    """The check character that `method` appends to a string of digits."""
    return CHECK_DIGITS[method](payload)


# ------------------------------------------------------------------- templates

@dataclass(frozen=True)
class _Template:
    tokens: tuple[tuple, ...]
    n_draws: int  # uniforms drawn per fill: fixed, so the rng stream stays aligned
    field_names: tuple[str, ...]
    charset: frozenset[str]  # what literals and classes can print (fields excluded)


def _char_set(spec: str, template: str) -> str:
    chars: set[str] = set()
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            first, last = spec[i], spec[i + 2]
            if ord(first) > ord(last):
                raise ValueError(f"template {template!r}: range {first}-{last} in [{spec}] is backwards")
            chars.update(chr(c) for c in range(ord(first), ord(last) + 1))
            i += 3
        else:
            chars.add(spec[i])
            i += 1
    if not chars:
        raise ValueError(f"template {template!r}: [] lists no characters")
    return "".join(sorted(chars))


def _placeholder(content: str, template: str) -> tuple:
    """One `{...}` placeholder (without its braces) as a token."""
    if content.startswith("["):
        close = content.index("]")  # the parser made sure there is one
        chars = _char_set(content[1:close], template)
        rest = content[close + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"template {template!r}: unexpected {rest!r} after ] in {{{content}}}")
        repeat = rest[1:] if rest else None
    else:
        head, colon, repeat = content.partition(":")
        repeat = repeat if colon else None
        if FIELD_NAME.match(head):
            if repeat is not None:
                raise ValueError(f"template {template!r}: field {{{head}}} takes no repeat count")
            return (FIELD, head)
        if head not in CLASSES:
            raise ValueError(f"template {template!r}: unknown placeholder {{{content}}}")
        chars = CLASSES[head]
    lo = hi = 1
    if repeat is not None:
        match = REPEAT.match(repeat)
        if not match:
            raise ValueError(f"template {template!r}: bad repeat {repeat!r} in {{{content}}}; write :N or :MIN-MAX")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if lo > hi or hi > MAX_REPEAT:
            raise ValueError(f"template {template!r}: repeat {repeat!r} in {{{content}}} must be MIN-MAX "
                             f"with MIN <= MAX <= {MAX_REPEAT}")
    return (CLASS, chars, lo, hi)


@lru_cache(maxsize=1024)
def parse_template(template: str) -> _Template:
    """Parse once per distinct template string; sampling reuses the result."""
    tokens: list[tuple] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch in "{}" and template.startswith(ch * 2, i):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            raise ValueError(f"template {template!r}: unbalanced '}}' at position {i}")
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        # a '[' set may itself list braces, so find its ']' before looking for the closing '}'
        search_from = i + 1
        if template.startswith("[", i + 1):
            search_from = template.find("]", i + 2)
            if search_from < 0:
                raise ValueError(f"template {template!r}: '[' at position {i + 1} has no closing ']'")
        close = template.find("}", search_from)
        if close < 0:
            raise ValueError(f"template {template!r}: unbalanced '{{' at position {i}")
        content = template[i + 1:close]
        if not content.startswith("[") and "{" in content:
            raise ValueError(f"template {template!r}: unbalanced '{{' at position {i}")
        if literal:
            tokens.append((LITERAL, "".join(literal)))
            literal = []
        tokens.append(_placeholder(content, template))
        i = close + 1
    if literal:
        tokens.append((LITERAL, "".join(literal)))
    charset: set[str] = set()
    for token in tokens:
        if token[0] != FIELD:
            charset.update(token[1])
    return _Template(
        tokens=tuple(tokens),
        n_draws=sum(t[3] + (t[2] != t[3]) for t in tokens if t[0] == CLASS),
        field_names=tuple(dict.fromkeys(t[1] for t in tokens if t[0] == FIELD)),
        charset=frozenset(charset),
    )


@lru_cache(maxsize=256)
def parse_date_format(fmt: str) -> tuple[tuple[tuple[bool, str], ...], frozenset[str]]:
    """(tokens, charset); a token is (is_directive, letter or literal text)."""
    tokens: list[tuple[bool, str]] = []
    charset: set[str] = set()
    parts = fmt.split("%")
    if parts[0]:
        tokens.append((False, parts[0]))
    i = 1
    while i < len(parts):
        part = parts[i]
        if not part:  # '%%' (an empty part followed by another) or a trailing '%'
            if i + 1 >= len(parts):
                raise ValueError(f"date format {fmt!r} ends with a lone '%'")
            tokens.append((False, "%" + parts[i + 1]))
            i += 2
            continue
        letter, literal = part[0], part[1:]
        if letter not in DATE_DIRECTIVES:
            allowed = ", ".join(f"%{k} {v}" for k, v in DATE_DIRECTIVES.items())
            raise ValueError(f"date format {fmt!r}: unknown directive %{letter}; allowed: {allowed}")
        tokens.append((True, letter))
        charset.update("".join(MONTHS) if letter == "b" else "".join(TITLE_MONTHS) if letter == "h" else DIGITS)
        if literal:
            tokens.append((False, literal))
        i += 1
    for is_directive, text in tokens:
        if not is_directive:
            charset.update(text)
    return tuple(tokens), frozenset(charset)


def format_date(fmt: str, moment: dt.datetime) -> str:
    """`moment` printed with date format `fmt` (the directives of DATE_DIRECTIVES)."""
    tokens, _ = parse_date_format(fmt)
    iso = None
    out: list[str] = []
    for is_directive, text in tokens:
        if not is_directive:
            out.append(text)
            continue
        if text in "VGgu" and iso is None:
            iso = moment.isocalendar()
        if text == "Y":
            out.append(f"{moment.year:04d}")
        elif text == "y":
            out.append(f"{moment.year % 100:02d}")
        elif text == "m":
            out.append(f"{moment.month:02d}")
        elif text == "d":
            out.append(f"{moment.day:02d}")
        elif text == "b":
            out.append(MONTHS[moment.month - 1])
        elif text == "h":
            out.append(TITLE_MONTHS[moment.month - 1])
        elif text == "j":
            out.append(f"{moment.toordinal() - dt.date(moment.year, 1, 1).toordinal() + 1:03d}")
        elif text == "V":
            out.append(f"{iso.week:02d}")
        elif text == "G":
            out.append(f"{iso.year:04d}")
        elif text == "g":
            out.append(f"{iso.year % 100:02d}")
        elif text == "u":
            out.append(str(iso.weekday))
        elif text == "H":
            out.append(f"{moment.hour:02d}")
        else:  # "M"
            out.append(f"{moment.minute:02d}")
    return "".join(out)


# --------------------------------------------------------------------- recipe

def _template_string(value: Any) -> Any:
    if isinstance(value, (dict, set)):
        raise ValueError("a template must be a string; in YAML quote templates that start with '{', "
                         "e.g. \"{X:8}\"")
    return value


def _choice_strings(value: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"choice {item!r} is not a string; quote it in YAML (e.g. '01') "
                                 f"so it is printed as written")
    return value


TemplateStr = Annotated[str, BeforeValidator(_template_string)]


class DateSpec(StrictModel):
    """A date (and time) drawn uniformly between start and end, printed with a strftime-like format."""

    format: str = Field("%Y-%m-%d", description="directives %Y %y %m %d %b (JAN..DEC) %h (Jan..Dec) %j (day of year) "
                        "%V (ISO week) %G %g (ISO year, 4/2 digits) %u (ISO weekday) %H %M %%")
    start: dt.date = Field(dt.date(2025, 1, 1), description="first possible date (inclusive)")
    end: dt.date = Field(dt.date(2030, 12, 31), description="last possible date (inclusive)")

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if not value:
            raise ValueError("date format is empty; write e.g. '%d.%m.%Y'")
        parse_date_format(value)
        return value

    @model_validator(mode="after")
    def _check_order(self) -> DateSpec:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class CounterSpec(StrictModel):
    """A serial number: start + step * sample_index (wrapped by modulo), zero-padded to width."""

    start: int = Field(0, ge=0, description="value of sample 0")
    step: int = Field(1, ge=0, description="increment per sample index")
    width: int = Field(1, ge=1, le=32, description="minimum number of digits (zero-padded)")
    modulo: int | None = Field(None, ge=1, description="wrap the value to 0..modulo-1 (e.g. 10**width)")


class WordlistSpec(StrictModel):
    """Words read from a text file (one per line, '#' lines ignored), loaded when the recipe is validated."""

    file: str = Field(description="path to the word list, relative to the recipe file")
    _words: tuple[str, ...] = PrivateAttr(default=())
    _charset: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> WordlistSpec:
        path = resolve_path(self.file, info.context)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"word list {self.file!r} not found (looked at {path})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"word list {self.file!r} ({path}) cannot be read as UTF-8 text: {error}") from None
        words = tuple(w for w in (line.strip() for line in text.splitlines()) if w and not w.startswith("#"))
        if not words:
            raise ValueError(f"word list {self.file!r} ({path}) has no words (one word per line, '#' for comments)")
        self._words = words
        self._charset = frozenset("".join(words))
        return self

    @property
    def words(self) -> tuple[str, ...]:
        return self._words

    @property
    def charset(self) -> frozenset[str]:
        return self._charset


class FieldSpec(StrictModel):
    """A named generator; exactly one of pattern, date, counter, wordlist, choices."""

    pattern: TemplateStr | None = Field(None, description="template of classes and literals, e.g. '{A:2}{9:4}'")
    date: DateSpec | None = Field(None, description="a date in a given format and range")
    counter: CounterSpec | None = Field(None, description="a number that follows the sample index")
    wordlist: WordlistSpec | None = Field(None, description="a word from a file")
    choices: Annotated[tuple[str, ...], BeforeValidator(_choice_strings)] | None = Field(
        None, min_length=1, description="one of these strings")
    check_digit: Literal["luhn", "gs1", "mod11"] | None = Field(
        None, description="append a check digit: luhn (mod 10), gs1 (weights 3,1), mod11 (may be X)")

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parsed = parse_template(value)
        except ValueError as error:
            raise ValueError(f"{error}; allowed: {CLASS_HELP}") from None
        if parsed.field_names:
            names = ", ".join("{" + n + "}" for n in parsed.field_names)
            raise ValueError(f"pattern {value!r} uses {names}, but a field cannot use other fields; "
                             f"allowed: {CLASS_HELP}")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> FieldSpec:
        kinds = [k for k in ("pattern", "date", "counter", "wordlist", "choices") if getattr(self, k) is not None]
        if len(kinds) != 1:
            given = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a field needs exactly one of pattern, date, counter, wordlist, choices (got {given})")
        if self.check_digit is not None:
            non_digits = self.value_charset() - DIGITS
            if non_digits:
                shown = "".join(sorted(non_digits))[:20]
                raise ValueError(f"check_digit {self.check_digit} needs a field that prints only digits; "
                                 f"this {kinds[0]} can print {shown!r}")
        return self

    def value_charset(self) -> frozenset[str]:
        """Every character the value can contain, before any check digit."""
        if self.pattern is not None:
            return parse_template(self.pattern).charset
        if self.date is not None:
            return parse_date_format(self.date.format)[1]
        if self.counter is not None:
            return DIGITS
        if self.wordlist is not None:
            return self.wordlist.charset
        return frozenset("".join(self.choices))

    def possible_chars(self) -> frozenset[str]:
        """Every character the field can print, check digit included."""
        chars = self.value_charset()
        if self.check_digit is not None:
            chars = chars | DIGITS | ({"X"} if self.check_digit == "mod11" else set())
        return chars


class BlockTemplate(StrictModel):
    """Lines placed together on a sample; one block is drawn per sample, by weight."""

    weight: float = Field(1.0, gt=0, allow_inf_nan=False, description="relative chance of drawing this block")
    lines: list[TemplateStr] = Field(default_factory=lambda: ["{X:8}"], min_length=1,
                                  description="line templates, top to bottom, e.g. 'LOT {lot}'")


class TextConfig(StrictModel):
    """What is printed: named fields (their spans go into the ground truth) and block templates."""

    fields: dict[str, FieldSpec] = Field(default_factory=dict, description="named generators used as {name}")
    blocks: list[BlockTemplate] = Field(default_factory=lambda: [BlockTemplate()], min_length=1,
                                        description="block templates; one is drawn per sample by weight")
    lookalikes: Literal["avoid", "keep"] = Field(
        "avoid", description="avoid: in a font that draws two characters alike apart from width (O and 0 in "
                             "DINish), character classes draw only the first of them (0), so every label can be "
                             "read from its pixels; keep: draw them all")

    @field_validator("fields")
    @classmethod
    def _check_names(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in value:
            if not FIELD_NAME.match(name):
                raise ValueError(f"field name {name!r} must have 2+ characters (letters, digits, _; not starting "
                                 f"with a digit) so it never collides with a class letter")
        return value

    @model_validator(mode="after")
    def _check_lines(self) -> TextConfig:
        known = ", ".join("{" + n + "}" for n in self.fields) or "none defined"
        allowed = f"fields: {known}; {CLASS_HELP}"
        for b, block in enumerate(self.blocks):
            for j, line in enumerate(block.lines):
                where = f"blocks[{b}].lines[{j}]"
                try:
                    parsed = parse_template(line)
                except ValueError as error:
                    raise ValueError(f"{where}: {error}; allowed: {allowed}") from None
                for name in parsed.field_names:
                    if name not in self.fields:
                        raise ValueError(f"{where}: template {line!r}: unknown field {{{name}}}; allowed: {allowed}")
                blank = _blank_parts(parsed, self.fields)
                if blank is not None:
                    raise ValueError(f"{where}: template {line!r} can print an empty line ({blank}); every line must "
                                     f"print at least one visible character (space lines apart with "
                                     f"typography.line_spacing; for pages without text use layout.empty_pages)")
        return self


def _field_can_be_blank(spec: FieldSpec) -> str | None:
    """Why field `spec` can print nothing visible, or None if it always prints a visible character."""
    if spec.check_digit is not None or spec.counter is not None or spec.wordlist is not None:
        return None  # a digit, a number, a word (stripped, never empty)
    if spec.pattern is not None:
        return _blank_parts(parse_template(spec.pattern), {})
    if spec.date is not None:
        tokens, _ = parse_date_format(spec.date.format)
        if any(is_directive or text.strip() for is_directive, text in tokens):
            return None
        return f"date format {spec.date.format!r} prints only spaces"
    blank = [c for c in spec.choices if not c.strip()]
    return f"choice {blank[0]!r}" if blank else None


def _blank_parts(parsed: _Template, fields: dict[str, FieldSpec]) -> str | None:
    """Why a template can print an empty or all-whitespace line, or None if it always prints a visible character.

    A line is blank when every part of it can be blank at once: whitespace literals, classes that may repeat
    zero times or list a whitespace character, fields that can print nothing visible.
    """
    reasons = []
    for token in parsed.tokens:
        if token[0] == LITERAL:
            if token[1].strip():
                return None
            reasons.append("only spaces")
        elif token[0] == CLASS:
            _, chars, lo, _hi = token
            if lo > 0 and not any(c.isspace() for c in chars):
                return None
            reasons.append("a class repeated 0 times" if lo == 0 else f"a class that can draw {' '!r}")
        else:
            why = _field_can_be_blank(fields[token[1]])
            if why is None:
                return None
            reasons.append(f"field {{{token[1]}}}: {why}")
    return "; ".join(dict.fromkeys(reasons)) or "it prints no character"


# ------------------------------------------------------------------- sampling

@dataclass(frozen=True)
class GeneratedLine:
    """One line of text; `fields` holds (name, start, end) with text[start:end] the field's value."""

    text: str
    fields: tuple[tuple[str, int, int], ...]


@lru_cache(maxsize=4096)
def _usable(chars: str, avoid: frozenset[str]) -> str:
    """A class's characters less the ones to avoid; all of them if nothing would be left."""
    kept = "".join(c for c in chars if c not in avoid)
    return kept or chars


def _fill(template: _Template, rng: np.random.Generator, cfg: TextConfig | None,
          values: dict[str, str] | None, index: int,
          avoid: frozenset[str] = frozenset()) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    draws = rng.random(template.n_draws).tolist() if template.n_draws else []
    k = 0
    parts: list[str] = []
    spans: list[tuple[str, int, int]] = []
    position = 0
    for token in template.tokens:
        kind = token[0]
        if kind == LITERAL:
            piece = token[1]
        elif kind == CLASS:
            _, chars, lo, hi = token
            count = lo
            if hi != lo:
                count = lo + int(draws[k] * (hi - lo + 1))
                k += 1
            if avoid:
                chars = _usable(chars, avoid)
            size = len(chars)
            piece = "".join([chars[int(u * size)] for u in draws[k:k + count]])
            k += hi
        else:
            name = token[1]
            piece = values.get(name)
            if piece is None:
                piece = values[name] = _field_value(cfg.fields[name], rng, index, avoid)
            spans.append((name, position, position + len(piece)))
        parts.append(piece)
        position += len(piece)
    return "".join(parts), tuple(spans)


def _field_value(spec: FieldSpec, rng: np.random.Generator, index: int, avoid: frozenset[str] = frozenset()) -> str:
    if spec.pattern is not None:
        value = _fill(parse_template(spec.pattern), rng, None, None, index, avoid)[0]
    elif spec.date is not None:
        date = spec.date
        first_day = date.start.toordinal()
        n_minutes = (date.end.toordinal() - first_day + 1) * MINUTES_PER_DAY
        minute = int(rng.random() * n_minutes)
        day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
        moment = dt.datetime.fromordinal(first_day + day).replace(hour=minute_of_day // 60, minute=minute_of_day % 60)
        value = format_date(date.format, moment)
    elif spec.counter is not None:
        counter = spec.counter
        number = counter.start + counter.step * index
        if counter.modulo is not None:
            number %= counter.modulo
        value = f"{number:0{counter.width}d}"
    else:
        options = spec.wordlist.words if spec.wordlist is not None else spec.choices
        value = options[int(rng.random() * len(options))]
    if spec.check_digit is not None:
        value += CHECK_DIGITS[spec.check_digit](value)
    return value


def choose_block(cfg: TextConfig, rng: np.random.Generator) -> int:
    """Draw a block template by weight."""
    total = sum(block.weight for block in cfg.blocks)
    target = rng.random() * total
    cumulative = 0.0
    for i, block in enumerate(cfg.blocks):
        cumulative += block.weight
        if target < cumulative:
            return i
    return len(cfg.blocks) - 1


def fill_block(cfg: TextConfig, template_index: int, rng: np.random.Generator, index: int,
               avoid: frozenset[str] = frozenset()) -> list[GeneratedLine]:
    """Fill the lines of block template `template_index`; `index` (the sample index) drives counters.

    Character classes (in lines and in field patterns) never draw a character of `avoid`
    (unless that would leave a class empty); literals, dates, word lists and choices print
    as written. Each class uses as many draws whatever `avoid` is, so the stream stays aligned.
    """
    values: dict[str, str] = {}
    lines = []
    for line in cfg.blocks[template_index].lines:
        text, spans = _fill(parse_template(line), rng, cfg, values, index, avoid)
        lines.append(GeneratedLine(text, spans))
    return lines


def sample_block(cfg: TextConfig, rng: np.random.Generator, index: int,
                 avoid: frozenset[str] = frozenset()) -> tuple[int, list[GeneratedLine]]:
    """Draw a block template by weight and fill its lines."""
    template_index = choose_block(cfg, rng)
    return template_index, fill_block(cfg, template_index, rng, index, avoid)


def block_charset(cfg: TextConfig, template_index: int) -> frozenset[str]:
    """Every character block `template_index` can ever print (spaces included)."""
    chars: set[str] = set()
    for line in cfg.blocks[template_index].lines:
        parsed = parse_template(line)
        chars |= parsed.charset
        for name in parsed.field_names:
            chars |= cfg.fields[name].possible_chars()
    return frozenset(chars)


def charset(cfg: TextConfig) -> frozenset[str]:
    """Every character any block can ever print."""
    return frozenset().union(*(block_charset(cfg, i) for i in range(len(cfg.blocks))))
