#!/usr/bin/env python3
"""Checks the module layers of edgerelay's src/: no import cycle between
files, no import from a lower layer to a higher one.

Usage: python3 scripts/check_layers.py [--edges] [SRC_DIR]
       (default SRC_DIR: the repo's src/; --edges lists every import edge found)

A module may import only modules in its own or a lower layer, and no file may
take part in an import cycle. Exit status 1 if anything is found, 0 otherwise;
the last line is always a one-line summary.

What counts as an import edge, from one file to the file that defines the item:
- every leaf of a `use` tree starting with `crate::`, `super::`, `self::` or a
  child module's name, wherever the `use` stands;
- paths in code starting with `crate::`, `$crate::`, `super::`, `self::`, a
  child module's name, or a module brought in by `use` (`use super::wire;`
  then `wire::Expect` is an edge to wire.rs);
- `mod x;` is a declaration, not an edge.
A path is followed to the file that defines its item: through submodules, and
through `use` declarations of the module it names, so `crate::smtp::Outcome`,
which smtp/mod.rs re-exports with `pub use outcome::Outcome;`, is an edge to
smtp/outcome.rs, not to smtp/mod.rs. A glob (`use super::*`) is an edge to the
module's own file.

Code under `#[cfg(test)]` (inline `mod tests { ... }` blocks, and files
declared with `#[cfg(test)] mod tests;`) is checked against the layers but
left out of cycle detection: nothing imports a test module, and a test
reaching into a sibling does not tie the shipped code in a knot. So
`mod tests { use super::*; }` and a tests.rs that imports its parent are
never reported. A parent that calls into, or re-exports from, a child that in
turn imports an item defined in the parent is a cycle and is reported.

Python 3.11, standard library only. Reads the text; does not run cargo.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The layers, lowest first: top-level module name -> layer number. A module
# may import only modules of its own or a lower layer.
LAYERS: dict[str, int] = {
    "config": 0,
    "message": 1,
    "smtp": 1,
    "queue": 2,
    "events": 2,
    "inbound": 2,
    "accept": 3,
    "delivery": 4,
    "http": 5,
    "settings": 6,
    "diagnostics": 7,
    "edge": 8,
}

ModPath = tuple[str, ...]

# --- Lexing: blank comments, strings and char literals, keep the lines. ---

_LEXEME = re.compile(
    r"""(?P<line>//[^\n]*)
      | (?P<block>/\*)
      | (?P<raw>(?<![\w])[bc]?r(?P<hashes>\#*)")
      | (?P<str>")
      | (?P<chr>'(?:[^'\\\n]|\\(?:[nrt0'"\\]|x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}))')
    """,
    re.X,
)
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
_BLOCK_MARK = re.compile(r"/\*|\*/")
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(text: str) -> str:
    return _NOT_NEWLINE.sub(" ", text)


def clean(source: str) -> str:
    """The source with comments and literals replaced by spaces; same lines."""
    out: list[str] = []
    pos = 0
    while True:
        m = _LEXEME.search(source, pos)
        if m is None:
            out.append(source[pos:])
            return "".join(out)
        out.append(source[pos : m.start()])
        if m.group("line") is not None:
            end = m.end()
        elif m.group("block") is not None:
            depth, end = 0, len(source)
            for mark in _BLOCK_MARK.finditer(source, m.start()):
                depth += 1 if mark.group() == "/*" else -1
                if depth == 0:
                    end = mark.end()
                    break
        elif m.group("raw") is not None:
            closing = '"' + m.group("hashes")
            found = source.find(closing, m.end())
            end = len(source) if found < 0 else found + len(closing)
        elif m.group("str") is not None:
            tail = _STRING_END.match(source, m.end())
            end = len(source) if tail is None else tail.end()
        else:
            end = m.end()
        out.append(_blank(source[m.start() : end]))
        pos = end


# --- Parsing one file. ---


@dataclass
class Import:
    """One leaf of a `use` tree: `segs` resolved from module `scope`."""

    segs: list[str]
    scope: ModPath
    line: int


@dataclass
class Scope:
    """A module: a file, or an inline `mod x { ... }` inside one."""

    path: ModPath
    file: Path
    imports: dict[str, Import] = field(default_factory=dict)
    globs: list[Import] = field(default_factory=list)
    defs: set[str] = field(default_factory=set)
    test_children: set[str] = field(default_factory=set)


@dataclass
class Reference:
    """A path found in a file, to be resolved once every file is read."""

    file: Path
    scope: ModPath
    line: int
    segs: list[str]
    in_test: bool
    module_alias: str | None = None  # set for `use` leaves that name a module


@dataclass
class Edge:
    src: Path
    dst: Path
    line: int
    text: str
    test: bool


# Scanning runs a few simple patterns (each fast in `re`) and merges their
# hits by position, rather than one slow alternation over every character.
_KEYWORD = re.compile(r"(?:mod|use|fn|struct|enum|trait|type|const|union|static|macro_rules)\b")
_MOD_AT = re.compile(r"mod\s+([A-Za-z_]\w*)\s*([;{])")
_DEF_AT = re.compile(
    r"(?:fn|struct|enum|trait|type|const|union|static(?:\s+mut)?)\s+"
    r"(?!fn\b|unsafe\b|async\b|extern\b)([A-Za-z_]\w*)"
)
_MACRO_AT = re.compile(r"macro_rules!\s*([A-Za-z_]\w*)")
_BRACE = re.compile(r"[{}]")
_DOUBLE_COLON = re.compile(r"::")
_PATH_AT = re.compile(r"(\$crate|[A-Za-z_]\w*)((?:\s*::\s*(?:[A-Za-z_]\w*|\*))+)")
_BRACKET = re.compile(r"[\[\]]")
_BLANKS = re.compile(r"\s*")
_ATTRIBUTE = re.compile(r"\#\s*(?P<inner>!?)\s*\[")
_CFG_TEST = re.compile(r"^\s*cfg\s*\((?!.*\bnot\s*\(\s*test\b).*\btest\b", re.S)
_ITEM_END = re.compile(r"[;{}()\[\]]")
_MOD_DECL = re.compile(r"^(?:pub\s*(?:\([^)]*\))?\s*)?mod\s+([A-Za-z_]\w*)\s*;")
_IN_VISIBILITY = re.compile(r"pub\s*\(\s*in\s+$")
_USE_PART = re.compile(r"\$?[A-Za-z_]\w*|::|[{},*;]")
_SPACES = re.compile(r"\s+")


def _brace_pairs(text: str) -> dict[int, int]:
    pairs, stack = {}, []
    for m in _BRACE.finditer(text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _bracket_end(text: str, open_at: int) -> int:
    depth = 0
    for m in _BRACKET.finditer(text, open_at):
        depth += 1 if m.group() == "[" else -1
        if depth == 0:
            return m.start()
    return len(text)


def _test_spans(text: str, braces: dict[int, int]) -> tuple[list[tuple[int, int]], set[str], bool]:
    """Spans of items under `#[cfg(test)]`, names of `mod x;` among them,
    and whether the whole file is test code (`#![cfg(test)]`)."""
    spans: list[tuple[int, int]] = []
    test_mods: set[str] = set()
    whole_file = False
    for attr in _ATTRIBUTE.finditer(text):
        close = _bracket_end(text, attr.end() - 1)
        if not _CFG_TEST.match(text[attr.end() : close]):
            continue
        if attr.group("inner"):
            whole_file = True
            continue
        # The item after this attribute (and any attributes that follow it).
        item = _BLANKS.match(text, close + 1).end()
        while (nxt := _ATTRIBUTE.match(text, item)) is not None:
            item = _BLANKS.match(text, _bracket_end(text, nxt.end() - 1) + 1).end()
        depth, end = 0, len(text)
        for m in _ITEM_END.finditer(text, item):
            ch = m.group()
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and ch == ";":
                end = m.end()
                break
            elif depth == 0 and ch == "{":
                end = braces.get(m.start(), len(text)) + 1
                break
        spans.append((attr.start(), end))
        decl = _MOD_DECL.match(text[item:end])
        if decl:
            test_mods.add(decl.group(1))
    return spans, test_mods, whole_file


def _parse_use_tree(body: str, base_line: int) -> list[tuple[list[str], str | None, int, bool]]:
    """Leaves of a use tree: (segments, bound name, line, is glob)."""
    tokens: list[tuple[str, int]] = []
    line = base_line
    last = 0
    for m in _USE_PART.finditer(body):
        line += body.count("\n", last, m.start())
        last = m.start()
        tokens.append((m.group(), line))
    leaves: list[tuple[list[str], str | None, int, bool]] = []
    pos = 0

    def tree(prefix: list[str]) -> None:
        nonlocal pos
        segs = list(prefix)
        if pos < len(tokens) and tokens[pos][0] == "::":  # `use ::std::...`
            pos += 1
            segs.append("::")
        while pos < len(tokens):
            tok, tok_line = tokens[pos]
            if tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos][0] != "}":
                    if tokens[pos][0] == ",":
                        pos += 1
                        continue
                    tree(segs)
                pos += 1
                return
            if tok == "*":
                pos += 1
                leaves.append((segs, None, tok_line, True))
                return
            if tok in (",", "}", ";", "::"):
                return
            pos += 1
            if tok == "self" and segs == list(prefix) and prefix:
                name: str | None = prefix[-1]
                leaf = list(prefix)
            else:
                leaf = segs + [tok]
                name = tok
            if pos + 1 < len(tokens) and tokens[pos][0] == "as":
                alias = tokens[pos + 1][0]
                name = None if alias == "_" else alias
                pos += 2
            if pos < len(tokens) and tokens[pos][0] == "::":
                pos += 1
                segs = leaf
                continue
            leaves.append((leaf, name, tok_line, False))
            return

    tree([])
    return [leaf for leaf in leaves if leaf[0] and leaf[0][0] != "::"]


def _file_module(rel: Path, has_lib: bool) -> ModPath | None:
    parts = rel.with_suffix("").parts
    if parts[0] == "bin" or (parts == ("main",) and has_lib):
        return None  # another crate
    if parts in (("lib",), ("main",)):
        return ()
    if parts[-1] == "mod":
        return tuple(parts[:-1])
    return tuple(parts)


class Crate:
    def __init__(self, src: Path):
        self.src = src
        self.root = src.parent
        self.scopes: dict[ModPath, Scope] = {}
        self.file_scopes: dict[Path, ModPath] = {}
        self.refs: list[Reference] = []
        self.whole_test_files: set[Path] = set()
        has_lib = (src / "lib.rs").exists()
        files = sorted(p for p in src.rglob("*.rs") if p.is_file())
        for f in files:
            mod = _file_module(f.relative_to(src), has_lib)
            if mod is not None and mod not in self.scopes:
                self.scopes[mod] = Scope(mod, f)
                self.file_scopes[f] = mod
        for f, mod in list(self.file_scopes.items()):
            self._read(f, mod)

    def show(self, f: Path) -> str:
        return f.relative_to(self.root).as_posix()

    def _read(self, f: Path, mod: ModPath) -> None:
        text = clean(f.read_text(encoding="utf-8", errors="replace"))
        braces = _brace_pairs(text)
        spans, test_mods, whole = _test_spans(text, braces)
        if whole:
            self.whole_test_files.add(f)
        self.scopes[mod].test_children |= test_mods
        spans.sort()

        def in_test(pos: int) -> bool:
            return any(a <= pos < b for a, b in spans)

        events: list[tuple[int, str]] = [(m.start(), m.group()) for m in _BRACE.finditer(text)]
        for m in _KEYWORD.finditer(text):
            if m.start() == 0 or not (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_$"):
                events.append((m.start(), "kw"))
        path_end = -1
        for m in _DOUBLE_COLON.finditer(text):
            if m.start() < path_end:
                continue
            # Walk back over blanks and the first segment's name.
            end = m.start()
            while end > 0 and text[end - 1] in " \t\r\n":
                end -= 1
            start = end
            while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
                start -= 1
            if start == end or (start > 0 and text[start - 1] == ":"):
                continue  # `<T as X>::`, `::std::`
            path = _PATH_AT.match(text, start)
            if path is None:
                continue
            path_end = path.end()
            events.append((start, "path"))
        events.sort()

        line = 1
        last = 0
        depth = 0
        # Open inline modules: (path, brace depth inside them).
        stack: list[tuple[ModPath, int]] = [(mod, 0)]
        inline_opening: dict[int, str] = {}
        skip_until = -1
        for pos, kind in events:
            if pos < skip_until:
                continue
            line += text.count("\n", last, pos)
            last = pos
            scope = stack[-1][0]
            if kind == "{":
                depth += 1
                name = inline_opening.pop(pos, None)
                if name is not None:
                    inner = scope + (name,)
                    self.scopes.setdefault(inner, Scope(inner, f))
                    stack.append((inner, depth))
            elif kind == "}":
                if len(stack) > 1 and depth == stack[-1][1]:
                    stack.pop()
                depth -= 1
            elif kind == "path":
                if _IN_VISIBILITY.search(text, max(0, pos - 20), pos):
                    continue
                m = _PATH_AT.match(text, pos)
                segs = [m.group(1)] + [s for s in _SPACES.sub("", m.group(2)).split("::") if s]
                self.refs.append(Reference(f, scope, line, segs, in_test(pos)))
            elif text.startswith("use", pos):
                end = text.find(";", pos)
                end = len(text) if end < 0 else end
                skip_until = end
                self._add_use(f, scope, text[pos + 3 : end], line, in_test(pos))
            elif (m := _MOD_AT.match(text, pos)) is not None:
                if m.group(2) == "{":
                    inline_opening[m.end() - 1] = m.group(1)
                    if in_test(pos):
                        self.scopes[scope].test_children.add(m.group(1))
            elif (m := _DEF_AT.match(text, pos) or _MACRO_AT.match(text, pos)) is not None:
                if depth == stack[-1][1]:
                    self.scopes[scope].defs.add(m.group(1))

    def _add_use(self, f: Path, scope: ModPath, body: str, line: int, test: bool) -> None:
        sc = self.scopes[scope]
        for segs, name, leaf_line, glob in _parse_use_tree(body, line):
            imp = Import(segs, scope, leaf_line)
            if glob:
                sc.globs.append(imp)
                self.refs.append(Reference(f, scope, leaf_line, segs + ["*"], test))
                continue
            if name is not None:
                sc.imports.setdefault(name, imp)
            self.refs.append(Reference(f, scope, leaf_line, segs, test, module_alias=name))

    # --- Resolution ---

    def resolve(self, scope: ModPath, segs: list[str], hops: int = 0) -> tuple[ModPath, bool] | None:
        """The module whose file defines what `segs` names, seen from `scope`,
        and whether the path names that module itself. None: not in this crate."""
        if hops > 32 or not segs:
            return None
        first, rest = segs[0], segs[1:]
        if first in ("crate", "$crate"):
            cur: ModPath = ()
        elif first == "self":
            cur = scope
        elif first == "super":
            if not scope:
                return None
            cur = scope[:-1]
        elif scope + (first,) in self.scopes:
            cur = scope + (first,)
        elif first in self.scopes[scope].imports:
            imp = self.scopes[scope].imports[first]
            if imp.segs == [first]:
                return None  # `use serde;`: an external crate
            return self.resolve(imp.scope, imp.segs + rest, hops + 1)
        else:
            return None
        while rest and rest[0] == "super":
            if not cur:
                return None
            cur, rest = cur[:-1], rest[1:]
        return self._walk(cur, rest, hops)

    def _walk(self, cur: ModPath, rest: list[str], hops: int) -> tuple[ModPath, bool] | None:
        for i, seg in enumerate(rest):
            if seg == "*":
                return cur, False
            if cur + (seg,) in self.scopes:
                cur = cur + (seg,)
                continue
            sc = self.scopes.get(cur)
            if sc is None or seg in sc.defs:
                return cur, False
            imp = sc.imports.get(seg)
            if imp is not None:
                found = self.resolve(imp.scope, imp.segs + rest[i + 1 :], hops + 1)
                return found if found is not None else (cur, False)
            for glob in sc.globs:
                target = self.resolve(glob.scope, glob.segs + ["*"], hops + 1)
                if target is None:
                    continue
                tsc = self.scopes.get(target[0])
                if tsc and (seg in tsc.defs or seg in tsc.imports or target[0] + (seg,) in self.scopes):
                    return self._walk(target[0], rest[i:], hops + 1)
            return cur, False  # an item of `cur` (a variant, an associated item, ...)
        return cur, True

    def is_test_file(self, f: Path) -> bool:
        if f in self.whole_test_files:
            return True
        mod = self.file_scopes[f]
        for n in range(1, len(mod)):
            parent = self.scopes.get(mod[:n])
            if parent and mod[n] in parent.test_children:
                return True
        return False

    def edges(self) -> list[Edge]:
        test_files = {f for f in self.file_scopes if self.is_test_file(f)}
        edges: list[Edge] = []
        pending_aliases: list[tuple[Reference, ModPath]] = []
        used_aliases: set[tuple[ModPath, str]] = set()
        for ref in self.refs:
            first = ref.segs[0]
            relative = first not in ("crate", "$crate", "self", "super")
            if relative and ref.module_alias is None and "*" not in ref.segs:
                # A bare path in code or a bare `use` leaf: only a child module
                # or a module imported by name makes it ours.
                sc = self.scopes[ref.scope]
                if ref.scope + (first,) not in self.scopes:
                    imp = sc.imports.get(first)
                    if imp is None:
                        continue
                    named = self.resolve(imp.scope, imp.segs)
                    if named is None or not named[1]:
                        continue
                    used_aliases.add((ref.scope, first))
            found = self.resolve(ref.scope, ref.segs)
            if found is None:
                continue
            mod, names_module = found
            if ref.module_alias is not None and names_module:
                pending_aliases.append((ref, mod))
                continue
            edges.append(self._edge(ref, mod, test_files))
        for ref, mod in pending_aliases:
            if (ref.scope, ref.module_alias) not in used_aliases:
                edges.append(self._edge(ref, mod, test_files))
        return [e for e in edges if e.src != e.dst]

    def _edge(self, ref: Reference, mod: ModPath, test_files: set[Path]) -> Edge:
        return Edge(
            ref.file,
            self.scopes[mod].file,
            ref.line,
            "::".join(ref.segs),
            ref.in_test or ref.file in test_files,
        )


# --- Checks ---


def find_cycles(edges: list[Edge]) -> list[list[Path]]:
    """One shortest cycle through each file that lies on a cycle, until every
    such file is covered."""
    graph: dict[Path, set[Path]] = {}
    for e in edges:
        if not e.test:
            graph.setdefault(e.src, set()).add(e.dst)
            graph.setdefault(e.dst, set())
    components = _strongly_connected(graph)
    cycles: list[list[Path]] = []
    for comp in components:
        if len(comp) < 2:
            continue
        members = set(comp)
        covered: set[Path] = set()
        for start in sorted(comp, key=str):
            if start in covered:
                continue
            cycle = _shortest_cycle(graph, members, start)
            covered.update(cycle)
            cycles.append(cycle)
    return cycles


def _strongly_connected(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    on_stack: set[Path] = set()
    stack: list[Path] = []
    out: list[list[Path]] = []
    counter = 0
    for root in sorted(graph, key=str):
        if root in index:
            continue
        work: list[tuple[Path, list[Path]]] = [(root, sorted(graph[root], key=str))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt], key=str)))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp, key=str))
    return out


def _shortest_cycle(graph: dict[Path, set[Path]], members: set[Path], start: Path) -> list[Path]:
    previous: dict[Path, Path] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & members, key=str):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path))
                if nxt not in previous:
                    previous[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return [start]


def check(src: Path) -> tuple[list[str], str, bool]:
    crate = Crate(src)
    edges = crate.edges()
    lines: list[str] = []

    first_edge: dict[tuple[Path, Path], Edge] = {}
    for e in sorted(edges, key=lambda e: (e.line, e.text)):
        if not e.test:
            first_edge.setdefault((e.src, e.dst), e)
    cycles = find_cycles(edges)
    for cycle in cycles:
        chain = cycle + [cycle[0]]
        lines.append("cycle: " + " -> ".join(crate.show(f) for f in chain))
        for a, b in zip(chain, chain[1:]):
            e = first_edge[(a, b)]
            lines.append(f"    {crate.show(a)}:{e.line} uses {e.text} ({crate.show(b)})")

    tops = sorted({mod[0] for mod in crate.scopes if mod})
    undeclared = [t for t in tops if t not in LAYERS]
    for top in undeclared:
        where = crate.show(crate.scopes[(top,)].file)
        lines.append(f"undeclared module: `{top}` ({where}) is not in LAYERS in scripts/check_layers.py")
        importers: dict[Path, Edge] = {}
        for e in sorted(edges, key=lambda e: e.line):
            src_mod, dst_mod = crate.file_scopes[e.src], crate.file_scopes[e.dst]
            if dst_mod[:1] == (top,) and src_mod[:1] != (top,):
                importers.setdefault(e.src, e)
        for f in sorted(importers, key=crate.show):
            e = importers[f]
            lines.append(f"    imported by {crate.show(f)}:{e.line} ({e.text})")

    upward = 0
    seen: set[tuple[Path, int, str]] = set()
    for e in sorted(edges, key=lambda e: (crate.show(e.src), e.line, e.text)):
        src_mod, dst_mod = crate.file_scopes[e.src], crate.file_scopes[e.dst]
        if not src_mod or not dst_mod:
            continue
        a, b = src_mod[0], dst_mod[0]
        if a not in LAYERS or b not in LAYERS or LAYERS[a] >= LAYERS[b]:
            continue
        key = (e.src, e.line, e.text)
        if key in seen:
            continue
        seen.add(key)
        upward += 1
        lines.append(
            f"upward import: {crate.show(e.src)}:{e.line}: {e.text}: "
            f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]}, {crate.show(e.dst)})"
        )

    failed = bool(cycles or undeclared or upward)

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    summary = (
        f"check_layers: {count(len(crate.file_scopes), 'file')}, {count(len(edges), 'import')}: "
        + (
            ", ".join(
                [
                    count(len(cycles), "cycle"),
                    count(upward, "upward import"),
                    count(len(undeclared), "undeclared module"),
                ]
            )
            if failed
            else "no cycle, no upward import, every module declared"
        )
    )
    return lines, summary, failed


def main(argv: list[str]) -> int:
    args = argv[1:]
    list_edges = "--edges" in args
    args = [a for a in args if a != "--edges"]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "src"
    src = src.resolve()
    if not src.is_dir():
        print(f"check_layers: {src} is not a directory", file=sys.stderr)
        return 2
    if list_edges:
        crate = Crate(src)
        for e in sorted(crate.edges(), key=lambda e: (crate.show(e.src), e.line, e.text)):
            test = " (test)" if e.test else ""
            print(f"{crate.show(e.src)}:{e.line}: {e.text} -> {crate.show(e.dst)}{test}")
        return 0
    lines, summary, failed = check(src)
    for line in lines:
        print(line)
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
