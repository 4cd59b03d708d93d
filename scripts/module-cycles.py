#!/usr/bin/env python3
"""Finds module import cycles inside each crate: `crate::…` and `super::…` paths from one of a
crate's modules to another, outside comments and `#[cfg(test)]` modules (a module's own
submodules and the crate root do not count). Exits 1 when it finds a cycle.

Usage: scripts/module-cycles.py crates/*/src xtask/src src
"""
import os
import re
import sys


def modules(src):
    """Module path (`stages::train`) -> file, for every .rs file under src."""
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                parts = os.path.relpath(path, src)[:-3].split(os.sep)
                if parts[-1] in ("lib", "main", "mod"):
                    parts = parts[:-1]
                found["::".join(parts)] = path
    return found


def code(path):
    """The file's text before its test module, without comment lines."""
    text = open(path, encoding="utf-8").read()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def edges(mods):
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        text = code(path)
        parent = "::".join(m.split("::")[:-1])
        targets = re.findall(r"\bcrate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text)
        targets += [
            (parent + "::" + t) if parent else t
            for t in re.findall(r"\bsuper::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", text)
        ] if m else []
        for t in targets:
            parts = t.split("::")
            for k in range(len(parts), 0, -1):
                target = "::".join(parts[:k])
                if target in mods:
                    if target != m and not m.startswith(target + "::"):
                        graph[m].add(target)
                    break
    return graph


def cycles(graph):
    state, found = {}, []

    def visit(v, stack):
        state[v] = "open"
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                found.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w, stack)
        stack.pop()
        state[v] = "done"

    for v in sorted(graph):
        if v not in state:
            visit(v, [])
    return found


def main(srcs):
    bad = False
    for src in srcs:
        for cycle in cycles(edges(modules(src))):
            print(f"{src}: module cycle {' -> '.join(cycle)}")
            bad = True
    print("module cycles found" if bad else f"no module cycles in {len(srcs)} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
