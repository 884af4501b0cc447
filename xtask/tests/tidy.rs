//! Tidy: the repository checks itself, in the spirit of rust-analyzer's `xtask/src/tidy.rs`.
//!
//! - every crate under `crates/` has a layer in ARCHITECTURE.md's `## Dependency layers`
//!   table, and the table names no crate that does not exist;
//! - a crate's normal and build dependencies on other workspace crates point strictly down
//!   the layers (dev-dependencies are exempt);
//! - every source file starts with a `//!` doc saying why it exists;
//! - no file under `crates/*/src` has more than 800 lines before its `#[cfg(test)]` module.
//!
//! Every check lists all its offenders at once. Set `TIDY_ARCHITECTURE` to the path of
//! another Markdown file to check the layers against it instead of ARCHITECTURE.md (for
//! trying out a new table before writing it in).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The heading of the section in ARCHITECTURE.md that holds the layer table.
const LAYERS_HEADING: &str = "## Dependency layers";

/// The most lines a file under `crates/*/src` may have before its `#[cfg(test)]` module.
const MAX_LINES: usize = 800;

#[test]
fn architecture_lists_every_crate_with_its_layer() {
    let (layers, source) = layers();
    let crates = workspace_crates();
    let missing: Vec<String> = crates
        .keys()
        .filter(|name| !layers.contains_key(*name))
        .map(|name| format!("`{name}` ({})", crates[name].manifest))
        .collect();
    let extra: Vec<String> = layers
        .keys()
        .filter(|name| !crates.contains_key(*name))
        .map(|name| format!("`{name}` (layer {})", layers[name]))
        .collect();
    let mut message = String::new();
    collect(
        &mut message,
        &format!("crate(s) under crates/ missing from the `{LAYERS_HEADING}` table of {source}"),
        &missing,
        "add each to the row of a layer higher than every crate it depends on (or a new row)",
    );
    collect(
        &mut message,
        &format!(
            "crate(s) in the `{LAYERS_HEADING}` table of {source} that are not packages \
             under crates/"
        ),
        &extra,
        "remove them from the table (or correct the name to the package's `name`)",
    );
    fail_if_any(&message);
}

#[test]
fn dependencies_point_down_the_layers() {
    let (layers, source) = layers();
    let crates = workspace_crates();
    let mut edges = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for (name, krate) in &crates {
        for dependency in &krate.dependencies {
            match (layers.get(name), layers.get(dependency)) {
                (Some(from), Some(to)) if to >= from => {
                    edges.insert(format!(
                        "{name} (layer {from}) depends on {dependency} (layer {to})"
                    ));
                }
                (Some(_), Some(_)) => {}
                // Also architecture_lists_every_crate_with_its_layer's finding, but an edge
                // that cannot be placed must not pass here either.
                (from, to) => {
                    for (crate_name, layer) in [(name, from), (dependency, to)] {
                        if layer.is_none() {
                            unplaced.insert(crate_name);
                        }
                    }
                }
            }
        }
    }
    let mut message = String::new();
    collect(
        &mut message,
        &format!(
            "dependency edge(s) that do not point to a strictly lower layer in the \
             `{LAYERS_HEADING}` table of {source} (normal and build dependencies; \
             dev-dependencies are exempt)"
        ),
        &edges.into_iter().collect::<Vec<_>>(),
        "dependencies point down: move the shared code lower or change the layer in \
         ARCHITECTURE.md",
    );
    collect(
        &mut message,
        &format!(
            "crate(s) with workspace dependencies (or dependents) but no layer in the \
             `{LAYERS_HEADING}` table of {source}, so their edges cannot be checked"
        ),
        &unplaced
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>(),
        "add each to the row of its layer (see architecture_lists_every_crate_with_its_layer)",
    );
    fail_if_any(&message);
}

