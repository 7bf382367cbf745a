"""Grammar-constrained decoding: the automaton of a recipe's text templates accepts what the sampler prints and
nothing near it that the templates cannot print; the CTC beam search over it reads only such strings, rejects
what none explains, and runs the same in the package and in the Jetson kit's vendored copy."""
from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthtext_industrial.recipe import load_recipe
from synthtext_industrial.stages.text import (FIELD, LITERAL, TextConfig, charset, check_digit, format_date,
                                              parse_template, sample_block)
from synthtext_industrial.train.grammar import Grammar, GrammarTooLarge, compile_grammar, run_grammar
from synthtext_industrial.core.portable import ctc_grammar_beam, decode_line, grammar_accepts, log_softmax

from .conftest import BUNDLED_RECIPES, REPO


def config(lines, fields=None, blocks=None) -> TextConfig:
    return TextConfig.model_validate({"fields": fields or {}, "blocks": blocks or [{"lines": lines}]})


# ------------------------------------------------------------ an independent oracle: regexes and predicates


def _class_regex(chars: str, lo: int, hi: int) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]" + f"{{{lo},{hi}}}"


def _plain_regex(template: str) -> str:
    out = []
    for token in parse_template(template).tokens:
        out.append(re.escape(token[1]) if token[0] == LITERAL else _class_regex(*token[1:]))
    return "".join(out)


def _field_regex_and_test(spec):
    """(regex of the value, predicate on the matched text) for one field, built without the automaton."""
    if spec.pattern is not None:
        value = _plain_regex(spec.pattern)
    elif spec.date is not None:
        fmt = spec.date.format.replace("%H", "\x01").replace("%M", "\x02")
        days = {format_date(fmt, dt.datetime.combine(spec.date.start + dt.timedelta(d), dt.time()))
                for d in range((spec.date.end - spec.date.start).days + 1)}
        value = "(?:" + "|".join(re.escape(s).replace("\x01", "(?:[01][0-9]|2[0-3])").replace("\x02", "[0-5][0-9]")
                                 for s in sorted(days)) + ")"
    elif spec.counter is not None:
        c = spec.counter

        def printed(text):  # some index i prints it: zero-padded start + step * i, wrapped
            v = int(text)
            if text != f"{v:0{c.width}d}":
                return False
            if c.modulo:
                return v < c.modulo and (v - c.start) % math.gcd(c.step, c.modulo) == 0
            return v == c.start if c.step == 0 else v >= c.start and (v - c.start) % c.step == 0

        return "[0-9]+", printed
    else:
        value = "(?:" + "|".join(re.escape(w) for w in (spec.wordlist.words if spec.wordlist else spec.choices)) + ")"
    if spec.check_digit is None:
        return value, lambda text: True
    method = spec.check_digit
    return f"{value}[0-9X]", lambda text: check_digit(method, text[:-1]) == text[-1]


def oracle(cfg: TextConfig):
    """text -> whether some line template of cfg prints it: a backtracking match over the template's tokens
    (every repeat count, every end of a field's value), each field's value checked by its regex and predicate."""
    fields = {name: (re.compile(regex), test) for name, (regex, test) in
              ((name, _field_regex_and_test(spec)) for name, spec in cfg.fields.items())}
    lines = [parse_template(template).tokens for block in cfg.blocks for template in block.lines]

    def match(tokens, i, text, pos) -> bool:
        if i == len(tokens):
            return pos == len(text)
        token = tokens[i]
        if token[0] == LITERAL:
            return text.startswith(token[1], pos) and match(tokens, i + 1, text, pos + len(token[1]))
        if token[0] == FIELD:
            regex, test = fields[token[1]]
            return any(regex.fullmatch(text, pos, end) and test(text[pos:end]) and match(tokens, i + 1, text, end)
                       for end in range(pos + 1, len(text) + 1))
        _, chars, lo, hi = token
        count = 0
        while True:
            if count >= lo and match(tokens, i + 1, text, pos + count):
                return True
            if count == hi or pos + count >= len(text) or text[pos + count] not in chars:
                return False
            count += 1

    return lambda text: any(match(tokens, 0, text, 0) for tokens in lines)


