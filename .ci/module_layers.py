#!/usr/bin/env python3
"""Checks that the modules of a Rust crate form layers: at every level of the module tree,
the references between sibling modules (through `crate::`, `super::` and `self::` paths,
including grouped `use` trees) must not form a cycle. A child using its parent's own items,
or a parent re-exporting its children, is the normal shape of a module and is not counted.
Test-only modules (`#[cfg(test)] mod x;` and inline `#[cfg(test)] mod x { ... }`) are left
out, because tests may reach across layers.

Where ARCHITECTURE.md lists what a module may import, the script checks those lists too
(ALLOWED below): an import of a sibling that is not on the list fails, even without a cycle.
Between crates, the compiler enforces the layers: a crate can only import its dependencies;
`--crates` checks the workspace's dependency graph (cargo metadata) against CRATES below, so a
new dependency against the grain fails here before anyone builds on it.

Usage: module_layers.py [--crates] CRATE_SRC_DIR [...]   (exit 1 and the offence when found)
Add --graph to print each level's edges.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

# What each top-level module of a crate may import, as ARCHITECTURE.md draws it:
# {crate src dir: {module: {modules it may import}}}. Levels not listed are checked for
# cycles only.
ALLOWED = {
    "crates/core/src": {
        "crd": set(),
        "engine": {"crd"},
        "policy": {"engine", "crd"},
    },
    "crates/operator/src": {
        "shutdown": set(),
        "telemetry": set(),
        "controller": {"telemetry"},
    },
}

# The workspace crates each crate may depend on (normal dependencies), as ARCHITECTURE.md
# draws them. Dev-dependencies are free: tests may reach across layers.
CRATES = {
    "kube-request-info": set(),
    "servicerefresh-core": set(),
    "servicerefresh-sim": {"kube-request-info"},
    "servicerefresh-operator": {"servicerefresh-core", "kube-request-info"},
    "servicerefresh-admin": {"servicerefresh-core", "servicerefresh-operator"},
    "servicerefresh-cli": {"servicerefresh-core"},
    "servicerefresh-dev": {"servicerefresh-core", "servicerefresh-operator", "servicerefresh-sim"},
    "servicerefresh": {
        "servicerefresh-core",
        "servicerefresh-operator",
        "servicerefresh-admin",
        "servicerefresh-cli",
        "servicerefresh-dev",
    },
}


def strip_comments_and_strings(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            hashes = m.group(1)
            end = text.find('"' + hashes, i + len(m.group(0)))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4] + "  "):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_index):
    depth = 0
    for k in range(open_index, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text) - 1


def remove_inline_test_modules(text):
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
    while True:
        m = pattern.search(text)
        if not m:
            return text
        end = matching_brace(text, m.end() - 1)
        text = text[: m.start()] + text[end + 1:]


def test_only_children(text):
    return set(re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text))


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']"""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"\s+as\s+" + IDENT + "$", "", tree)]
    prefix = tree[:brace]
    inner = tree[brace + 1: tree.rfind("}")]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    parts.append(current)
    result = []
    for part in parts:
        if part.strip():
            result.extend(prefix + p for p in expand_use_tree(part))
    return result


def referenced_paths(text):
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for path in expand_use_tree(m.group(1)):
            paths.append(re.sub(r"\s+", "", path))
    body = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::" + IDENT + r")+)", body):
        paths.append(m.group(1))
    return paths


def resolve(path, current, modules):
    segments = path.split("::")
    if segments[0] == "crate":
        base, rest = [], segments[1:]
    elif segments[0] in ("super", "self"):
        base = list(current)
        rest = segments
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        # A path relative to the current module through a child module declared in it.
        base, rest = list(current), segments
        if not rest or tuple(base + [rest[0]]) not in modules:
            return None
    target = list(base)
    for segment in rest:
        if tuple(target + [segment]) in modules:
            target.append(segment)
        else:
            break
    return tuple(target)


def collect(src):
    root_file = next((f for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))), None)
    if root_file is None:
        sys.exit(f"{src}: no lib.rs or main.rs")
    modules, texts = {}, {}

    def visit(module, path):
        raw = open(path, encoding="utf-8").read()
        text = strip_comments_and_strings(raw)
        test_children = test_only_children(text)
        text = remove_inline_test_modules(text)
        modules[module] = path
        texts[module] = text
        directory = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        child_dir = directory if stem in ("lib", "main", "mod") else os.path.join(directory, stem)
        for m in re.finditer(r"(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            name = m.group(1)
            if name in test_children:
                continue
            for candidate in (os.path.join(child_dir, name + ".rs"), os.path.join(child_dir, name, "mod.rs")):
                if os.path.exists(candidate):
                    visit(module + (name,), candidate)
                    break
        for m in re.finditer(r"(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{", text):
            modules.setdefault(module + (m.group(1),), path)

    visit((), os.path.join(src, root_file))
    return modules, texts


def find_cycle(nodes, edges):
    state, stack = {}, []

    def dfs(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if state.get(node) is None:
            found = dfs(node)
            if found:
                return found
    return None


def check(src, show_graph):
    modules, texts = collect(src)
    levels = defaultdict(lambda: defaultdict(set))
    for module, text in texts.items():
        for path in referenced_paths(text):
            target = resolve(path, module, modules)
            if target is None:
                continue
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common == len(module) or common == len(target):
                continue  # parent and descendant
            parent = module[:common]
            levels[parent][module[common]].add(target[common])
    ok = True
    allowed = ALLOWED.get(os.path.normpath(src), {})
    for source, targets in sorted(levels[()].items()):
        if source not in allowed:
            continue
        for target in sorted(targets - allowed[source]):
            ok = False
            print(f"{src}: {source} imports {target}, which ARCHITECTURE.md does not allow")
    for parent in sorted(levels):
        edges = levels[parent]
        label = "::".join(("crate",) + parent)
        if show_graph:
            for source in sorted(edges):
                print(f"{src} {label}: {source} -> {', '.join(sorted(edges[source]))}")
        nodes = set(edges) | {t for ts in edges.values() for t in ts}
        cycle = find_cycle(nodes, edges)
        if cycle:
            ok = False
            print(f"{src}: module cycle under {label}: {' -> '.join(cycle)}")
    return ok


def check_crates():
    import json
    import subprocess

    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True, capture_output=True, text=True).stdout)
    members = {package["name"]: package for package in metadata["packages"]}
    ok = True
    for name, package in sorted(members.items()):
        if name not in CRATES:
            ok = False
            print(f"crate {name} is not in .ci/module_layers.py's CRATES: say where it sits")
            continue
        for dependency in package["dependencies"]:
            if dependency["name"] in members and dependency.get("kind") is None \
                    and dependency["name"] not in CRATES[name]:
                ok = False
                print(f"crate {name} depends on {dependency['name']}, which ARCHITECTURE.md does not allow")
    return ok


def main():
    args = [a for a in sys.argv[1:] if a not in ("--graph", "--crates")]
    if not args and "--crates" not in sys.argv:
        sys.exit(__doc__)
    results = [check(src, "--graph" in sys.argv) for src in args]
    if "--crates" in sys.argv:
        results.append(check_crates())
    if all(results):
        print(f"layers hold: {', '.join(args + (['the crate graph'] if '--crates' in sys.argv else []))}")
    else:
        sys.exit(1)


if __name__ == "__main__":
    main()
