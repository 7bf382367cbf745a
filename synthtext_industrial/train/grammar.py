"""A recipe's text grammar: every line its templates can print, compiled into a deterministic finite automaton.

A recognizer reads one line at a time, so the grammar is the union, over every block of every recipe, of each
line template's language: literals, classes with their repeats, and the fields (patterns; dates enumerated
day by day over their range, hours and minutes as 00-23 and 00-59; counters as the numbers start + step * i,
wrapped and zero-padded; word lists and choices as tries). A check digit is tracked in the automaton's state:
Luhn, GS1 and mod 11 are weighted sums, so (payload state, running sums) is finite and the only check
character a state accepts is the right one. The automaton is minimal and trimmed (every state can still
reach an accepting one), so a decoder can prune a prefix as soon as it leaves the language.

What it accepts is a superset of what the sampler prints in two ways only: classes may draw every listed
character (the sampler skips a font's lookalikes), and a field used twice in one line is not tied to print the
same value twice (lines on different rows are read apart anyway).

`Grammar.to_json()` is what metadata.json carries and `core/portable.py` decodes with (`grammar_table`,
`ctc_grammar_beam`), here and in the Jetson kit.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..stages.text import CLASS, FIELD, LITERAL, FieldSpec, TextConfig, format_date, parse_date_format, parse_template
from ..core.portable import grammar_table

GRAMMAR_FORMAT = 1
MAX_STATES = 50_000  # any automaton built on the way; a recipe beyond this gets GrammarTooLarge
MAX_DATE_DAYS = 100_000  # about 270 years of dates enumerated per date field
DIGIT_CHARS = "0123456789"
HOUR, MINUTE = "\x01", "\x02"  # stand-ins for %H and %M while a date's days are enumerated


class GrammarTooLarge(ValueError):
    """A recipe whose grammar would need too many automaton states; the message names the part."""


@dataclass(frozen=True)
class Dfa:
    """A deterministic automaton: start state 0, `trans[q]` maps a character to the next state (missing: reject)."""

    trans: tuple[dict[str, int], ...]
    accept: frozenset[int]

    @property
    def n_states(self) -> int:
        return len(self.trans)

    def accepts(self, text: str) -> bool:
        q = 0
        for ch in text:
            q = self.trans[q].get(ch, -1)
            if q < 0:
                return False
        return q in self.accept


# ------------------------------------------------------------ automaton algebra


class _Nfa:
    """A Thompson-style builder: labelled edges (one character each) and epsilon edges."""

    def __init__(self, where: str):
        self.edges: list[list[tuple[str, int]]] = []
        self.eps: list[list[int]] = []
        self.where = where

    def state(self) -> int:
        if len(self.edges) >= 4 * MAX_STATES:
            raise GrammarTooLarge(f"{self.where}: the grammar needs more than {4 * MAX_STATES} automaton states")
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def embed(self, dfa: Dfa) -> tuple[int, int]:
        """A copy of `dfa` as a fragment (entry, exit): every accepting state steps to the exit by epsilon."""
        ids = [self.state() for _ in range(dfa.n_states)]
        exit_ = self.state()
        for q, row in enumerate(dfa.trans):
            for ch, r in row.items():
                self.edges[ids[q]].append((ch, ids[r]))
            if q in dfa.accept:
                self.eps[ids[q]].append(exit_)
        return ids[0], exit_


def _closure(nfa: _Nfa, states: Iterable[int]) -> frozenset[int]:
    seen = set(states)
    stack = list(seen)
    while stack:
        for r in nfa.eps[stack.pop()]:
            if r not in seen:
                seen.add(r)
                stack.append(r)
    return frozenset(seen)


def _determinize(nfa: _Nfa, start: int, final: int) -> Dfa:
    first = _closure(nfa, [start])
    index = {first: 0}
    order = [first]
    trans: list[dict[str, int]] = []
    k = 0
    while k < len(order):
        subset = order[k]
        k += 1
        moves: dict[str, set[int]] = {}
        for q in subset:
            for ch, r in nfa.edges[q]:
                moves.setdefault(ch, set()).add(r)
        row = {}
        for ch in sorted(moves):
            target = _closure(nfa, moves[ch])
            if target not in index:
                if len(order) >= MAX_STATES:
                    raise GrammarTooLarge(f"{nfa.where}: the grammar needs more than {MAX_STATES} automaton states; "
                                          f"shorten date ranges, repeats or word lists")
                index[target] = len(order)
                order.append(target)
            row[ch] = index[target]
        trans.append(row)
    return Dfa(tuple(trans), frozenset(i for i, s in enumerate(order) if final in s))


def minimize(dfa: Dfa) -> Dfa:
    """The minimal trimmed automaton of the same language, states numbered in breadth-first order."""
    n = dfa.n_states
    # trim: keep the states that can reach an accepting state
    back: list[list[int]] = [[] for _ in range(n)]
    for q, row in enumerate(dfa.trans):
        for r in row.values():
            back[r].append(q)
    alive = set(dfa.accept)
    stack = list(alive)
    while stack:
        for p in back[stack.pop()]:
            if p not in alive:
                alive.add(p)
                stack.append(p)
    if 0 not in alive:
        return Dfa(({},), frozenset())
    rows = {q: {ch: r for ch, r in dfa.trans[q].items() if r in alive} for q in alive}
    # Moore refinement: split blocks by acceptance, then by (character, block of the target) until stable
    block = {q: int(q in dfa.accept) for q in alive}
    count = len(set(block.values()))
    while True:
        signatures: dict[tuple, int] = {}
        new = {}
        for q in sorted(alive):
            key = (block[q], tuple(sorted((ch, block[r]) for ch, r in rows[q].items())))
            new[q] = signatures.setdefault(key, len(signatures))
        block = new
        if len(signatures) == count:
            break
        count = len(signatures)
    # renumber the blocks breadth-first from the start, characters in order: the same language gives the same JSON
    number = {block[0]: 0}
    queue = deque([0])
    trans: list[dict[str, int]] = []
    while queue:
        q = queue.popleft()
        row = {}
        for ch in sorted(rows[q]):
            b = block[rows[q][ch]]
            if b not in number:
                number[b] = len(number)
                queue.append(rows[q][ch])
            row[ch] = number[b]
        trans.append(row)
    accept = frozenset(number[block[q]] for q in dfa.accept if q in alive and block[q] in number)
    return Dfa(tuple(trans), accept)


def concat(parts: Sequence[Dfa], where: str) -> Dfa:
    nfa = _Nfa(where)
    start = current = nfa.state()
    for part in parts:
        entry, exit_ = nfa.embed(part)
        nfa.eps[current].append(entry)
        current = exit_
    return minimize(_determinize(nfa, start, current))


def union(parts: Sequence[Dfa], where: str) -> Dfa:
    nfa = _Nfa(where)
    start, final = nfa.state(), nfa.state()
    for part in parts:
        entry, exit_ = nfa.embed(part)
        nfa.eps[start].append(entry)
        nfa.eps[exit_].append(final)
    return minimize(_determinize(nfa, start, final))


def product(a: Dfa, b: Dfa, where: str) -> Dfa:
    """The intersection of two languages."""
    index = {(0, 0): 0}
    order = [(0, 0)]
    trans = []
    k = 0
    while k < len(order):
        p, q = order[k]
        k += 1
        row = {}
        for ch, r in a.trans[p].items():
            s = b.trans[q].get(ch)
            if s is None:
                continue
            if (r, s) not in index:
                if len(order) >= MAX_STATES:
                    raise GrammarTooLarge(f"{where}: the grammar needs more than {MAX_STATES} automaton states")
                index[(r, s)] = len(order)
                order.append((r, s))
            row[ch] = index[(r, s)]
        trans.append(row)
    return minimize(Dfa(tuple(trans), frozenset(i for i, (p, q) in enumerate(order)
                                                   if p in a.accept and q in b.accept)))


def literal(text: str) -> Dfa:
    trans = tuple({ch: i + 1} for i, ch in enumerate(text)) + ({},)
    return Dfa(trans, frozenset([len(text)]))


def repeat_class(chars: str, lo: int, hi: int) -> Dfa:
    """`lo` to `hi` characters, each one of `chars`."""
    trans = tuple({ch: i + 1 for ch in chars} for i in range(hi)) + ({},)
    return Dfa(trans, frozenset(range(lo, hi + 1)))


def strings(words: Iterable[str], where: str) -> Dfa:
    """The finite language `words`, as a trie, minimised."""
    trans: list[dict[str, int]] = [{}]
    accept = set()
    for word in words:
        q = 0
        for ch in word:
            r = trans[q].get(ch)
            if r is None:
                if len(trans) >= 4 * MAX_STATES:
                    raise GrammarTooLarge(f"{where}: the grammar needs more than {4 * MAX_STATES} automaton states")
                r = trans[q][ch] = len(trans)
                trans.append({})
            q = r
        accept.add(q)
    return minimize(Dfa(tuple(trans), frozenset(accept)))


def substitute(dfa: Dfa, pieces: dict[str, Dfa], where: str) -> Dfa:
    """`dfa` with every edge labelled by a key of `pieces` replaced by that piece's language."""
    nfa = _Nfa(where)
    ids = [nfa.state() for _ in range(dfa.n_states)]
    final = nfa.state()
    for q, row in enumerate(dfa.trans):
        for ch, r in row.items():
            if ch in pieces:
                entry, exit_ = nfa.embed(pieces[ch])
                nfa.eps[ids[q]].append(entry)
                nfa.eps[exit_].append(ids[r])
            else:
                nfa.edges[ids[q]].append((ch, ids[r]))
        if q in dfa.accept:
            nfa.eps[ids[q]].append(final)
    return minimize(_determinize(nfa, ids[0], final))


