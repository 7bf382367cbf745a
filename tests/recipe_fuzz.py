"""Fuzzed recipes, shared by tests/test_robust.py (a few hundred cases) and tools/fuzz_recipes.py (10,000).

A case is YAML text: a bundled or small recipe with one to three mutations
(wrong types, out-of-range values, swapped ranges, unknown keys, empty lists,
unknown fonts, odd patterns, huge or zero sizes, escaping paths), or a document
that is not a recipe at all (not a mapping, YAML tags, bad YAML, alias bombs,
bytes that are not UTF-8). `outcome` loads it the way the CLI does and says
whether it rendered, was refused cleanly, or crashed.
"""
from __future__ import annotations

import copy
import json
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
BUNDLED = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((REPO / "recipes").glob("*.yaml"))}
SMALL = {"canvas": {"width": 256, "height": 192}, "typography": {"height_px": [14, 30]},
         "text": {"fields": {"lot": {"pattern": "{A:2}{9:3}"}, "day": {"date": {"format": "%y%m%d"}},
                             "num": {"counter": {"start": 5, "width": 4}}, "cc": {"choices": ["AB", "CD"]}},
                  "blocks": [{"lines": ["LOT {lot}", "{day} {num}"]}, {"lines": ["{cc}{9:3}"], "weight": 2}]},
         "fonts": [{"category": "ocr"}, {"bitmap": "5x8"}],
         "marking": [{"kind": "inkjet"}, {"kind": "emboss"}],
         "background": {"photos": [], "materials": {"brushed_metal": 1}}}
BASES = {"small": SMALL, **BUNDLED}
SECTIONS = ("version", "name", "description", "canvas", "text", "fonts", "typography", "layout", "marking",
            "colour", "background", "effects")

# strings a recipe author (or a bad editor) might paste: unicode, control characters, template syntax
ODD_CHARS = "{}[]:-09AX9aZ \t\n\r\x00\x07\x1b\x7f\u00e9\u00df\u4e2d\u0416\U0001f600\u200b\ufeff\u202e\\%$!#"
odd_text = st.text(alphabet=st.sampled_from(list(ODD_CHARS)) | st.characters(), max_size=24)
bad_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from([0, -1, 1, 63, 64, 8193, 10**6, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-9, 1e300, -1e300]), odd_text,
)
bad_value = st.one_of(
    bad_scalar,
    st.lists(bad_scalar, max_size=3),
    st.dictionaries(odd_text, bad_scalar, max_size=2),
    st.just([]), st.just({}),
    st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)).map(lambda t: [max(t), min(t)]),  # max before min
)
font_entry = st.one_of(
    st.builds(lambda n: {"font": n}, st.sampled_from(["ocr-a", "no-such-font", "OCR-A", "", "../fonts/x"]) | odd_text),
    st.builds(lambda n: {"category": n}, st.sampled_from(["ocr", "segment", "dot-matrix", "comic", ""]) | odd_text),
    st.builds(lambda n: {"bitmap": n}, st.sampled_from(["5x8", "6x12", "7x9", "99x99"]) | odd_text),
    st.builds(lambda p: {"file": p}, st.sampled_from(["/etc/passwd", "../../../etc/hosts", "missing.ttf",
                                                      "~/.bashrc", "/dev/zero", "."])),
)