#[test]
fn every_source_file_says_why_it_exists() {
    let root = repo_root();
    let mut files = Vec::new();
    for krate in crate_dirs(&root) {
        for dir in ["src", "tests", "benches", "examples"] {
            rust_files(&krate.join(dir), &mut files);
        }
    }
    rust_files(&root.join("xtask"), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|file| !starts_with_module_doc(&read(file)))
        .map(|file| relative(&root, file))
        .collect();
    fail_with(
        "source file(s) with no `//!` doc before their first line of code",
        &offenders,
        "start each with a `//!` doc saying why the file exists (only `#![...]` attributes \
         and comments may come before it)",
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    let root = repo_root();
    let mut files = Vec::new();
    for krate in crate_dirs(&root) {
        rust_files(&krate.join("src"), &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let text = read(file);
            let lines = text
                .lines()
                .position(|line| line.starts_with("#[cfg(test)]"))
                .unwrap_or_else(|| text.lines().count());
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", relative(&root, file)))
        })
        .collect();
    fail_with(
        &format!(
            "file(s) under crates/*/src with more than {MAX_LINES} lines before `#[cfg(test)]` \
             (or in all, without one)"
        ),
        &offenders,
        "split it by concept (STYLE.md habit 10)",
    );
}

/// The most of the workspace's non-test lines one crate may hold: no crate becomes the
/// switchboard everything passes through (STYLE.md, "a giant main crate").
const MAX_SHARE: f64 = 0.20;

/// Non-blank lines of a crate's `src/` before each file's `#[cfg(test)]` module.
fn non_test_lines(krate: &Path) -> usize {
    let mut files = Vec::new();
    rust_files(&krate.join("src"), &mut files);
    files
        .iter()
        .map(|file| {
            read(file)
                .lines()
                .take_while(|line| !line.starts_with("#[cfg(test)]"))
                .filter(|line| !line.trim().is_empty())
                .count()
        })
        .sum()
}

/// Prints each crate's share of the non-test lines (`cargo test -p xtask -- --nocapture
/// shares` shows it) and fails when one holds more than [`MAX_SHARE`].
#[test]
fn no_crate_holds_more_than_a_fifth_of_the_code() {
    let root = repo_root();
    let lines: Vec<(String, usize)> = crate_dirs(&root)
        .iter()
        .map(|dir| (relative(&root, dir), non_test_lines(dir)))
        .collect();
    let total: usize = lines.iter().map(|(_, n)| n).sum();
    let share = |n: usize| n as f64 / total.max(1) as f64;
    for (name, n) in &lines {
        eprintln!("shares: {name:32} {n:6} {:5.1}%", 100.0 * share(*n));
    }
    eprintln!("shares: {:32} {total:6}", "total");
    let offenders: Vec<String> = lines
        .iter()
        .filter(|(_, n)| share(*n) > MAX_SHARE)
        .map(|(name, n)| format!("{name}: {n} of {total} lines ({:.1}%)", 100.0 * share(*n)))
        .collect();
    fail_with(
        &format!(
            "crate(s) holding more than {:.0}% of the workspace's non-test lines",
            100.0 * MAX_SHARE
        ),
        &offenders,
        "move what is not the crate's own noun into a crate of its own (as the steps are)",
    );
}

/// Steps see the step interface, never the runner or the descriptor: in `stampede-job`,
/// `step.rs`, `registry.rs`, `emitter.rs` and `steps/` import neither `crate::runner` nor
/// `crate::descriptor`, and `descriptor/` does not import `crate::runner`; the step crates
/// use no `stampede_job::runner`.
#[test]
fn steps_do_not_reach_into_the_runner() {
    let root = repo_root();
    let job = root.join("crates/stampede-job/src");
    let mut rules: Vec<(PathBuf, &[&str])> = Vec::new();
    let interface: &[&str] = &["crate::runner", "crate::descriptor"];
    for file in ["step.rs", "registry.rs", "emitter.rs"] {
        rules.push((job.join(file), interface));
    }
    let mut files = Vec::new();
    rust_files(&job.join("steps"), &mut files);
    rules.extend(files.drain(..).map(|f| (f, interface)));
    rust_files(&job.join("descriptor"), &mut files);
    rules.extend(files.drain(..).map(|f| (f, &["crate::runner"] as &[&str])));
    for dir in [
        "stampede-load/src",
        "stampede-scale/src/step",
        "stampede-robust/src/step",
    ] {
        rust_files(&root.join("crates").join(dir), &mut files);
    }
    rules.extend(
        files
            .drain(..)
            .map(|f| (f, &["stampede_job::runner"] as &[&str])),
    );
    let offenders: Vec<String> = rules
        .iter()
        .flat_map(|(file, banned)| {
            let text = read(file);
            banned
                .iter()
                .filter(|b| text.contains(*b))
                .map(|b| format!("{} uses {b}", relative(&root, file)))
                .collect::<Vec<_>>()
        })
        .collect();
    fail_with(
        "step file(s) that reach into the runner or the descriptor",
        &offenders,
        "take what the step needs from `StepCtx` (stampede_job::step), or move it there",
    );
}

/// Appends one finding to `message` if there are `offenders`: how many, what is wrong,
/// every offender on a line of its own, and what to do. Empty `offenders` add nothing, so
/// a test can collect several findings and fail once with all of them.
fn collect(message: &mut String, problem: &str, offenders: &[String], fix: &str) {
    if offenders.is_empty() {
        return;
    }
    if !message.is_empty() {
        message.push('\n');
    }
    let _ = writeln!(message, "{} {problem}:", offenders.len());
    for offender in offenders {
        let _ = writeln!(message, "  - {offender}");
    }
    let _ = writeln!(message, "To fix: {fix}.");
}

/// Fails the test with one finding, if it has `offenders` (see [`collect`]).
fn fail_with(problem: &str, offenders: &[String], fix: &str) {
    let mut message = String::new();
    collect(&mut message, problem, offenders, fix);
    fail_if_any(&message);
}

/// Fails the test with everything [`collect`] gathered, if anything.
fn fail_if_any(message: &str) {
    assert!(message.is_empty(), "\n{message}");
}

/// The workspace root: the parent of this crate.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// The layer of every crate named in ARCHITECTURE.md's `## Dependency layers` table, or in
/// the file `TIDY_ARCHITECTURE` names, and that file's name for messages. Fails the test if
/// the table is missing or malformed.
fn layers() -> (BTreeMap<String, u32>, String) {
    let (path, source) = match std::env::var_os("TIDY_ARCHITECTURE") {
        Some(path) => {
            let path = PathBuf::from(path);
            let source = format!("{} (from TIDY_ARCHITECTURE)", path.display());
            (path, source)
        }
        None => (
            repo_root().join("ARCHITECTURE.md"),
            "ARCHITECTURE.md".to_owned(),
        ),
    };
    match parse_layers(&read(&path)) {
        Ok(layers) => (layers, source),
        Err(problems) => {
            let problems = match problems.as_slice() {
                [problem] => format!("{source} {problem}"),
                _ => format!("{source}:\n  - {}", problems.join("\n  - ")),
            };
            panic!(
                "\n{problems}\nThe table looks like:\n\n{LAYERS_HEADING}\n\n\
                 | layer | crates | what |\n|---|---|---|\n\
                 | 0 | `stampede-core`, `stampede-api` | vocabulary |\n\
                 | 1 | `stampede-engine` | ... |\n"
            )
        }
    }
}

/// Reads the first table under [`LAYERS_HEADING`] (up to the next `#`/`##` heading): the
/// rows after its `|---|` separator, each a layer number in its first column and crate
/// names in backticks in its second. Returns every problem found if it cannot.
fn parse_layers(markdown: &str) -> Result<BTreeMap<String, u32>, Vec<String>> {
    let mut lines = markdown.lines().enumerate();
    if !lines.any(|(_, line)| line.trim_end() == LAYERS_HEADING) {
        return Err(vec![format!(
            "has no `{LAYERS_HEADING}` table; add a section headed exactly `{LAYERS_HEADING}` \
             with a Markdown table: the layer number in the first column, the crates of that \
             layer in backticks in the second, lowest layer first"
        )]);
    }
    let table: Vec<(usize, &str)> = lines
        .take_while(|(_, line)| !line.starts_with("# ") && !line.starts_with("## "))
        .skip_while(|(_, line)| !line.trim_start().starts_with('|'))
        .take_while(|(_, line)| line.trim_start().starts_with('|'))
        .collect();
    let Some(separator) = table.iter().position(|(_, line)| is_separator(line)) else {
        return Err(vec![format!(
            "has a `{LAYERS_HEADING}` section but no Markdown table in it (a header row, a \
             `|---|---|` row, then one row per layer)"
        )]);
    };
    let mut problems = Vec::new();
    let mut layers: BTreeMap<String, u32> = BTreeMap::new();
    for &(index, row) in &table[separator + 1..] {
        let line = index + 1;
        let cells = cells(row);
        let Ok(layer) = cells[0].parse::<u32>() else {
            problems.push(format!(
                "line {line}: the first column should be a layer number, not `{}`",
                cells[0]
            ));
            continue;
        };
        let names: Vec<&str> = cells
            .get(1)
            .map(|cell| cell.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        if names.is_empty() {
            problems.push(format!(
                "line {line}: layer {layer} names no crate (crates go in backticks in the \
                 second column)"
            ));
        }
        for name in names {
            if let Some(other) = layers.insert(name.to_owned(), layer) {
                problems.push(format!(
                    "line {line}: `{name}` is listed twice (layers {other} and {layer}); keep \
                     one"
                ));
            }
        }
    }
    if layers.is_empty() && problems.is_empty() {
        problems.push(format!(
            "has an empty `{LAYERS_HEADING}` table; add a row per layer"
        ));
    }
    if problems.is_empty() {
        Ok(layers)
    } else {
        Err(problems)
    }
}

/// The cells of a Markdown table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    row.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// Whether a table row is the `|---|:--:|` line between the header and the body.
fn is_separator(row: &str) -> bool {
    cells(row)
        .iter()
        .all(|cell| cell.contains('-') && cell.chars().all(|c| c == '-' || c == ':'))
}

/// A workspace package whose manifest is under `crates/`.
struct Crate {
    /// Its manifest, relative to the workspace root, for messages.
    manifest: String,
    /// The workspace packages it depends on as normal or build dependencies.
    dependencies: BTreeSet<String>,
}

/// Every workspace package under `crates/` (so not xtask), by name, from
/// `cargo metadata --no-deps`.
fn workspace_crates() -> BTreeMap<String, Crate> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = repo_root();
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `{} metadata`: {error}", cargo.display()));
    assert!(
        output.status.success(),
        "`cargo metadata --format-version 1 --no-deps` failed in {} ({}); fix the workspace \
         so that it loads:\n{}",
        root.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let workspace_root = PathBuf::from(str_of(&metadata["workspace_root"]));
    let crates_dir = workspace_root.join("crates");
    let packages = metadata["packages"]
        .as_array()
        .expect("cargo metadata lists `packages`");
    let names: BTreeSet<&str> = packages
        .iter()
        .map(|package| str_of(&package["name"]))
        .collect();
    packages
        .iter()
        .filter_map(|package| {
            let manifest = Path::new(str_of(&package["manifest_path"]));
            manifest.strip_prefix(&crates_dir).ok()?;
            let dependencies = package["dependencies"]
                .as_array()
                .expect("a package lists its `dependencies`")
                .iter()
                .filter(|dependency| match &dependency["kind"] {
                    serde_json::Value::Null => true,
                    kind => kind == "build",
                })
                .map(|dependency| str_of(&dependency["name"]))
                .filter(|name| names.contains(name))
                .map(str::to_owned)
                .collect();
            let krate = Crate {
                manifest: relative(&workspace_root, manifest),
                dependencies,
            };
            Some((str_of(&package["name"]).to_owned(), krate))
        })
        .collect()
}

/// A string field of cargo metadata's output.
fn str_of(value: &serde_json::Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("cargo metadata: expected a string, got {value}"))
}

/// The directories under `crates/`, sorted.
fn crate_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = entries(&root.join("crates"));
    dirs.retain(|dir| dir.is_dir());
    dirs
}

