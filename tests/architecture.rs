//! The shape of `src/`, read from its `use` lines: no import cycle among modules, and no module
//! importing from a layer above its own (README, "Architecture"). `cargo test --test
//! architecture` runs it alone; it needs no database.
//!
//! A module's imports are every `crate::…` and `super::…` path in its file, outside comments
//! and its test module. Imports between a module and its own descendants are the module tree
//! itself (a parent declares its children, a child may use its parent's helpers), not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may import from its own layer (without a cycle) and from
/// the layers below, never from one above.
const LAYERS: &[(&str, &[&str])] = &[
    ("the domain: types and rules, no I/O", &["domain"]),
    (
        "shared infrastructure",
        &[
            "breaker", "metrics", "logs", "secret", "setting", "tls", "tokens",
        ],
    ),
    ("the system of record", &["store"]),
    ("the Redis cache", &["cache"]),
    ("side effects after commit", &["outbox"]),
    ("the operations", &["service"]),
    ("HTTP: routes, bodies, the envelope", &["http"]),
    ("listeners", &["server"]),
    (
        "the edge: the command line, settings, start-up, commands",
        &["cli", "config", "startup", "commands", "otlp"],
    ),
];

/// Every module of `src/` (as `a::b`), with the file it lives in.
fn modules() -> BTreeMap<String, PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            // The crate root and the binary are not modules of a layer.
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// The file's code without its comments and its test module.
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod ") {
        Some(tests) => &source[..tests],
        None => source,
    };
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths after each `prefix` (`crate::` or `super::`), as segments: `crate::a::b::C` gives
/// `[a, b, C]`, `super::{a, b::{C, D}}` gives `[a]`, `[b, C]` and `[b, D]`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        // `super::` inside `super::super::` is read with the first one.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let (tree, _) = path_tree(rest);
        paths.extend(tree);
    }
    paths
}

/// The paths a `use` tree starting at `text` names, and the text after it.
fn path_tree(text: &str) -> (Vec<Vec<String>>, &str) {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let head: Vec<String> = text[..end]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut rest = &text[end..];
    if !(text[..end].ends_with("::") && rest.starts_with('{')) {
        return (vec![head], rest);
    }
    // A group: each item is a tree of its own, after the same head.
    let mut paths = Vec::new();
    rest = &rest[1..];
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if let Some(after) = rest.strip_prefix('}') {
            return (paths, after);
        }
        if rest.is_empty() {
            return (paths, rest);
        }
        let (items, after) = path_tree(rest);
        for item in items {
            paths.push(head.iter().cloned().chain(item).collect());
        }
        // Skip what a path does not name (`as alias`, `self`, `*`).
        let skip = after.find([',', '}']).unwrap_or(after.len());
        rest = &after[skip..];
    }
}

/// The longest module named by the start of `segments`, below `base`.
fn resolve(
    base: &[&str],
    segments: &[String],
    modules: &BTreeMap<String, PathBuf>,
) -> Option<String> {
    let mut best = None;
    let mut path: Vec<&str> = base.to_vec();
    for segment in segments {
        path.push(segment);
        let name = path.join("::");
        if modules.contains_key(&name) {
            best = Some(name);
        } else {
            break;
        }
    }
    best
}

/// Module → the modules it imports (its ancestors and descendants left out).
fn imports(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, path) in modules {
        let source = std::fs::read_to_string(path).expect("read a module");
        let code = code(&source);
        let own: Vec<&str> = module.split("::").collect();
        let mut targets = BTreeSet::new();
        for segments in paths_after(&code, "crate::") {
            targets.extend(resolve(&[], &segments, modules));
        }
        for segments in paths_after(&code, "super::") {
            // `super` of `a/b.rs` and of `a/b/mod.rs` (both module `a::b`) is `a`.
            let mut base = own[..own.len() - 1].to_vec();
            let mut segments = segments.as_slice();
            while segments.first().is_some_and(|s| s == "super") {
                base.pop();
                segments = &segments[1..];
            }
            targets.extend(resolve(&base, segments, modules));
        }
        targets.retain(|t| !related(module, t));
        edges.insert(module.clone(), targets);
    }
    edges
}