def mutations(text: str, alphabet: str, rng: np.random.Generator) -> list[str]:
    """Near misses: one character substituted, deleted or inserted."""
    out = []
    for i in range(len(text)):
        out.append(text[:i] + text[i + 1:])
        for ch in rng.choice(list(alphabet), 3):
            out.append(text[:i] + ch + text[i + 1:])
            out.append(text[:i] + ch + text[i:])
    return [m for m in out if m != text]


@pytest.mark.parametrize("path", BUNDLED_RECIPES, ids=lambda p: p.stem)
def test_the_automaton_accepts_every_sampled_line_and_judges_near_misses_like_the_templates(path):
    cfg = load_recipe(path).text
    grammar = compile_grammar([cfg], [path.stem])
    is_valid = oracle(cfg)
    alphabet = "".join(sorted(charset(cfg))) + "X-/ "
    rng = np.random.default_rng(0)
    sample_rng = np.random.default_rng(1)
    rejected = checked = 0
    for index in range(150):
        for line in sample_block(cfg, sample_rng, index)[1]:
            assert grammar.accepts(line.text), (path.stem, line.text)
            for near in mutations(line.text, alphabet, rng):
                expected = is_valid(near)
                assert grammar.accepts(near) == expected, (path.stem, line.text, near, expected)
                rejected += not expected
                checked += 1
    assert rejected >= checked // 10  # the near misses are not all still valid ({X:6-10} takes most)


PIECES = ["{A}", "{9:2}", "{9:1-3}", "{[AB0-2]:0-2}", "{X:2-3}", "-", "LOT ", "/", "{H}"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4), min_size=1, max_size=3),
       st.sampled_from([None, "luhn", "gs1", "mod11"]))
def test_random_templates_accept_what_they_print_and_nothing_near_it_they_cannot(lines, method):
    fields = {"cd": {"pattern": "{9:2-3}", "check_digit": method}} if method else {}
    templates = ["".join(pieces) + ("{cd}" if method and k == 0 else "") for k, pieces in enumerate(lines)]
    try:
        cfg = config([], fields, blocks=[{"lines": [t]} for t in templates])
    except ValueError:
        return  # a line that can print nothing visible is refused by the recipe schema
    grammar, is_valid = compile_grammar([cfg]), oracle(cfg)
    rng = np.random.default_rng(0)
    sample_rng = np.random.default_rng(1)
    for index in range(20):
        for line in sample_block(cfg, sample_rng, index)[1]:
            assert grammar.accepts(line.text), line.text
            for near in mutations(line.text, "0123456789ABX-/ L", rng)[:20]:
                assert grammar.accepts(near) == is_valid(near), (templates, line.text, near)


def test_check_digits_exactly_one_check_character_per_payload():
    for method in ("luhn", "gs1", "mod11"):
        grammar = compile_grammar([config(["{cd}"], {"cd": {"pattern": "{9:2-4}", "check_digit": method}})])
        rng = np.random.default_rng(2)
        for _ in range(40):
            payload = "".join(rng.choice(list("0123456789"), rng.integers(2, 5)))
            good = check_digit(method, payload)
            accepted = [c for c in "0123456789X" if grammar.accepts(payload + c)]
            assert accepted == [good], (method, payload, accepted)


def test_the_language_is_exactly_the_templates_on_a_small_alphabet():
    """Every string over the alphabet up to 5 characters: accepted iff some template prints it."""
    cfg = config([], {"cd": {"pattern": "{9:1-3}", "check_digit": "mod11"},
                      "ctr": {"counter": {"start": 7, "step": 3, "width": 2, "modulo": 200}},
                      "tag": {"choices": ["A", "AB"]}},
                 blocks=[{"lines": ["{cd}"]}, {"lines": ["C{ctr}", "{tag}-{9}"]}])
    payloads = ["".join(p) for n in (1, 2, 3) for p in itertools.product("0123456789", repeat=n)]
    language = {p + check_digit("mod11", p) for p in payloads}
    language |= {f"C{(7 + 3 * i) % 200:02d}" for i in range(200)}
    language |= {f"{t}-{d}" for t in ("A", "AB") for d in "0123456789"}
    grammar = compile_grammar([cfg])
    alphabet = "0123456789XCAB-"
    for n in range(1, 5):
        for chars in itertools.product(alphabet, repeat=n):
            text = "".join(chars)
            assert grammar.accepts(text) == (text in language), text