/// Appends every `.rs` file under `dir` (if it exists), depth first, sorted.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    for path in entries(dir) {
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The entries of `dir`, sorted, so that messages list files in a stable order.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    paths
}

/// Whether a `//!` line comes before the first line that is not blank, a comment or an
/// attribute (`#![...]` or `#[...]`, possibly over several lines).
fn starts_with_module_doc(text: &str) -> bool {
    let mut in_block_comment = false;
    let mut open_brackets = 0_usize;
    for line in text.lines() {
        let line = line.trim();
        if in_block_comment {
            in_block_comment = !line.contains("*/");
            continue;
        }
        if open_brackets > 0 {
            open_brackets = bracket_depth(open_brackets, line);
            continue;
        }
        if line.starts_with("//!") {
            return true;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if line.starts_with("/*") {
            in_block_comment = !line.contains("*/");
            continue;
        }
        if line.starts_with("#[") || line.starts_with("#![") {
            open_brackets = bracket_depth(0, line);
            continue;
        }
        return false;
    }
    false
}

/// The depth of `[` brackets still open after `line`, starting from `depth`.
fn bracket_depth(depth: usize, line: &str) -> usize {
    line.chars().fold(depth, |depth, c| match c {
        '[' => depth + 1,
        ']' => depth.saturating_sub(1),
        _ => depth,
    })
}

/// A file's text; fails the test naming the file if it cannot be read.
fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// `path` relative to `root`, with `/` separators, for messages.
fn relative(root: &Path, path: &Path) -> String {
    let path = path.strip_prefix(root).unwrap_or(path);
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
