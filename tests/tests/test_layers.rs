//! The modules of `asynq-core` form layers: each imports only from modules below it, so the
//! graph of imports between them has no cycle (`docs/architecture.md` draws it).
//!
//! A module is a file of `asynq-core/src/` or a directory with its files; its imports are the
//! `crate::...` paths in its code (test modules and comments left out). A cycle fails the test
//! with the modules that form it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module (kept last, after `#[cfg(test)]`) and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `crate::` in `code`, and those of `crate::{a, b::c}` groups.
fn imported(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                names.insert(first_segment(item.trim()));
            }
        } else {
            names.insert(first_segment(rest));
        }
    }
    names
}

fn first_segment(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The modules of `asynq-core` and, for each, the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../asynq-core/src");
    let mut paths = Vec::new();
    files(&src, &mut paths);
    let mut code_of: BTreeMap<String, String> = BTreeMap::new();
    for path in paths {
        let rel = path.strip_prefix(&src).expect("under src");
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a file name")
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || rel.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        code_of.entry(module).or_default().push_str(&code(&text));
    }
    code_of
        .iter()
        .map(|(module, code)| {
            let deps = imported(code)
                .into_iter()
                .filter(|d| d != module && code_of.contains_key(d))
                .collect();
            (module.clone(), deps)
        })
        .collect()
}

/// A cycle of `graph`, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(module.to_owned(), false);
        path.push(module.to_owned());
        for dep in &graph[module] {
            match state.get(dep) {
                Some(false) => {
                    let start = path.iter().position(|m| m == dep).expect("on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                Some(true) => {}
                None => {
                    if let Some(cycle) = visit(dep, graph, state, path) {
                        return Some(cycle);
                    }
                }
            }
        }
        path.pop();
        state.insert(module.to_owned(), true);
        None
    }
    let mut state = BTreeMap::new();
    for module in graph.keys() {
        if !state.contains_key(module)
            && let Some(cycle) = visit(module, graph, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_core_modules_import_downward_only() {
    let graph = graph();
    assert!(graph.len() > 20, "the modules were found: {graph:?}");
    assert!(graph["runtime"].contains("context"), "imports are seen");
    if let Some(cycle) = cycle(&graph) {
        panic!(
            "asynq-core's modules import in a circle: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        imported("use crate::{a, b::c};\nlet x = crate::d::e();"),
        ["a", "b", "d"].map(str::to_owned).into()
    );
}