# ------------------------------------------------------------------ the fields


def _number_range(lo: int, hi: int, length: int) -> Dfa:
    """`length`-digit strings (zero-padded) whose value is in [lo, hi]."""
    low, high = f"{lo:0{length}d}", f"{hi:0{length}d}"
    index = {(0, True, True): 0}
    order = [(0, True, True)]
    trans = []
    k = 0
    while k < len(order):
        i, tight_lo, tight_hi = order[k]
        k += 1
        row = {}
        if i < length:
            for d in DIGIT_CHARS:
                if (tight_lo and d < low[i]) or (tight_hi and d > high[i]):
                    continue
                key = (i + 1, tight_lo and d == low[i], tight_hi and d == high[i])
                if key not in index:
                    index[key] = len(order)
                    order.append(key)
                row[d] = index[key]
        trans.append(row)
    return Dfa(tuple(trans), frozenset(j for j, key in enumerate(order) if key[0] == length))


def _residue(modulus: int, residue: int) -> Dfa:
    """Digit strings whose value is `residue` modulo `modulus`."""
    trans = tuple({d: (10 * r + int(d)) % modulus for d in DIGIT_CHARS} for r in range(modulus))
    return Dfa(trans, frozenset([residue % modulus]))


def counter_dfa(spec, where: str) -> Dfa:
    """What a counter prints: (start + step * i) [mod modulo] for every sample index i >= 0, zero-padded to width."""
    width = spec.width
    if spec.step == 0:
        value = spec.start % spec.modulo if spec.modulo else spec.start
        return literal(f"{value:0{width}d}")
    parts = []
    if spec.modulo:
        top = spec.modulo - 1
        modulus = math.gcd(spec.step, spec.modulo)
        parts.append(_number_range(0, min(top, 10 ** width - 1), width))
        for length in range(width + 1, len(str(top)) + 1):
            parts.append(_number_range(10 ** (length - 1), min(top, 10 ** length - 1), length))
    else:
        modulus = spec.step
        longest = max(width, len(str(spec.start)))
        for length in range(width, longest + 1):
            lo = max(spec.start, 10 ** (length - 1) if length > width else 0)
            if lo <= 10 ** length - 1:
                parts.append(_number_range(lo, 10 ** length - 1, length))
        # any longer number is past the start: a non-zero digit and `longest` or more digits
        tail = tuple({d: i + 1 for d in (DIGIT_CHARS[1:] if i == 0 else DIGIT_CHARS)} for i in range(longest + 1))
        parts.append(Dfa(tail + ({d: longest + 1 for d in DIGIT_CHARS},), frozenset([longest + 1])))
    numbers = union(parts, where)
    if modulus > MAX_STATES:
        raise GrammarTooLarge(f"{where}: a counter stepping by {modulus} needs more than {MAX_STATES} automaton "
                              f"states to follow its residue")
    return product(numbers, _residue(modulus, spec.start), where) if modulus > 1 else numbers