def test_counters_follow_start_step_width_and_wrap():
    grammar = compile_grammar([config(["{sn}"], {"sn": {"counter": {"start": 95, "step": 5, "width": 3}}})])
    values = {f"{95 + 5 * i:03d}" for i in range(20000)}
    for n in range(1, 6):
        for value in range(10 ** n):
            text = f"{value:0{n}d}"
            assert grammar.accepts(text) == (text in values), text
    assert grammar.accepts("1000000000000000")  # no modulo: the counter goes on
    wrapped = compile_grammar([config(["{sn}"], {"sn": {"counter": {"start": 3, "step": 4, "width": 1,
                                                                           "modulo": 10}}})])
    assert sorted(v for v in map(str, range(100)) if wrapped.accepts(v)) == ["1", "3", "5", "7", "9"]


def test_dates_are_calendar_days_in_range():
    grammar = compile_grammar([config(["EXP {exp}", "{mon} {time}"], {
        "exp": {"date": {"format": "%d.%m.%Y", "start": "2027-01-01", "end": "2028-12-31"}},
        "mon": {"date": {"format": "%d %b %y", "start": "2027-01-01", "end": "2027-12-31"}},
        "time": {"date": {"format": "%H:%M"}}})])
    assert grammar.accepts("EXP 29.02.2028") and not grammar.accepts("EXP 29.02.2027")  # leap years
    assert not grammar.accepts("EXP 12.13.2027") and not grammar.accepts("EXP 32.01.2027")
    assert not grammar.accepts("EXP 01.01.2026") and not grammar.accepts("EXP 01.01.2029")  # outside the range
    assert grammar.accepts("31 DEC 27 23:59") and not grammar.accepts("31 DEC 27 24:00")
    assert not grammar.accepts("31 NOV 27 12:00") and not grammar.accepts("31 Dec 27 12:00")
    title = compile_grammar([config(["Best By {bb}"], {"bb": {"date": {"format": "%h %d %Y", "start": "2027-01-01",
                                                                         "end": "2027-12-31"}}})])
    assert title.accepts("Best By Feb 28 2027") and not title.accepts("Best By FEB 28 2027")
    assert not title.accepts("Best By Feb 29 2027") and not title.accepts("Best By Feb 28 2028")
    week = compile_grammar([config(["{wk}"], {"wk": {"date": {"format": "%g%V", "start": "2025-01-01",
                                                                   "end": "2026-12-31"}}})])
    assert week.accepts("2653") and not week.accepts("2553") and not week.accepts("2600")  # 2026 has 53 ISO weeks


def test_grammar_json_round_trips_and_the_portable_walker_agrees():
    cfg = load_recipe(REPO / "recipes" / "thermal-label.yaml").text
    grammar = compile_grammar([cfg], ["thermal-label"])
    data = json.loads(json.dumps(grammar.to_json()))
    again = Grammar.from_json(data)
    assert again.dfa == grammar.dfa and again.sources == ("thermal-label",)
    rng = np.random.default_rng(3)
    for index in range(40):
        for line in sample_block(cfg, rng, index)[1]:
            for text in [line.text] + mutations(line.text, "0123456789AB", rng)[:6]:
                assert grammar_accepts(data, text) == grammar.accepts(text)


def test_a_grammar_too_large_is_a_clear_error():
    with pytest.raises(GrammarTooLarge, match="date range .* days"):
        compile_grammar([config(["{dd}"], {"dd": {"date": {"start": "1000-01-01", "end": "2999-12-31"}}})])
    with pytest.raises(GrammarTooLarge, match="counter stepping by 999983"):
        compile_grammar([config(["{sn}"], {"sn": {"counter": {"step": 999983, "width": 12}}})])


# -------------------------------------------------------------------------------------------------- decoding

CHARS = "0123456789LOT /"
BLANK = len(CHARS)


