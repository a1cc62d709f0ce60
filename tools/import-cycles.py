#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a circle.

    tools/import-cycles.py [-v] [DIR ...]      (default: engine/src src)

Each DIR is a crate's source folder (lib.rs at its top). A module is a file:
x.rs or x/mod.rs is `x`, x/y.rs is `x::y`; an inline `mod m { ... }` belongs to
its file. File A depends on file B when A names B by a path that starts at the
crate or goes up: `use crate::b::...`, `crate::b::...` anywhere in code,
`use super::...` (and `super::` paths) from a submodule. A path is taken to
the deepest module file it reaches (`crate::sys::Addr` is sys/mod.rs,
`crate::sys::epoll::Event` sys/epoll.rs). Not counted: a parent naming its own
children (`mod net; pub use net::*;`), paths through a name imported before
(`sys::close` after `use crate::sys`: the `use` counted already), and an
inline test module's `use super::*` (its own file). `#[cfg(test)]` modules
inside a file count as the file; a test-only file of its own is a module like
any other. DIR/bin/*.rs are crates of their own and are left out.

A circle: A depends on B and B, directly or through others, on A. Each one
found is printed with the lines that make its edges, and the exit status is 1.
-v prints every file's edges first, for debugging.

Python 3 alone, no packages: `make check` runs it on the machines that build.
"""

import os
import re
import sys


def strip(text):
    """The text with comments, strings and char literals blanked out (newlines
    kept, so line numbers hold); lifetimes are left alone."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 258]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 2)
                i = n if j < 0 else j + 1
            elif i + 2 < n and text[i + 2] == "'":
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand(tree):
    """The paths of a use tree: `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    depth, start = 0, None
    for k, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = k
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:k], tree[k + 1:]
                parts, d, s = [], 0, 0
                for q, x in enumerate(inner):
                    d += x == "{"
                    d -= x == "}"
                    if x == "," and d == 0:
                        parts.append(inner[s:q])
                        s = q + 1
                parts.append(inner[s:])
                return [p for part in parts if part for p in expand(prefix + part + rest)]
    return [tree] if tree else []


class Crate:
    def __init__(self, top):
        self.top = os.path.normpath(top)
        self.files = {}  # module path (tuple) -> file
        for d, dirs, names in os.walk(self.top):
            rel = os.path.relpath(d, self.top)
            if rel == "bin" or rel.startswith("bin" + os.sep):
                dirs[:] = []
                continue
            dirs.sort()
            parts = () if rel == "." else tuple(rel.split(os.sep))
            for name in sorted(names):
                if not name.endswith(".rs"):
                    continue
                stem = name[:-3]
                if not parts and stem in ("lib", "main"):
                    mod = ()
                elif stem == "mod":
                    mod = parts
                else:
                    mod = parts + (stem,)
                self.files[mod] = os.path.join(d, name)

    def test_only(self):
        """Files declared `#[cfg(test)] mod x;`: fixtures, not part of the graph."""
        out = set()
        for mod, file in self.files.items():
            text = strip(open(file, encoding="utf-8").read())
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
                child = self.files.get(mod + (m.group(1),))
                if child:
                    out.add(child)
        return out

    def target(self, path):
        """The file that an absolute module path reaches deepest."""
        for k in range(len(path), -1, -1):
            if tuple(path[:k]) in self.files:
                return self.files[tuple(path[:k])]
        return None

    def edges(self, mod, file):
        """(target file, line number, path as written) for each reference out of `file`."""
        text = strip(open(file, encoding="utf-8").read())
        # Where each inline `mod m {` opens and closes, to know what `super` is.
        spans, stack, depth = [], [], 0
        opener = re.compile(r"\bmod\s+(\w+)\s*\{")
        k = 0
        while k < len(text):
            m = opener.match(text, k) if text[k] == "m" else None
            if m and (k == 0 or not (text[k - 1].isalnum() or text[k - 1] == "_")):
                stack.append((m.group(1), depth + 1, m.start()))
                depth += 1
                k = m.end()
                continue
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                if stack and stack[-1][1] == depth:
                    name, _, start = stack.pop()
                    spans.append((start, k, name, len(stack)))
                depth -= 1
            k += 1

        def inner(pos):
            found = [(lvl, name) for (a, b, name, lvl) in spans if a <= pos <= b]
            return tuple(name for _, name in sorted(found))

        refs = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for p in expand(m.group(1)):
                refs.append((m.start(), p.lstrip(":")))
        for m in re.finditer(r"(?<![\w$:])(crate|super)((?:::(?:super|\w+))+)", text):
            refs.append((m.start(), m.group(0)))
        out, seen = [], set()
        for pos, p in refs:
            seg = [s for s in p.split("::") if s]
            if not seg or seg[0] not in ("crate", "super", "self"):
                continue
            here = list(mod + inner(pos))
            if seg[0] == "crate":
                seg, base = seg[1:], []
            else:
                if seg[0] == "self":
                    seg = seg[1:]
                    if not seg or seg[0] != "super":
                        continue
                base = here
                while seg and seg[0] == "super":
                    base, seg = base[:-1], seg[1:]
            seg = [s for s in seg if s not in ("self", "*")]
            t = self.target(base + seg)
            line = text.count("\n", 0, pos) + 1
            if t and t != file and (t, line) not in seen:
                seen.add((t, line))
                out.append((t, line, "::".join(p.split("::"))))
        return out


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def loop_through(start, comp, graph):
    """A shortest circle from `start` back to it, within its component."""
    members = set(comp)
    prev, todo = {start: None}, [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                todo.append(w)
    return None


def loops(comp, graph):
    """A shortest circle through each file of the component, each circle once."""
    found, seen = [], set()
    for v in comp:
        path = loop_through(v, comp, graph)
        key = frozenset(zip(path, path[1:]))
        if key not in seen:
            seen.add(key)
            found.append(path)
    return found


def main(argv):
    verbose = "-v" in argv
    dirs = [a for a in argv if a != "-v"] or ["engine/src", "src"]
    failed = False
    for top in dirs:
        crate = Crate(top)
        graph, why = {}, {}
        tests = crate.test_only()
        for mod, file in sorted(crate.files.items(), key=lambda kv: kv[1]):
            if file in tests:
                if verbose:
                    print(f"{file}: test-only, left out")
                continue
            es = [e for e in crate.edges(mod, file) if e[0] not in tests]
            graph[file] = {t for t, _, _ in es}
            for t, line, p in es:
                why.setdefault((file, t), []).append(f"{file}:{line}: {p}")
            if verbose:
                print(f"{file}:")
                for t in sorted(graph[file]):
                    lines = ", ".join(str(line) for u, line, _ in es if u == t)
                    print(f"    -> {t}  (line {lines})")
        comps = cycles(graph)
        for comp in comps:
            failed = True
            for path in loops(comp, graph):
                print(f"import cycle in {top}: " + " -> ".join(path))
                for a, b in zip(path, path[1:]):
                    for w in why[(a, b)]:
                        print(f"    {w}")
        if not comps:
            print(f"{top}: no import cycle among {len(graph)} files")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
