//! The layers of ARCHITECTURE.md, checked from the sources: a module may
//! name (through `crate::`) only modules of its own layer or of layers
//! below it. Comments and `#[cfg(test)]` modules are not read: tests may
//! reach anywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules of `src/` (a file `m.rs` or a folder `m/`) that `module`
/// names, outside comments and tests.
fn imports(src: &Path, module: &str) -> BTreeSet<String> {
    let file = src.join(format!("{module}.rs"));
    let files: Vec<PathBuf> = if file.exists() {
        vec![file]
    } else {
        std::fs::read_dir(src.join(module))
            .unwrap_or_else(|e| panic!("module {module}: {e}"))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect()
    };
    let mut named = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(rest.len());
                if end > 0 {
                    named.insert(rest[..end].to_owned());
                }
            }
        }
    }
    named.remove(module);
    named
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
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src")
}

#[test]
fn sync_core_modules_import_downward_only() {
    let layers: &[&[&str]] = &[
        &["id", "role"],
        &["records", "protocol", "store"],
        &["workflow"],
        &["shape"],
        &["doc", "conflicts"],
        &["policy"],
        &["replica"],
    ];
    assert_eq!(check(&src("sync-core"), layers), Vec::<String>::new());
}

#[test]
fn the_server_s_lower_layers_import_downward_only() {
    // The domain names, then the projections (rows computed from records),
    // then storage. The layers above are listed in ARCHITECTURE.md.
    let layers: &[&[&str]] = &[&["domain"], &["projection"], &["storage"]];
    assert_eq!(check(&src("server"), layers), Vec::<String>::new());
}

#[test]
fn a_module_naming_a_higher_layer_is_caught() {
    let layers: &[&[&str]] = &[&["storage"], &["domain", "projection"]];
    assert_eq!(
        check(&src("server"), layers),
        vec!["storage names domain", "storage names projection"]
    );
}
