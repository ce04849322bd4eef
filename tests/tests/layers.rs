//! The layers of ARCHITECTURE.md, checked from the sources: a module may
//! name (through `crate::`) only modules of its own layer or of layers
//! below it. Comments and `#[cfg(test)]` modules are not read: tests may
//! reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of `src/` (a file `m.rs` or a folder `m/`) that `module`
/// names, outside comments and tests.
fn imports(src: &Path, module: &str) -> BTreeSet<String> {
    let file = src.join(format!("{module}.rs"));
    let files: Vec<PathBuf> = if file.exists() {
        vec![file]
    } else {
        sources(&src.join(module))
    };
    let mut named = BTreeSet::new();
    for file in files {
        for line in code_lines(&file) {
            for path in crate_paths(&line) {
                let first = &path[0];
                if first.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    named.insert(first.clone());
                }
            }
        }
    }
    named.remove(module);
    named
}

/// The lines of `file` before its `#[cfg(test)]` module, comment lines
/// left out.
fn code_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(str::to_owned)
        .collect()
}

/// The `crate::` paths `line` names, each as its segments: `crate::a::B`
/// is `[a, B]`, and `crate::{a, b::C}` (on one line) names `[a]` and
/// `[b, C]`.
fn crate_paths(line: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        let rest = &line[at + "crate::".len()..];
        let texts: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for text in texts {
            let path: String = text
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !segments.is_empty() {
                paths.push(segments);
            }
        }
    }
    paths
}

/// The `.rs` files under `dir`, its folders included.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Checks that each layer's modules name only modules of the layers up to
/// their own; returns what breaks the rule.
fn check(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let allowed: BTreeSet<&str> = layers[..=i]
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect();
        for module in *layer {
            for named in imports(src, module) {
                if !allowed.contains(named.as_str()) {
                    wrong.push(format!("{module} names {named}"));
                }
            }
        }
    }
    wrong
}

fn src(krate: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn sync_core_modules_import_downward_only() {
    let layers: &[&[&str]] = &[
        &["id", "role"],
        &["records", "protocol", "store"],
        &["workflow", "view"],
        &["shape"],
        &["doc", "conflicts"],
        &["policy"],
        &["replica"],
    ];
    assert_eq!(check(&src("sync-core"), layers), Vec::<String>::new());
}

#[test]
fn the_server_s_modules_import_downward_only() {
    // The layers of ARCHITECTURE.md: the domain names, settings, metrics
    // and file formats; the projections (rows computed from records);
    // storage; the engine (no HTTP); the HTTP layer; the command line.
    let layers: &[&[&str]] = &[
        &["domain", "config", "metrics", "export"],
        &["projection"],
        &["storage"],
        &["engine"],
        &["http"],
        &["cli", "demo"],
    ];
    assert_eq!(check(&src("server"), layers), Vec::<String>::new());
}

#[test]
fn every_server_module_has_a_layer() {
    let placed = [
        "domain",
        "config",
        "metrics",
        "export",
        "projection",
        "storage",
        "engine",
        "http",
        "cli",
        "demo",
    ];
    let mut unplaced: Vec<String> = std::fs::read_dir(src("server"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| !["lib", "main"].contains(&m.as_str()) && !placed.contains(&m.as_str()))
        .collect();
    unplaced.sort();
    assert_eq!(unplaced, Vec::<String>::new());
}

#[test]
fn the_engine_knows_nothing_of_http() {
    let axum: Vec<PathBuf> = sources(&src("server").join("engine"))
        .into_iter()
        .filter(|file| {
            code_lines(file).iter().any(|line| {
                ["axum::", "AppError", "AppState"]
                    .iter()
                    .any(|name| line.contains(name))
            })
        })
        .collect();
    assert_eq!(axum, Vec::<PathBuf>::new());
}

#[test]
fn a_module_naming_a_higher_layer_is_caught() {
    let layers: &[&[&str]] = &[&["storage"], &["domain", "projection"]];
    assert_eq!(
        check(&src("server"), layers),
        vec!["storage names domain", "storage names projection"]
    );
}

/// The module path of a file under `src`: `http/auth.rs` is `http::auth`,
/// `http/mod.rs` is `http`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// For each file of `src`, the other files it names through `crate::`
/// paths (each path taken to the longest module it starts with).
fn file_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let mut named = BTreeSet::new();
        for parts in code_lines(file).iter().flat_map(|line| crate_paths(line)) {
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|m| modules.contains(m));
            if let Some(target) = target.filter(|t| *t != module) {
                named.insert(target);
            }
        }
        edges.insert(module, named);
    }
    edges
}

/// A circle of imports among `edges`, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == at) {
            let mut found = path[start..].to_vec();
            found.push(at.to_owned());
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_owned());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_server_files_import_each_other_even_through_others() {
    assert_eq!(circle(&file_imports(&src("server"))), None);
}

#[test]
fn a_circle_of_imports_is_caught() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        circle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
