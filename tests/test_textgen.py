"""Tests for the text generators and the `text` recipe section."""
from __future__ import annotations

import datetime as dt
import pickle
import string

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from synthtext_industrial.stages.text import (GeneratedLine, TextConfig, block_charset, charset, check_digit,
                                              sample_block)

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def config(lines, fields=None, context=None) -> TextConfig:
    return TextConfig.model_validate({"fields": fields or {}, "blocks": [{"lines": lines}]}, context=context)


def texts(cfg: TextConfig, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["\n".join(line.text for line in sample_block(cfg, rng, i)[1]) for i in range(n)]


def field_values(cfg: TextConfig, n: int, name: str, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    values = []
    for i in range(n):
        for line in sample_block(cfg, rng, i)[1]:
            values += [line.text[s:e] for f, s, e in line.fields if f == name]
    return values


# ------------------------------------------------------------------ patterns

def test_default_section_prints_eight_uppercase_letters_or_digits():
    cfg = TextConfig()
    assert [b.lines for b in cfg.blocks] == [["{X:8}"]]
    allowed = set(string.ascii_uppercase + string.digits)
    for text in texts(cfg, 50):
        assert len(text) == 8 and set(text) <= allowed
    assert charset(cfg) == frozenset(allowed)


@pytest.mark.parametrize("cls, chars", [
    ("A", string.ascii_uppercase),
    ("a", string.ascii_lowercase),
    ("9", string.digits),
    ("X", string.ascii_uppercase + string.digits),
    ("H", "0123456789ABCDEF"),
    ("[ABC123]", "ABC123"),
    ("[A-F0-5]", "ABCDEF012345"),
    ("[-AB]", "-AB"),
    ("[AB-]", "-AB"),
    ("[{}]", "{}"),
])
def test_classes_print_exactly_their_characters(cls, chars):
    cfg = config(["{" + cls + ":40}"])
    seen = set("".join(texts(cfg, 30)))
    assert seen == set(chars)  # every listed character appears, nothing else
    assert block_charset(cfg, 0) == frozenset(chars)


def test_repetitions():
    assert {len(t) for t in texts(config(["{9:4}"]), 30)} == {4}
    assert {len(t) for t in texts(config(["{9:2-4}"]), 200)} == {2, 3, 4}
    assert {len(t) for t in texts(config(["x{9:0}y"]), 5)} == {2}
    assert {len(t) for t in texts(config(["{A}{9}"]), 5)} == {2}


def test_literals_and_escaped_braces():
    cfg = config(["LOT {{{9:3}}} - ok"])
    for text in texts(cfg, 20):
        assert text.startswith("LOT {") and text.endswith("} - ok") and text[5:8].isdigit()
    assert block_charset(cfg, 0) == frozenset("LOT{}-ok ") | frozenset(string.digits)


def test_brief_example_recipe(tmp_path):
    (tmp_path / "words.txt").write_text("ALPHA\nBETA\n")
    recipe = yaml.safe_load("""
text:
  fields:
    lot:    {pattern: "{A:2}{9:2}-{9:3}"}
    exp:    {date: {format: "%m/%Y", start: 2026-01-01, end: 2028-12-31}}
    julian: {date: {format: "%y%j"}}
    week:   {date: {format: "%g%V"}}
    serial: {counter: {start: 100000, step: 7, width: 8}}
    gtin:   {pattern: "{9:12}", check_digit: gs1}
    word:   {wordlist: {file: words.txt}}
    shift:  {choices: [A, B, C]}
  blocks:
    - weight: 2
      lines: ["LOT {lot}", "EXP {exp}"]
    - lines: ["{X:8}"]
    - lines: ["{julian} {week} {shift}", "SN {serial} {gtin} {word}"]
""")
    cfg = TextConfig.model_validate(recipe["text"], context={"base_dir": str(tmp_path)})
    rng = np.random.default_rng(3)
    seen = set()
    for i in range(60):
        template_index, lines = sample_block(cfg, rng, i)
        seen.add(template_index)
        assert [len(lines)] == [[2, 1, 2][template_index]]
        values = {name: line.text[s:e] for line in lines for name, s, e in line.fields}
        if template_index == 0:
            lot, exp = values["lot"], values["exp"]
            assert lot[:2].isalpha() and lot[2:4].isdigit() and lot[4] == "-" and lot[5:].isdigit()
            month, year = exp.split("/")
            assert 1 <= int(month) <= 12 and 2026 <= int(year) <= 2028
        elif template_index == 2:
            assert values["serial"] == f"{100000 + 7 * i:08d}"
            assert values["gtin"][-1] == check_digit("gs1", values["gtin"][:-1])
            assert values["shift"] in "ABC" and values["word"] in ("ALPHA", "BETA")
    assert seen == {0, 1, 2}


def test_block_weights():
    cfg = TextConfig.model_validate({"blocks": [{"weight": 2, "lines": ["A"]}, {"lines": ["B"]}]})
    rng = np.random.default_rng(0)
    picks = [sample_block(cfg, rng, i)[0] for i in range(3000)]
    assert 0.62 < picks.count(0) / len(picks) < 0.71


# --------------------------------------------------------------------- dates

DATES = [dt.date(2020, 1, 1) + dt.timedelta(days=d) for d in range(0, 800, 13)] + [
    dt.date(2020, 12, 31), dt.date(2021, 1, 1), dt.date(2021, 1, 3), dt.date(2021, 1, 4),
    dt.date(2024, 2, 29), dt.date(2024, 12, 30), dt.date(2024, 12, 31), dt.date(2027, 1, 1),
    dt.date(2099, 12, 31), dt.date(2100, 3, 1),
]


@pytest.mark.parametrize("day", DATES, ids=str)
def test_every_date_directive_matches_datetime(day):
    fmt = "%Y|%y|%m|%d|%b|%h|%j|%V|%G|%g|%u|%H|%M|%%"
    cfg = config(["{when}"], {"when": {"date": {"format": fmt, "start": day, "end": day}}})
    for text in texts(cfg, 3, seed=day.toordinal()):
        Y, y, m, d, b, h, j, V, G, g, u, H, M, percent = text.split("|")
        iso = day.isocalendar()
        assert (Y, y, m, d) == (f"{day.year:04d}", f"{day.year % 100:02d}", f"{day.month:02d}", f"{day.day:02d}")
        assert b == MONTHS[day.month - 1]
        assert h == day.strftime("%b") == b.title()  # the C locale's abbreviated month
        assert j == f"{day.timetuple().tm_yday:03d}"
        assert (V, G, g, u) == (f"{iso.week:02d}", f"{iso.year:04d}", f"{iso.year % 100:02d}", str(iso.weekday))
        assert len(H) == 2 and 0 <= int(H) <= 23 and len(M) == 2 and 0 <= int(M) <= 59
        assert percent == "%"


def test_date_range_is_inclusive_and_uniform():
    start, end = dt.date(2026, 2, 27), dt.date(2026, 3, 2)
    cfg = config(["{day}"], {"day": {"date": {"format": "%Y-%m-%d", "start": start, "end": end}}})
    seen = [dt.date.fromisoformat(t) for t in texts(cfg, 400)]
    assert set(seen) == {start + dt.timedelta(days=k) for k in range(4)}
    times = texts(config(["{tm}"], {"tm": {"date": {"format": "%H:%M"}}}), 300)
    assert len(set(times)) > 250  # hours and minutes are drawn too


def test_date_defaults_do_not_depend_on_today():
    cfg = config(["{year}"], {"year": {"date": {"format": "%Y"}}})
    assert {int(t) for t in texts(cfg, 500)} == set(range(2025, 2031))


def test_date_format_literals_and_month_names_in_charset():
    cfg = config(["EXP {exp}"], {"exp": {"date": {"format": "%d %b %Y %%"}}})
    assert block_charset(cfg, 0) == frozenset("EXP %") | frozenset(string.digits) | frozenset("".join(MONTHS))
    assert set("".join(texts(cfg, 300))) <= block_charset(cfg, 0)
    title = config(["Best By {bb}"], {"bb": {"date": {"format": "%h %d %Y"}}})
    assert block_charset(title, 0) == (frozenset("Best By") | frozenset(string.digits)
                                       | frozenset("".join(m.title() for m in MONTHS)))
    assert set("".join(texts(title, 300))) <= block_charset(title, 0)


# -------------------------------------------------------------- check digits

@pytest.mark.parametrize("method, payload, expected", [
    ("gs1", "400638133393", "1"),
    ("gs1", "9780306406157"[:-1], "7"),
    ("gs1", "03600029145", "2"),
    ("luhn", "7992739871", "3"),
    ("luhn", "453201511283036", "6"),
    ("mod11", "030640615", "2"),
    ("mod11", "080442957", "X"),
    ("mod11", "000000000", "0"),
])
def test_check_digits(method, payload, expected):
    assert check_digit(method, payload) == expected


@pytest.mark.parametrize("method", ["luhn", "gs1", "mod11"])
def test_check_digit_is_appended_and_in_charset(method):
    cfg = config(["{code}"], {"code": {"pattern": "{9:9}", "check_digit": method}})
    values = field_values(cfg, 300, "code")
    assert all(len(v) == 10 and v[-1] == check_digit(method, v[:-1]) for v in values)
    assert set("".join(values)) <= block_charset(cfg, 0)
    assert ("X" in block_charset(cfg, 0)) == (method == "mod11")
    if method == "mod11":
        assert any(v.endswith("X") for v in values)


@pytest.mark.parametrize("spec", [
    {"pattern": "{9:4}{A}"},
    {"pattern": "12-34"},
    {"date": {"format": "%d%b"}},
    {"date": {"format": "%y-%j"}},
    {"choices": ["12", "3A"]},
])
def test_check_digit_needs_a_digits_only_field(spec):
    with pytest.raises(ValidationError, match="check_digit luhn needs a field that prints only digits"):
        config(["{code}"], {"code": {**spec, "check_digit": "luhn"}})


def test_check_digit_on_digit_fields_of_every_kind(tmp_path):
    (tmp_path / "numbers.txt").write_text("123\n4567\n")
    fields = {
        "julian": {"date": {"format": "%y%j"}, "check_digit": "gs1"},
        "serial": {"counter": {"start": 5}, "check_digit": "luhn"},
        "pick": {"choices": ["01", "99"], "check_digit": "mod11"},
        "listed": {"wordlist": {"file": "numbers.txt"}, "check_digit": "gs1"},
    }
    cfg = config(["{julian} {serial} {pick} {listed}"], fields, context={"base_dir": str(tmp_path)})
    assert field_values(cfg, 3, "serial") == ["59", "67", "75"]
    assert {v[:-1] for v in field_values(cfg, 50, "listed")} == {"123", "4567"}
    letters = (tmp_path / "letters.txt")
    letters.write_text("12\nA1\n")
    with pytest.raises(ValidationError, match="can print 'A'"):
        config(["{w}"], {"w": {"wordlist": {"file": str(letters)}, "check_digit": "gs1"}})


# ------------------------------------------------------------------ counters

def test_counter_width_step_and_modulo():
    cfg = config(["{sn}"], {"sn": {"counter": {"start": 100000, "step": 7, "width": 8}}})
    rng = np.random.default_rng(0)
    assert [sample_block(cfg, rng, i)[1][0].text for i in (0, 1, 2, 10)] == [
        "00100000", "00100007", "00100014", "00100070"]
    wrap = config(["{sn}"], {"sn": {"counter": {"start": 98, "step": 1, "width": 2, "modulo": 100}}})
    assert [sample_block(wrap, rng, i)[1][0].text for i in range(4)] == ["98", "99", "00", "01"]
    wide = config(["{sn}"], {"sn": {"counter": {"start": 12345, "width": 3}}})
    assert sample_block(wide, rng, 0)[1][0].text == "12345"  # width pads, never truncates


def test_counter_depends_on_index_not_on_rng():
    cfg = config(["SN{sn}"], {"sn": {"counter": {"start": 1, "step": 3, "width": 4}}})
    a = sample_block(cfg, np.random.default_rng(1), 7)[1][0].text
    b = sample_block(cfg, np.random.default_rng(2), 7)[1][0].text
    assert a == b == "SN0022"


# ----------------------------------------------------------------- wordlists

def test_wordlist_loading(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "words.txt").write_text("# materials\n  STEEL \n\nalu\n   \n# skip\nMESSING Ä\n",
                                                  encoding="utf-8")
    cfg = config(["{word}"], {"word": {"wordlist": {"file": "lists/words.txt"}}},
                 context={"base_dir": str(tmp_path)})
    assert cfg.fields["word"].wordlist.words == ("STEEL", "alu", "MESSING Ä")
    assert set(texts(cfg, 100)) == {"STEEL", "alu", "MESSING Ä"}
    assert block_charset(cfg, 0) == frozenset("STEELaluMESSING Ä")
    restored = pickle.loads(pickle.dumps(cfg))  # configs travel to worker processes
    assert restored.fields["word"].wordlist.words == cfg.fields["word"].wordlist.words
    assert texts(restored, 20, seed=4) == texts(cfg, 20, seed=4)


def test_wordlist_errors_name_the_file_and_field(tmp_path):
    with pytest.raises(ValidationError) as missing:
        config(["{word}"], {"word": {"wordlist": {"file": "nope.txt"}}}, context={"base_dir": str(tmp_path)})
    error = missing.value.errors()[0]
    assert error["loc"] == ("fields", "word", "wordlist")
    assert "nope.txt" in error["msg"] and "not found" in error["msg"]

    (tmp_path / "empty.txt").write_text("# only a comment\n\n  \n")
    with pytest.raises(ValidationError, match="'empty.txt'.*has no words"):
        config(["{word}"], {"word": {"wordlist": {"file": "empty.txt"}}}, context={"base_dir": str(tmp_path)})

    inside = tmp_path / "recipes"
    inside.mkdir()
    with pytest.raises(ValidationError, match="outside the allowed folders"):
        config(["{word}"], {"word": {"wordlist": {"file": "../empty.txt"}}},
               context={"base_dir": str(inside), "allowed_roots": [str(inside)]})


# ---------------------------------------------------------- spans, choices, determinism

def test_field_spans_cover_exactly_the_values():
    fields = {"lot": {"pattern": "{A:2-3}{9:1-4}"}, "shift": {"choices": ["A", "NIGHT"]}}
    cfg = config(["LOT {lot}/{shift} {lot}", "{{{shift}}}"], fields)
    rng = np.random.default_rng(5)
    for i in range(100):
        _, lines = sample_block(cfg, rng, i)
        assert all(isinstance(line, GeneratedLine) for line in lines)
        first, second = lines
        assert [name for name, _, _ in first.fields] == ["lot", "shift", "lot"]
        lot1, shift, lot2 = (first.text[s:e] for _, s, e in first.fields)
        assert lot1 == lot2  # a field prints one value per block
        assert first.text == f"LOT {lot1}/{shift} {lot1}"
        assert second.text == "{" + shift + "}" and second.fields == (("shift", 1, 1 + len(shift)),)


def test_choices_are_drawn_from_the_list():
    cfg = config(["{grade}"], {"grade": {"choices": ["A", "B+", "C-1"]}})
    assert set(texts(cfg, 100)) == {"A", "B+", "C-1"}
    assert block_charset(cfg, 0) == frozenset("AB+C-1")


def test_determinism():
    cfg = config(["LOT {lot} {[A-C]:1-3}", "{day}"], {"lot": {"pattern": "{X:6}"}, "day": {"date": {}}})
    assert texts(cfg, 30, seed=11) == texts(cfg, 30, seed=11)
    assert texts(cfg, 30, seed=11) != texts(cfg, 30, seed=12)


def test_charset_covers_only_used_blocks_and_fields():
    fields = {"lot": {"pattern": "{9:3}"}, "unused": {"choices": ["zzz"]}}
    cfg = TextConfig.model_validate({"fields": fields, "blocks": [{"lines": ["L{lot}"]}, {"lines": ["{a:2}"]}]})
    assert block_charset(cfg, 0) == frozenset("L0123456789")
    assert block_charset(cfg, 1) == frozenset(string.ascii_lowercase)
    assert charset(cfg) == block_charset(cfg, 0) | block_charset(cfg, 1)
    assert "z" in charset(cfg)  # from {a}, not from the unused field


# -------------------------------------------------------------------- errors

@pytest.mark.parametrize("line, message", [
    ("LOT {lto}", r"unknown field \{lto\}; allowed: fields: \{lot\}, \{exp\}; classes \{A\} A-Z"),
    ("{B:3}", r"unknown placeholder \{B:3\}.*fields: \{lot\}, \{exp\}; classes"),
    ("{[]}", r"\[\] lists no characters"),
    ("{[Z-A]}", "range Z-A .* is backwards"),
    ("{[AB}", "has no closing ']'"),
    ("LOT {A", "unbalanced '{'"),
    ("LOT {A{9}}", "unbalanced '{'"),
    ("LOT A}", "unbalanced '}'"),
    ("{9:4-2}", "repeat '4-2'"),
    ("{9:x}", "bad repeat 'x'"),
    ("{9:500}", "MAX <= 100"),
    ("{lot:2}", "field {lot} takes no repeat count"),
    ("{[AB]x}", "unexpected 'x' after ]"),
])
def test_line_errors_name_the_template_and_what_is_allowed(line, message):
    fields = {"lot": {"pattern": "{9:3}"}, "exp": {"date": {}}}
    with pytest.raises(ValidationError, match=message) as caught:
        config(["OK", line], fields)
    assert f"blocks[0].lines[1]: template {line!r}" in str(caught.value)


def test_field_errors():
    with pytest.raises(ValidationError, match=r"pattern '\{9\}\{lot\}' uses \{lot\}, but a field cannot use other"):
        config(["{a}"], {"lot": {"pattern": "{9}"}, "code": {"pattern": "{9}{lot}"}})
    with pytest.raises(ValidationError, match="unknown placeholder"):
        config(["{code}"], {"code": {"pattern": "{Q}"}})
    with pytest.raises(ValidationError, match="exactly one of pattern, date, counter, wordlist, choices .got none"):
        config(["{code}"], {"code": {}})
    with pytest.raises(ValidationError, match=r"exactly one of .* \(got pattern, choices\)"):
        config(["{code}"], {"code": {"pattern": "{9}", "choices": ["1"]}})
    for name in ("a", "9x", "lot-no"):
        with pytest.raises(ValidationError, match=f"field name '{name}' must have 2\\+ characters"):
            config(["x"], {name: {"choices": ["1"]}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        config(["{code}"], {"code": {"choices": ["1"], "colour": "red"}})
    with pytest.raises(ValidationError, match="check_digit"):
        config(["{code}"], {"code": {"pattern": "{9}", "check_digit": "crc"}})


def test_date_errors():
    with pytest.raises(ValidationError, match=r"unknown directive %Q; allowed: %Y year"):
        config(["{d}"], {"d": {"date": {"format": "%Y%Q"}}})
    with pytest.raises(ValidationError, match="lone '%'"):
        config(["{d}"], {"d": {"date": {"format": "%Y%"}}})
    with pytest.raises(ValidationError, match="start 2027-01-01 is after end 2026-01-01"):
        config(["{d}"], {"d": {"date": {"start": "2027-01-01", "end": "2026-01-01"}}})


def test_yaml_gotchas_get_a_hint():
    unquoted = yaml.safe_load("blocks:\n  - lines:\n      - {X:8}\n")
    with pytest.raises(ValidationError, match="quote templates that start with"):
        TextConfig.model_validate(unquoted)
    numbers = yaml.safe_load("fields:\n  grade: {choices: [01, 2]}\nblocks: [{lines: ['{grade}']}]\n")
    with pytest.raises(ValidationError, match="choice 1 is not a string; quote it"):
        TextConfig.model_validate(numbers)


def test_other_section_errors():
    with pytest.raises(ValidationError):
        TextConfig.model_validate({"blocks": []})
    with pytest.raises(ValidationError):
        TextConfig.model_validate({"blocks": [{"lines": []}]})
    with pytest.raises(ValidationError):
        TextConfig.model_validate({"blocks": [{"weight": 0, "lines": ["x"]}]})
    with pytest.raises(ValidationError):
        config(["{sn}"], {"sn": {"counter": {"start": -1}}})


# ------------------------------------------------- property: text within charset

@pytest.fixture(scope="module")
def word_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("words")
    (folder / "words.txt").write_text("Ölwanne\nBOLT M8\n# x\nnut-7\n", encoding="utf-8")
    return folder


LITERAL = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="{}[]%\n"), max_size=4)
REPEAT = st.one_of(st.just(""), st.integers(0, 5).map(lambda n: f":{n}"),
                   st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda p: f":{min(p)}-{max(p)}"))
SET_ITEM = st.one_of(
    st.characters(min_codepoint=32, max_codepoint=0x17F, exclude_characters="]-"),
    st.lists(st.sampled_from(string.ascii_letters + string.digits), min_size=2, max_size=2)
    .map(lambda ends: "-".join(sorted(ends))),  # ranges such as A-F, 3-9 or Z-a
)
CLASS = st.one_of(
    st.sampled_from("Aa9XH"),
    st.lists(SET_ITEM, min_size=1, max_size=3).map(lambda items: "[" + "".join(items) + "]"),
)
PATTERN_PIECE = st.one_of(LITERAL.map(lambda s: s.replace("{", "{{")), st.just("{{"), st.just("}}"),
                          st.tuples(CLASS, REPEAT).map(lambda p: "{" + p[0] + p[1] + "}"))
PATTERN = st.lists(PATTERN_PIECE, max_size=5).map("".join)
DATE_FORMAT = st.lists(st.one_of(st.sampled_from(["%Y", "%y", "%m", "%d", "%b", "%j", "%V", "%G", "%g", "%u",
                                                  "%H", "%M", "%%"]), LITERAL), min_size=1, max_size=5).map("".join)
FIELD_NAMES = ["pat", "day", "sn", "word", "pick", "gtin"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pattern=PATTERN,
    date_format=DATE_FORMAT.filter(lambda f: f.strip() != ""),
    choices=st.lists(LITERAL, min_size=1, max_size=3),
    check=st.sampled_from([None, "luhn", "gs1", "mod11"]),
    lines=st.lists(st.lists(st.one_of(PATTERN_PIECE, st.sampled_from(FIELD_NAMES).map(lambda n: "{" + n + "}")),
                            min_size=1, max_size=6).map("".join), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    index=st.integers(0, 10**6),
)
def test_generated_text_stays_within_charset(word_dir, pattern, date_format, choices, check, lines, seed, index):
    fields = {
        "pat": {"pattern": pattern},
        "day": {"date": {"format": date_format}},
        "sn": {"counter": {"start": 7, "step": 13, "width": 6, "modulo": 10**7}, "check_digit": check},
        "word": {"wordlist": {"file": "words.txt"}},
        "pick": {"choices": choices},
        "gtin": {"pattern": "{9:7}", "check_digit": check},
    }
    try:
        cfg = TextConfig.model_validate({"fields": fields, "blocks": [{"lines": lines}, {"lines": ["{X:3}"]}]},
                                        context={"base_dir": str(word_dir)})
    except ValidationError as error:  # a line that could print nothing visible is refused, and nothing else is
        assert "can print an empty line" in str(error), error
        return
    rng = np.random.default_rng(seed)
    for offset in range(3):
        template_index, generated = sample_block(cfg, rng, index + offset)
        allowed = block_charset(cfg, template_index)
        assert allowed <= charset(cfg)
        for line in generated:
            assert set(line.text) <= allowed
            assert line.text.strip(), "an accepted template printed an empty line"
            for name, start, end in line.fields:
                assert 0 <= start <= end <= len(line.text) and name in fields