def date_dfa(spec, where: str) -> Dfa:
    """Every string the date format prints for a moment between start and end (every day, hour and minute)."""
    days = spec.end.toordinal() - spec.start.toordinal() + 1
    if days > MAX_DATE_DAYS:
        raise GrammarTooLarge(f"{where}: the date range {spec.start}..{spec.end} has {days} days; a grammar "
                              f"enumerates at most {MAX_DATE_DAYS}")
    tokens, _ = parse_date_format(spec.format)
    seen = set()
    for ordinal in range(spec.start.toordinal(), spec.end.toordinal() + 1):
        moment = dt.datetime.fromordinal(ordinal)
        seen.add("".join(text if not is_directive else HOUR if text == "H" else MINUTE if text == "M"
                         else format_date("%" + text, moment) for is_directive, text in tokens))
    days_dfa = strings(sorted(seen), where)
    hours = union([_number_range(0, 23, 2)], where)
    minutes = union([_number_range(0, 59, 2)], where)
    return substitute(days_dfa, {HOUR: hours, MINUTE: minutes}, where)


def _luhn_step(state: tuple, d: int) -> tuple:
    doubled = 2 * d - 9 if d > 4 else 2 * d
    return ((state[1] + doubled) % 10, (state[0] + d) % 10)


def _gs1_step(state: tuple, d: int) -> tuple:
    return ((state[1] + 3 * d) % 10, (state[0] + d) % 10)


