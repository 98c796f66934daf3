//! The house has no circles: no module of src/ imports one that imports it back, directly or
//! through others.
//!
//! Each file is a module (`a/mod.rs` is `a`, `a/b.rs` is `a::b`). A module depends on every
//! module it names with `crate::…` or `super::…` (in a `use` or inline), resolved to the
//! deepest module that exists; a parent declaring its children (`mod b;`, `pub use b::X`) is
//! not a dependency, so `self::`/plain child paths are not counted, but a child naming its
//! parent's items is. Test modules (`#[cfg(test)] mod tests`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module path (`realtime::session`) → its source without test modules.
fn modules() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    collect(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path(),
        &mut Vec::new(),
        &mut found,
    );
    found
}

fn collect(dir: &Path, prefix: &mut Vec<String>, found: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            prefix.push(name);
            collect(&path, prefix, found);
            prefix.pop();
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        let module = match stem {
            "mod" | "lib" | "main" => prefix.join("::"),
            _ => prefix
                .iter()
                .cloned()
                .chain([stem.to_owned()])
                .collect::<Vec<_>>()
                .join("::"),
        };
        if stem == "main" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        found.insert(module, text);
    }
}

/// The modules `text` (of `module`) names, resolved against `known`.
fn dependencies(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let own: Vec<&str> = if module.is_empty() {
        vec![]
    } else {
        module.split("::").collect()
    };
    for (at, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let base: Vec<&str> = match segments.first() {
            Some(&"crate") => {
                segments.remove(0);
                vec![]
            }
            Some(&"super") => {
                let mut base = own.clone();
                // `a/b.rs` is `a::b`: its super is `a`. (A `mod.rs` is its directory.)
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base.pop();
                }
                base
            }
            _ => continue,
        };
        let mut target: Vec<&str> = base.clone();
        let mut deepest = base.join("::");
        for segment in segments {
            target.push(segment);
            let candidate = target.join("::");
            if known.contains(&candidate) {
                deepest = candidate;
            } else {
                break;
            }
        }
        if deepest != module && !deepest.is_empty() && !is_descendant(&deepest, module) {
            out.insert(deepest);
        }
    }
    out
}

fn is_descendant(child: &str, parent: &str) -> bool {
    parent.is_empty() || child.starts_with(&format!("{parent}::"))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let sources = modules();
    let known: BTreeSet<String> = sources.keys().cloned().collect();
    let graph: BTreeMap<&str, BTreeSet<String>> = sources
        .iter()
        .map(|(m, text)| (m.as_str(), dependencies(m, text, &known)))
        .collect();
    assert!(graph.len() > 50, "found only {} modules", graph.len());
    // A module that reaches itself again sits on a circle.
    let mut circles = Vec::new();
    for start in graph.keys() {
        let mut path = vec![(*start).to_owned()];
        if let Some(circle) = back_to(start, start, &graph, &mut path, &mut BTreeSet::new()) {
            circles.push(circle.join(" → "));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

fn back_to(
    start: &str,
    at: &str,
    graph: &BTreeMap<&str, BTreeSet<String>>,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in graph.get(at).into_iter().flatten() {
        if next == start {
            let mut circle = path.clone();
            circle.push(next.clone());
            return Some(circle);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(circle) = back_to(start, next, graph, path, seen) {
                return Some(circle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_check_sees_a_circle() {
    let known: BTreeSet<String> = ["a", "b", "a::c"].map(str::to_owned).into();
    assert_eq!(
        dependencies(
            "a::c",
            "use super::super::b::X; use crate::a::c::Y;",
            &known
        ),
        BTreeSet::from(["b".to_owned()])
    );
    assert_eq!(
        dependencies("a", "use crate::a::c::Z; mod c;", &known),
        BTreeSet::new(),
        "a parent naming its child is not a dependency"
    );
    assert_eq!(
        dependencies("a::c", "fn f() { super::helper() }", &known),
        BTreeSet::from(["a".to_owned()])
    );
}