def frames(*steps) -> np.ndarray:
    """Logits [steps, classes]: each step a character (None: blank) or a dict {character or None: probability};
    what a step leaves goes evenly to the other classes."""
    out = np.zeros((len(steps), BLANK + 1))
    for t, step in enumerate(steps):
        probs = step if isinstance(step, dict) else {step: 0.97}
        rest = max(1.0 - sum(probs.values()), 1e-9) / (BLANK + 1 - len(probs))
        p = np.full(BLANK + 1, rest)
        for ch, value in probs.items():
            p[BLANK if ch is None else CHARS.index(ch)] = value
        out[t] = np.log(p)
    return out


def table_for(lines, fields=None):
    return compile_grammar([config(lines, fields)]).table(CHARS)


def test_a_bad_check_digit_is_read_as_the_valid_one():
    table = table_for(["{gt}"], {"gt": {"pattern": "{9:4}", "check_digit": "gs1"}})
    good = check_digit("gs1", "4006")
    bad = str((int(good) + 3) % 10)
    logits = frames("4", None, "0", None, "0", None, "6", None, {bad: 0.6, good: 0.3}, None)
    text, confidence, rejected, greedy = decode_line(logits, CHARS, BLANK, table)
    assert greedy == "4006" + bad and text == "4006" + good and not rejected
    assert 0.2 < confidence < 0.35  # the labelling's probability, mostly its one likely path


def test_an_impossible_month_is_read_as_a_possible_one():
    table = table_for(["{ex}"], {"ex": {"date": {"format": "%m/%y", "start": "2027-01-01", "end": "2028-12-31"}}})
    logits = frames("1", None, {"3": 0.55, "2": 0.4}, "/", "2", None, "8")
    text, _, rejected, greedy = decode_line(logits, CHARS, BLANK, table)
    assert (greedy, text, rejected) == ("13/28", "12/28", False)


def test_a_reading_nothing_valid_explains_is_rejected_not_forced():
    table = table_for(["LOT {9:2}"])
    logits = frames("L", "O", "T", " ", "1", None)  # one digit where two must be
    text, confidence, rejected, greedy = decode_line(logits, CHARS, BLANK, table)
    assert (text, confidence, rejected, greedy) == ("", 0.0, True, "LOT 1")
    # a second digit only at a probability below the search's floor: still rejected, not forced
    tiny = frames("L", "O", "T", " ", "1", {None: 0.999999, "7": 1e-6})
    assert decode_line(tiny, CHARS, BLANK, table)[2]
    # and read when the second digit is merely unlikely
    text, _, rejected, _ = decode_line(frames("L", "O", "T", " ", "1", {None: 0.9, "7": 0.05}), CHARS, BLANK, table)
    assert (text, rejected) == ("LOT 17", False)


def test_a_repeated_character_needs_a_blank_between():
    table = table_for(["1{9}"])
    text, _, rejected, _ = decode_line(frames("1", "1", "1"), CHARS, BLANK, table)  # one "1" however long
    assert rejected and text == ""
    text, _, rejected, _ = decode_line(frames("1", None, "1"), CHARS, BLANK, table)
    assert (text, rejected) == ("11", False)


def test_the_beam_search_finds_the_most_probable_accepted_labelling():
    """With beams enough for every prefix, the result is the exact CTC argmax over the accepted labellings."""
    rng = np.random.default_rng(4)
    chars = "ab"
    grammar = compile_grammar([config(["{[ab]:1-2}a"])])
    table = grammar.table(chars)
    for _ in range(20):
        logits = rng.normal(size=(5, 3)) * 2
        probs = np.exp(log_softmax(logits))
        totals: dict[str, float] = {}
        for path in itertools.product(range(3), repeat=5):  # every alignment
            labels = [k for j, k in enumerate(path) if k != 2 and (j == 0 or path[j - 1] != k)]
            text = "".join(chars[k] for k in labels)
            totals[text] = totals.get(text, 0.0) + float(np.prod([probs[t, k] for t, k in enumerate(path)]))
        accepted = {t: p for t, p in totals.items() if grammar.accepts(t)}
        best = max(accepted, key=accepted.get)
        labels, probability = ctc_grammar_beam(logits, 2, table, beam_width=64, min_char_prob=0.0,
                                                min_ratio=0.0)
        assert "".join(chars[k] for k in labels) == best
        assert probability == pytest.approx(accepted[best], rel=1e-9)