def paths(doc, prefix=()):
    """Every (path, value) inside a parsed recipe, depth first."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated_recipe(draw) -> tuple[str, str]:
    """(description, YAML text) of a base recipe with 1-3 mutations."""
    base = draw(st.sampled_from(sorted(BASES)))
    doc = copy.deepcopy(BASES[base])
    notes = [base]
    for _ in range(draw(st.integers(1, 3))):
        every = list(paths(doc))
        kind = draw(st.sampled_from(["tweak", "tweak", "tweak", "set", "set", "swap", "unknown-key", "delete", "empty",
                                     "pattern", "font", "size", "charset"]))
        numbers = [p for p, v in every if p and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if kind == "tweak" and numbers:  # keep the type, move the value: often still valid, sometimes out of range
            path = draw(st.sampled_from(numbers))
            value = _get(doc, path)
            factor = draw(st.sampled_from([0, 0.5, 0.9, 1.1, 2, 10, -1]))
            _get(doc, path[:-1])[path[-1]] = type(value)(value * factor) if factor else 0
        elif kind == "set" and len(every) > 1:
            path, _ = draw(st.sampled_from(every[1:]))
            _get(doc, path[:-1])[path[-1]] = draw(bad_value)
        elif kind == "swap":
            pairs = [(p, v) for p, v in every if p and isinstance(v, list) and len(v) == 2
                     and all(isinstance(x, (int, float)) for x in v) and v[0] != v[1]]
            if not pairs:
                continue
            path, value = draw(st.sampled_from(pairs))
            _get(doc, path[:-1])[path[-1]] = [value[1], value[0]]
        elif kind == "unknown-key":
            maps = [p for p, v in every if isinstance(v, dict)]
            path = draw(st.sampled_from(maps))
            _get(doc, path)[draw(st.sampled_from(["colour_", "widht", "rotaton", "blocks_", "x"]) | odd_text)] = 1
        elif kind == "delete":
            keyed = [p for p, _ in every if p and isinstance(p[-1], str)]
            if not keyed:
                continue
            path = draw(st.sampled_from(keyed))
            del _get(doc, path[:-1])[path[-1]]
        elif kind == "empty":
            lists = [p for p, v in every if p and isinstance(v, (list, dict))]
            if not lists:
                continue
            path = draw(st.sampled_from(lists))
            _get(doc, path[:-1])[path[-1]] = draw(st.sampled_from([[], {}]))
        elif kind == "pattern":
            line = draw(odd_text | st.sampled_from(["{", "}", "{9:0}", "{9:-3}", "{X:999999}", "{[]:3}", "{[Z-A]}",
                                                    "{9:5-2}", "{nope}", "{A:1000}", "{lot", "{{}}", "{9:3"]))
            text = doc.setdefault("text", {}) if isinstance(doc.get("text", {}), dict) else {}
            text["blocks"] = [{"lines": [line]}]
        elif kind == "font":
            doc["fonts"] = draw(st.lists(font_entry, min_size=0, max_size=3))
        elif kind == "size":
            canvas = doc.setdefault("canvas", {}) if isinstance(doc.get("canvas", {}), dict) else {}
            canvas[draw(st.sampled_from(["width", "height"]))] = draw(st.sampled_from(
                [0, -5, 1, 63, 64, 65, 100, 8192, 8193, 10**9, 0.5, "1600", "big"]))
        elif kind == "charset":  # characters the bundled fonts cannot draw
            text = doc.setdefault("text", {}) if isinstance(doc.get("text", {}), dict) else {}
            text["blocks"] = [{"lines": [draw(st.sampled_from(["\u4e2d\u6587{9:3}", "{[\u00e9\u00df]:4}", "\u2603",
                                                               "{[\u0416-\u042f]:3}", "A\u0301"]))]}]
        notes.append(kind)
    return " ".join(notes), yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# Values that pass the schema's types but fail when used: each must be refused (exit 2, one message naming the
# file and the field or block, no traceback), never rendered into an empty or wrong page. Files they name are
# written by `write_fixtures` next to the recipe.
SMALL_TEXT = {"canvas": {"width": 320, "height": 240}, "typography": {"height_px": [14, 30]}}
FAILS_IN_USE = [
    ("impossible date", {"text": {"fields": {"dd": {"date": {"start": "2025-02-30"}}}, "blocks": [{"lines": ["{dd}"]}]}},
     "text.fields.dd.date.start"),
    ("not a leap year", {"text": {"fields": {"dd": {"date": {"end": "2023-02-29"}}}, "blocks": [{"lines": ["{dd}"]}]}},
     "text.fields.dd.date.end"),
    ("date as a number", {"text": {"fields": {"dd": {"date": {"start": 20250101}}}, "blocks": [{"lines": ["{dd}"]}]}},
     "text.fields.dd.date.start"),
    ("date format with no date", {"text": {"fields": {"dd": {"date": {"format": "  "}}},
                                           "blocks": [{"lines": ["{dd}"]}]}}, "blocks[0].lines[0]"),
    ("unknown date directive", {"text": {"fields": {"dd": {"date": {"format": "%Y-%q"}}},
                                         "blocks": [{"lines": ["{dd}"]}]}}, "text.fields.dd.date.format"),
    ("empty line", {"text": {"blocks": [{"lines": ["{9:4}", ""]}]}}, "blocks[0].lines[1]"),
    ("blank line", {"text": {"blocks": [{"lines": ["   "]}]}}, "blocks[0].lines[0]"),
    ("class repeated 0 times", {"text": {"blocks": [{"lines": ["{9:0-3}"]}]}}, "blocks[0].lines[0]"),
    ("class of spaces", {"text": {"blocks": [{"lines": ["{[ ]:3}"]}]}}, "blocks[0].lines[0]"),
    ("blank choice", {"text": {"fields": {"cc": {"choices": ["AB", " "]}}, "blocks": [{"lines": ["{cc}"]}]}},
     "blocks[0].lines[0]"),
    ("pattern of spaces", {"text": {"fields": {"pp": {"pattern": "{[ X]:2}"}}, "blocks": [{"lines": [" {pp} "]}]}},
     "blocks[0].lines[0]"),
    ("empty word list", {"text": {"fields": {"ww": {"wordlist": {"file": "empty.txt"}}},
                                  "blocks": [{"lines": ["{ww}"]}]}}, "text.fields.ww.wordlist"),
    ("word list of comments", {"text": {"fields": {"ww": {"wordlist": {"file": "comments.txt"}}},
                                        "blocks": [{"lines": ["{ww}"]}]}}, "text.fields.ww.wordlist"),
    ("word list not UTF-8", {"text": {"fields": {"ww": {"wordlist": {"file": "latin1.txt"}}},
                                      "blocks": [{"lines": ["{ww}"]}]}}, "text.fields.ww.wordlist"),
    ("word list is a folder", {"text": {"fields": {"ww": {"wordlist": {"file": "."}}},
                                        "blocks": [{"lines": ["{ww}"]}]}}, "text.fields.ww.wordlist"),
    ("font file that is not a font", {"fonts": [{"file": "notafont.ttf"}]}, "fonts[0]"),
    ("seven-segment font asked for letters", {"fonts": [{"file": "seg.ttf"}],
                                              "text": {"blocks": [{"lines": ["MAX {9:3}"]}]}}, "fonts[0]"),
    ("seven-segment copy asked for small letters", {"fonts": [{"file": "seg-renamed.ttf"}],
                                                    "text": {"blocks": [{"lines": ["{a:3}"]}]}}, "fonts[0]"),
    ("axes on a font without them", {"fonts": [{"font": "ocr-a", "axes": {"wght": 700}}]}, "fonts[0].axes"),
    ("axis out of range", {"fonts": [{"font": "doto-round", "axes": {"wght": 5000}}]}, "fonts[0].axes"),
    ("text too tall", {"typography": {"height_px": [300, 400]}, "text": {"blocks": [{"lines": ["{9:4}"]}]}},
     "text.blocks[0]"),
    ("text too long", {"text": {"blocks": [{"lines": ["{X:60}"]}]}}, "text.blocks[0]"),
    ("too many lines", {"text": {"blocks": [{"lines": ["{9:2}"] * 12}]}}, "text.blocks[0]"),
    ("region too small", {"layout": {"regions": {"corner": {"x": [0.9, 0.95], "y": [0.9, 0.95]}}}},
     "layout.regions.corner"),
    ("margin eats the page", {"layout": {"margin_px": 150}}, "text.blocks[0]"),
    ("range of the wrong form", {"typography": {"height_px": "big"}}, "typography.height_px"),
    ("range of three", {"layout": {"rotation": [1, 2, 3]}}, "layout.rotation"),
    ("fractional stroke", {"typography": {"stroke_px": [0.5, 1]}}, "typography.stroke_px"),
    ("section of the wrong form", {"layout": [1, 2]}, "layout"),
    ("empty pages above 1", {"layout": {"empty_pages": 1.5}}, "layout.empty_pages"),
]


def failing_in_use(description: str) -> tuple[str, str]:
    """(YAML text, what the message must name) of one FAILS_IN_USE case, on top of the small page."""
    for name, change, names in FAILS_IN_USE:
        if name == description:
            doc = copy.deepcopy(SMALL_TEXT)
            for key, value in change.items():
                doc[key] = {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) \
                    else value
            return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).replace(
                "'2025-02-30'", "2025-02-30").replace("'2023-02-29'", "2023-02-29"), names
    raise KeyError(description)


def write_fixtures(folder: Path) -> None:
    """The files FAILS_IN_USE cases name, next to the recipe."""
    (folder / "empty.txt").write_text("")
    (folder / "comments.txt").write_text("# only a comment\n\n   \n")
    (folder / "latin1.txt").write_bytes("CAF\u00c9\n".encode("latin-1"))
    (folder / "notafont.ttf").write_bytes(b"\0\1\0\0 not really a font" * 10)
    seg = REPO / "fonts" / "dseg" / "DSEG7Classic-Regular.ttf"
    (folder / "seg.ttf").write_bytes(seg.read_bytes())
    if not (folder / "seg-renamed.ttf").exists():  # the same glyphs in a file that is not a bundled one
        from fontTools.ttLib import TTFont

        font = TTFont(seg)
        font["name"].setName("Not DSEG", 1, 3, 1, 0x409)
        font.save(folder / "seg-renamed.ttf")


fails_in_use = st.sampled_from([name for name, _change, _names in FAILS_IN_USE]).map(
    lambda name: (f"fails in use: {name}", failing_in_use(name)[0]))


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, "
    f"*{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}, *{chr(97 + k)}]\n" for k in range(8)
) + "text: {blocks: [{lines: *i}]}\n"
not_a_recipe = st.one_of(
    st.sampled_from([
        ("list", "- canvas: {width: 100}\n"), ("scalar", "42\n"), ("string", "hello\n"), ("null", "~\n"),
        ("python tag", "!!python/object/apply:os.system ['echo pwned']\n"),
        ("python name", "canvas: !!python/name:os.system\n"),
        ("custom tag", "canvas: !Canvas {width: 100}\n"), ("set tag", "!!set {a, b}\n"),
        ("binary tag", "name: !!binary aGVsbG8=\n"), ("timestamp", "name: 2024-01-01\n"),
        ("bad yaml", "canvas: {width: 100\n"), ("tabs", "canvas:\n\twidth: 100\n"),
        ("duplicate keys", "canvas: {width: 100}\ncanvas: {width: 200}\n"),
        ("merge key", "base: &b {width: 100}\ncanvas: {<<: *b, height: 100}\n"),
        ("alias bomb", ALIAS_BOMB), ("deep nesting", "canvas: " + "[" * 2000 + "]" * 2000 + "\n"),
        ("non-utf8", b"name: \xff\xfe\n"), ("bom", "\ufeffcanvas: {width: 640, height: 480}\n"),
        ("json", json.dumps(SMALL)), ("empty", ""),
    ]),
    st.builds(lambda t: ("random text", t), st.text(max_size=60)),
)
recipe_case = st.one_of(mutated_recipe(), mutated_recipe(), mutated_recipe(), not_a_recipe, fails_in_use)


# ----------------------------------------------------------------------------- running one case

class Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """SIGALRM-based limit for one case (the main thread only); a hang counts as a crash."""
    def fire(*_):
        raise Timeout(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    result: str  # "rendered" | "refused" | "crash" | "inexact" (rendered, but the ground truth breaks the rule)
    message: str = ""
    details: list[str] = field(default_factory=list)


def outcome(text: str | bytes, folder: Path, render: bool = True, limit_s: float = 60.0) -> Outcome:
    """Load a recipe text as the CLI does; render sample 0 if it is valid and check its exactness. Never raises."""
    from synthtext_industrial import RecipeError, load_recipe, render_sample
    from synthtext_industrial.exactness import check_sample

    path = folder / "fuzz.yaml"
    write_fixtures(folder)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    try:
        with time_limit(limit_s):
            try:
                recipe = load_recipe(path)
            except RecipeError as exc:
                message = str(exc)
                problems = [] if message.startswith(str(path)) else ["the error does not start with the file name"]
                if "Traceback" in message or not message.strip():
                    problems.append("the error is empty or holds a traceback")
                return Outcome("crash" if problems else "refused", message, problems)
            if not render:
                return Outcome("rendered")
            sample = render_sample(recipe, 0, 0, keep_char_masks=True)
            h, w = recipe.canvas.height, recipe.canvas.width
            if sample.image.shape != (h, w) or sample.image.dtype != np.uint8:
                return Outcome("crash", f"image {sample.image.shape} {sample.image.dtype}, expected ({h}, {w}) uint8")
            problems = check_sample(sample)
            return Outcome("inexact", problems[0], problems) if problems else Outcome("rendered")
    except Exception as exc:  # noqa: BLE001 - every other exception is what the fuzzer looks for
        return Outcome("crash", f"{type(exc).__name__}: {exc}"[:500])