def _mod11_step(state: tuple, d: int) -> tuple:
    return ((state[0] + state[1] + 2 * d) % 11, (state[1] + d) % 11)


def _mod10_check(state: tuple) -> str:
    return str(-state[0] % 10)


def _mod11_check(state: tuple) -> str:
    value = -state[0] % 11
    return "X" if value == 10 else str(value)


# (step, check character): the state is (sum as if the payload ended here, sum with the parities swapped) for
# the mod 10 methods and (weighted sum, digit sum) for mod 11; appending a digit moves every earlier digit one
# position further from the right
CHECK_TRACKERS: dict[str, tuple[Callable, Callable]] = {
    "luhn": (_luhn_step, _mod10_check), "gs1": (_gs1_step, _mod10_check), "mod11": (_mod11_step, _mod11_check)}


def with_check_digit(payload: Dfa, method: str, where: str) -> Dfa:
    """The payload's strings, each followed by its check character, through (payload state, check state) pairs.

    An NFA first: where a payload of variable length may go on, its next digit and the check digit are both
    readings of the same character.
    """
    step, check = CHECK_TRACKERS[method]
    nfa = _Nfa(where)
    first = (0, (0, 0))
    ids = {first: nfa.state()}
    final = nfa.state()
    queue = deque([first])
    while queue:
        q, state = key = queue.popleft()
        for ch, r in payload.trans[q].items():
            target = (r, step(state, ord(ch) - 48))
            if target not in ids:
                ids[target] = nfa.state()
                queue.append(target)
            nfa.edges[ids[key]].append((ch, ids[target]))
        if q in payload.accept:
            nfa.edges[ids[key]].append((check(state), final))
    return minimize(_determinize(nfa, ids[first], final))


def field_dfa(name: str, spec: FieldSpec, where: str) -> Dfa:
    where = f"{where}: field {name!r}"
    if spec.pattern is not None:
        value = template_dfa(spec.pattern, {}, where)
    elif spec.date is not None:
        value = date_dfa(spec.date, where)
    elif spec.counter is not None:
        value = counter_dfa(spec.counter, where)
    elif spec.wordlist is not None:
        value = strings(spec.wordlist.words, where)
    else:
        value = strings(spec.choices, where)
    if spec.check_digit is not None:
        value = with_check_digit(value, spec.check_digit, where)
    return value


def template_dfa(template: str, fields: dict[str, Dfa], where: str) -> Dfa:
    parts = []
    for token in parse_template(template).tokens:
        if token[0] == LITERAL:
            parts.append(literal(token[1]))
        elif token[0] == CLASS:
            parts.append(repeat_class(token[1], token[2], token[3]))
        else:
            assert token[0] == FIELD
            parts.append(fields[token[1]])
    return concat(parts, where)


def text_dfa(cfg: TextConfig, where: str = "recipe") -> Dfa:
    """Every line any block of `cfg` can print."""
    used = {name for block in cfg.blocks for line in block.lines for name in parse_template(line).field_names}
    fields = {name: field_dfa(name, spec, where) for name, spec in cfg.fields.items() if name in used}
    lines = [template_dfa(line, fields, f"{where}: blocks[{b}].lines[{j}]")
             for b, block in enumerate(cfg.blocks) for j, line in enumerate(block.lines)]
    return union(lines, where)


# --------------------------------------------------------------------- Grammar