/// One module is the other or contains it.
fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// The first `depth` segments of a module's name.
fn truncated(module: &str, depth: usize) -> String {
    module
        .split("::")
        .take(depth)
        .collect::<Vec<_>>()
        .join("::")
}

/// The strongly connected components of more than one node (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The edges between modules cut to `depth` segments (imports within one of them left out).
fn at_depth(
    edges: &BTreeMap<String, BTreeSet<String>>,
    depth: usize,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut cut: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in edges {
        let from_cut = truncated(from, depth);
        for to in targets {
            let to_cut = truncated(to, depth);
            if !related(&from_cut, &to_cut) {
                cut.entry(from_cut.clone()).or_default().insert(to_cut);
            }
        }
    }
    cut
}

#[test]
fn no_module_imports_in_a_cycle() {
    let modules = modules();
    let edges = imports(&modules);
    let deepest = modules.keys().map(|m| m.split("::").count()).max().unwrap();
    let mut problems = Vec::new();
    for depth in 1..=deepest {
        for component in cycles(&at_depth(&edges, depth)) {
            let mut why = Vec::new();
            for (from, targets) in &edges {
                for to in targets {
                    let (a, b) = (truncated(from, depth), truncated(to, depth));
                    if a != b && component.contains(&a) && component.contains(&b) {
                        why.push(format!("    {from} imports {to}"));
                    }
                }
            }
            problems.push(format!(
                "{} import each other:\n{}",
                component.join(", "),
                why.join("\n")
            ));
        }
    }
    problems.dedup();
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let modules = modules();
    let layer_of = |module: &str| {
        let top = truncated(module, 1);
        LAYERS
            .iter()
            .position(|(_, members)| members.contains(&top.as_str()))
            .unwrap_or_else(|| {
                panic!("`{top}` is in no layer: add it to LAYERS (and to the README)")
            })
    };
    let mut upward = Vec::new();
    for (from, targets) in imports(&modules) {
        for to in targets {
            let (own, theirs) = (layer_of(&from), layer_of(&to));
            if theirs > own {
                upward.push(format!(
                    "{from} ({}) imports {to} ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );
}

/// The command line's definitions are `main`'s and the commands' (which name flags in their
/// messages): nothing else builds itself from them; each part is built from its typed
/// settings, gathered in `config::Config`.
#[test]
fn only_main_and_the_commands_read_the_command_line() {
    let modules = modules();
    let readers: Vec<String> = imports(&modules)
        .into_iter()
        .filter(|(module, targets)| targets.contains("cli") && module != "commands")
        .map(|(module, _)| module)
        .collect();
    assert!(readers.is_empty(), "modules that import cli: {readers:?}");
}

/// The check reads what it should: known imports are found, and a cycle made up is caught.
#[test]
fn the_check_sees_imports_and_would_see_a_cycle() {
    let modules = modules();
    assert!(
        modules.contains_key("http::desk::console::cards"),
        "{modules:?}"
    );
    let mut edges = imports(&modules);
    assert!(edges["service"].contains("store"), "{:?}", edges["service"]);
    assert!(
        edges["http::desk::console::cards"].contains("http::desk::refusal"),
        "a `crate::` path: {:?}",
        edges["http::desk::console::cards"]
    );
    assert!(
        edges["cache::connection"].contains("cache::cluster"),
        "a `super::` path: {:?}",
        edges["cache::connection"]
    );
    assert!(cycles(&at_depth(&edges, 1)).is_empty());
    edges.get_mut("store").unwrap().insert("service".to_owned());
    let found = cycles(&at_depth(&edges, 1));
    assert!(
        found
            .iter()
            .any(|c| c.contains(&"store".to_owned()) && c.contains(&"service".to_owned())),
        "{found:?}"
    );
}