# ------------------------------------------------------------------------------ the package and the device


def load_kit():
    spec = importlib.util.spec_from_file_location("kit_infer", REPO / "synthtext_industrial" / "export" /
                                                  "jetson_kit" / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeModel:
    """Stands in for a Keras recognizer: hands out prepared logits, one row per image."""

    def __init__(self, rows):
        self.rows = list(rows)

    def __call__(self, batch, training=False):
        out, self.rows = self.rows[:len(batch)], self.rows[len(batch):]
        return np.stack(out).astype(np.float32)


def test_the_kit_decodes_like_the_package(tmp_path, capsys):
    from synthtext_industrial.export.exporter import add_grammar
    from synthtext_industrial.train.recognizer import RecognizerConfig, read_lines

    grammar = compile_grammar([config(["LOT {9:2}"], blocks=[{"lines": ["LOT {9:2}"]}, {"lines": ["{gt}"]}],
                                      fields={"gt": {"pattern": "{9:3}", "check_digit": "luhn"}})], ["test"])
    meta = add_grammar({"decode": {"charset": CHARS, "blank_index": BLANK}}, grammar)
    meta = json.loads(json.dumps(meta))
    kit = load_kit()
    table = kit.line_table(meta)
    rng = np.random.default_rng(5)
    rows = [frames("L", "O", "T", " ", "4", None, {"O": 0.6, "2": 0.35}, *[None] * 5),
            frames("1", None, "2", None, "3", {"4": 0.5, check_digit("luhn", "123"): 0.3}, *[None] * 6),
            frames("L", "O", "T", " ", "1", *[None] * 7)]
    rows += [rng.normal(size=(12, BLANK + 1)) * 4 for _ in range(12)]
    config_ = RecognizerConfig(height=32, width=64, charset=CHARS)
    package = read_lines(FakeModel(rows), config_, [np.zeros((32, 64), np.uint8)] * len(rows), grammar=grammar)
    for row, reading in zip(rows, package):
        text, confidence, rejected, greedy = kit.read_logits(row.astype(np.float32), meta, table)
        assert (text, rejected, greedy) == (reading.text, reading.rejected, reading.unconstrained)
        assert confidence == pytest.approx(reading.confidence, rel=1e-9)
    assert [r.text for r in package[:3]] == ["LOT 42", "123" + check_digit("luhn", "123"), ""]
    assert package[2].rejected and package[2].unconstrained == "LOT 1"
    assert sum(r.rejected for r in package[3:]) >= 6  # noise is mostly rejected
    # the kit's command line: rejected lines say so, --no-grammar reads greedily
    (tmp_path / "metadata.json").write_text(json.dumps({**meta, "schema_version": 1, "model": "recognizer",
                                                         "input": {"height": 32, "width": 64},
                                                         "files": {"onnx": {"path": "recognizer.onnx"}}}))
    images = []
    for k in range(3):
        images.append(str(tmp_path / f"{k}.png"))
        kit.cv2.imwrite(images[-1], np.zeros((32, 64), np.uint8))

    def fake_session(rows_):
        return lambda *args, **kwargs: type("M", (), {"max_batch": None, "__call__": FakeModel(rows_).__call__})()

    kit.OnnxRuntimeModel = fake_session(rows[:3])
    assert kit.main(["--metadata", str(tmp_path / "metadata.json"), *images]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t")[1] == "LOT 42" and out[2].split("\t")[1:] == ["", "0.000", "rejected", "LOT 1"]
    kit.OnnxRuntimeModel = fake_session(rows[:3])
    assert kit.main(["--metadata", str(tmp_path / "metadata.json"), "--no-grammar", *images]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in out] == ["LOT 4O", "1234", "LOT 1"]


def test_predict_and_evaluate_use_the_runs_recipe_by_default(tmp_path, monkeypatch):
    import csv

    import cv2
    from click.testing import CliRunner

    import synthtext_industrial.cli as cli
    import synthtext_industrial.train.runs as runs
    from synthtext_industrial.train.recognizer import RecognizerConfig

    recipe = tmp_path / "codes.yaml"
    recipe.write_text("text:\n  blocks:\n    - {lines: ['LOT {9:2}']}\n", encoding="utf-8")
    dataset = tmp_path / "data"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps({
        "schema": "synthtext-industrial/manifest/1", "format": "lmdb", "recipe_source": str(recipe),
        "recipe": recipe.read_text(), "shards": []}))
    run = tmp_path / "run"
    run.mkdir()
    config_ = RecognizerConfig(height=32, width=64, charset=CHARS)
    config_.save(run / "config.json")
    (run / "best.weights.h5").write_bytes(b"")
    (run / "training.json").write_text(json.dumps({"model": "recognizer", "data": [{"path": str(dataset)}]}))
    assert run_grammar(run).sources == (str(recipe),)

    rows = [frames("L", "O", "T", " ", "4", None, {"O": 0.6, "2": 0.35}),
            frames("L", "O", "T", " ", "1", None, None)]
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, truth in enumerate(["LOT 42", "LOT 13"]):
        cv2.imwrite(str(photos / f"{k}.png"), np.full((32, 64), 40 * k, np.uint8))
    (photos / "labels.tsv").write_text("0.png\tLOT 42\n1.png\tLOT 13\n")
    monkeypatch.setattr(cli, "_need_tensorflow", lambda: None)

    def invoke(*args):
        monkeypatch.setattr(runs, "load_recognizer", lambda *a, **k: (FakeModel(rows), config_))
        return CliRunner().invoke(cli.main, [str(a) for a in args])

    result = invoke("predict", run, photos / "0.png", photos / "1.png")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(str(photos))]
    assert lines[0].split("\t")[1] == "LOT 42" and lines[1].split("\t")[1:] == ["", "0.000", "rejected", "LOT 1"]
    result = invoke("predict", run, "--no-grammar", photos / "0.png", photos / "1.png")
    assert [line.split("\t")[1] for line in result.output.splitlines() if line.startswith(str(photos))] == \
        ["LOT 4O", "LOT 1"]

    result = invoke("evaluate", run, "--images", photos, "-o", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "string accuracy 0.5000" in result.output and "1 rejected by the grammar" in result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["rejected"] == 1 and metrics["grammar"] == [str(recipe)]
    rows_csv = list(csv.DictReader(open(tmp_path / "eval" / "predictions.csv")))
    assert [(r["prediction"], r["rejected"], r["unconstrained"]) for r in rows_csv] == \
        [("LOT 42", "0", "LOT 4O"), ("", "1", "LOT 1")]

    other = tmp_path / "other.yaml"
    other.write_text("text:\n  blocks:\n    - {lines: ['LOT {9:1}']}\n", encoding="utf-8")
    result = invoke("evaluate", run, "--images", photos, "-o", tmp_path / "eval2", "--grammar", other)
    assert result.exit_code == 0 and "string accuracy 0.0000" in result.output  # "LOT 1" is valid there
    result = invoke("evaluate", run, "--images", photos, "--grammar", other, "--no-grammar")
    assert result.exit_code == 2 and "not both" in result.output
    result = invoke("predict", run, photos / "0.png", "--grammar", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and "Traceback" not in result.output and "missing.yaml" in result.output


def test_a_run_whose_recipe_cannot_be_found_decodes_without_a_grammar(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert run_grammar(run) is None  # no training.json
    dataset = tmp_path / "data"
    dataset.mkdir()
    (run / "training.json").write_text(json.dumps({"data": [{"path": str(dataset)}]}))
    assert run_grammar(run) is None  # no manifest
    for manifest in ({"schema": "other"}, {"schema": "synthtext-industrial/manifest/1", "format": "lmdb",
                                           "recipe": ""},
                     {"schema": "synthtext-industrial/manifest/1", "format": "lmdb", "recipe": "text: [unclosed"},
                     {"schema": "synthtext-industrial/manifest/1", "format": "lmdb",
                      "recipe": "text:\n  fields: {ww: {wordlist: {file: moved.txt}}}\n  blocks: [{lines: ['{ww}']}]",
                      "recipe_source": str(tmp_path / "gone" / "r.yaml")}):
        (dataset / "manifest.json").write_text(json.dumps(manifest))
        assert run_grammar(run) is None, manifest