@dataclass(frozen=True)
class Grammar:
    """The lines a recognizer may read, and where they came from (recipe paths or names)."""

    dfa: Dfa
    sources: tuple[str, ...] = ()

    def accepts(self, text: str) -> bool:
        return self.dfa.accepts(text)

    @property
    def n_states(self) -> int:
        return self.dfa.n_states

    def table(self, charset: str) -> dict:
        """The automaton in a recognizer's classes, for `portable.ctc_grammar_beam`."""
        return grammar_table(self.to_json(), charset)

    def to_json(self) -> dict:
        """The automaton as metadata.json carries it: per state, [characters, next state] pairs (characters
        grouped by target), the accepting states; start state 0."""
        transitions = []
        for row in self.dfa.trans:
            by_target: dict[int, list[str]] = {}
            for ch, r in row.items():
                by_target.setdefault(r, []).append(ch)
            transitions.append([["".join(sorted(chars)), r] for r, chars in sorted(by_target.items())])
        return {"format": GRAMMAR_FORMAT, "sources": list(self.sources), "start": 0,
                "accept": sorted(self.dfa.accept), "transitions": transitions}

    @classmethod
    def from_json(cls, data: dict) -> "Grammar":
        if data.get("format") != GRAMMAR_FORMAT:
            raise ValueError(f"grammar format {data.get('format')!r} is not {GRAMMAR_FORMAT}")
        trans = tuple({ch: int(r) for chars, r in row for ch in chars} for row in data["transitions"])
        return cls(Dfa(trans, frozenset(int(q) for q in data["accept"])), tuple(data.get("sources", ())))


def compile_grammar(configs: Sequence[TextConfig], sources: Sequence[str] = ()) -> Grammar:
    """The grammar of one or more recipes' text sections (a run trained on several datasets reads them all)."""
    where = ", ".join(sources) or "recipe"
    dfas = [text_dfa(cfg, src) for cfg, src in zip(configs, list(sources) + ["recipe"] * len(configs))]
    return Grammar(dfas[0] if len(dfas) == 1 else union(dfas, where), tuple(sources))


def recipe_grammar(recipe: str | Path, assets_roots: Sequence[str | Path] = ()) -> Grammar:
    """The grammar of a recipe file (or bundled recipe name). RecipeError for a bad recipe, GrammarTooLarge."""
    from ..recipe import load_recipe

    loaded = load_recipe(recipe, list(assets_roots))
    return compile_grammar([loaded.text], [str(recipe)])


def dataset_text_config(dataset: str | Path) -> tuple[TextConfig, str]:
    """The text section of the recipe a dataset was generated from (manifest.json keeps the recipe verbatim).

    ValueError when the manifest holds no recipe or its text section no longer validates (a word list moved).
    """
    import yaml

    from ..store.format import DatasetError, load_manifest

    try:
        manifest = load_manifest(dataset)
    except DatasetError as exc:
        raise ValueError(str(exc)) from None
    text = manifest.get("recipe")
    source = manifest.get("recipe_source") or str(dataset)
    if not text:
        raise ValueError(f"{dataset}: manifest.json holds no recipe")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{dataset}: the recipe in manifest.json is not valid YAML: {exc}") from None
    base = Path(source).parent if source and not source.startswith("<") else Path(dataset)
    try:
        cfg = TextConfig.model_validate((data.get("text") or {}) if isinstance(data, dict) else {},
                                        context={"base_dir": base})
    except Exception as exc:  # pydantic's ValidationError, or a word list that cannot be read any more
        raise ValueError(f"{dataset}: the text section of its recipe {source} does not load: "
                         f"{str(exc).splitlines()[0]}") from None
    return cfg, source


def run_grammar(run: str | Path) -> Grammar | None:
    """The grammar of the recipes a run was trained on (its training.json names the datasets, their manifests
    hold the recipes; line folders are skipped), or None when they cannot be found."""
    path = Path(run) / "training.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        # a line folder (adapt's pseudo-labelled lines) has no recipe: the run reads its datasets' grammar
        datasets = [entry["path"] for entry in data.get("data", []) if entry.get("kind") != "lines"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not datasets:
        return None
    configs, sources = [], []
    for dataset in datasets:
        try:
            cfg, source = dataset_text_config(dataset)
        except (OSError, ValueError):
            return None
        if source not in sources:
            configs.append(cfg)
            sources.append(source)
    return compile_grammar(configs, sources)


def check_characters(grammar: Grammar, charset: str) -> str:
    """The characters the grammar uses that the recognizer cannot output (such lines can never be read)."""
    used = {ch for row in grammar.dfa.trans for ch in row}
    return "".join(sorted(used - set(charset)))
