//! Every repository path cited in the docs and in code comments exists in the repository.
//!
//! A reader who follows a citation must find the file. This test reads every tracked
//! Markdown file and the comments of every tracked Rust file, and fails listing each cited
//! path that is not in the repository, with the file and line that cites it.
//!
//! What counts as a citation (so that Rust paths, URLs and placeholders never do):
//!
//! - In Markdown, the target of a relative link or image, `[text](docs/feed1.md)`, resolved
//!   from the Markdown file's directory (an `#anchor` is ignored; targets with a scheme, such
//!   as `https:`, and bare anchors are skipped).
//! - In Markdown and in Rust comments, a word made only of letters, digits and `_ . - /`
//!   (after trimming sentence punctuation), which ends with `.md`, or starts with `../`, or
//!   has a `/` and starts with a top-level directory of the repository (`docs/`,
//!   `asynq-core/`, `scripts/`, ...). So `asynq-core/src/join/mod.rs`, `scripts/test.sh`,
//!   `docs/` and `CHANGELOG.md` are citations; `asynq_core::Error` (a `:`), `https://...` (a
//!   scheme), `/img/3.png` (absolute), `asynq-core/src/*.rs` and `feed1-q<Q>.sqlite`
//!   (patterns) and `join.rs` (a bare file name, ambiguous) are not.
//!
//! A citation exists when it names a tracked file or a directory holding one, relative to
//! the citing file's directory or to any directory above it up to the repository root (so
//! a crate may cite its own `src/lib.rs`), without leaving the repository. A link is
//! resolved from its file's directory only, as a Markdown viewer does.
//!
//! The files are those `git ls-files` lists; without git (a source archive), every file
//! under the repository root except `target/` and `.git/`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// A path cited by a file, and where.
#[derive(Debug, PartialEq, Eq)]
struct Citation {
    line: usize,
    path: String,
    /// A Markdown link target: resolved from the citing file's directory only.
    link: bool,
}

/// The repository's files and the directories that hold them, as `/`-separated paths.
struct Repo {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl Repo {
    fn new(files: impl IntoIterator<Item = String>) -> Self {
        let files: BTreeSet<String> = files.into_iter().collect();
        let mut dirs = BTreeSet::new();
        for file in &files {
            let mut dir = file.as_str();
            while let Some(i) = dir.rfind('/') {
                dir = &dir[..i];
                dirs.insert(dir.to_owned());
            }
        }
        Repo { files, dirs }
    }

    /// The tracked files of the repository at `root`.
    fn load(root: &Path) -> Self {
        let git = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(["ls-files", "-z"])
            .output();
        match git {
            Ok(out) if out.status.success() => Repo::new(
                String::from_utf8(out.stdout)
                    .expect("git ls-files prints UTF-8 paths")
                    .split('\0')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            ),
            _ => {
                let mut files = Vec::new();
                walk(root, root, &mut files);
                Repo::new(files)
            }
        }
    }

    /// Whether `path` (lexically normalized, relative to the root) is a file or directory.
    fn has(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        path.is_empty() || self.files.contains(path) || self.dirs.contains(path)
    }

    /// The top-level directories: the first segments that a cited path may start with.
    fn top_level_dirs(&self) -> BTreeSet<&str> {
        self.dirs
            .iter()
            .filter(|d| !d.contains('/'))
            .map(String::as_str)
            .collect()
    }

    /// Whether `citation`, made in `file`, names something in the repository.
    fn resolves(&self, file: &str, citation: &Citation) -> bool {
        let file_dir = file.rfind('/').map_or("", |i| &file[..i]);
        // The file's directory, then (except for a link) each directory above it.
        let mut bases = vec![file_dir];
        if !citation.link {
            let mut dir = file_dir;
            while let Some(i) = dir.rfind('/') {
                dir = &dir[..i];
                bases.push(dir);
            }
            if !file_dir.is_empty() {
                bases.push("");
            }
        }
        bases
            .into_iter()
            .any(|base| normalize(base, &citation.path).is_some_and(|p| self.has(&p)))
    }
}

/// Every file under `dir` except `target/` and `.git/`, relative to `root`.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if dir == root && (name == "target" || name == ".git") {
                continue;
            }
            walk(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            files.push(parts.join("/"));
        }
    }
}

/// `base/path` with `.` and `..` resolved; `None` when it leaves the repository.
fn normalize(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Whether `word` is a path of the repository's shape (see the module docs).
fn is_citation(word: &str, top_level: &BTreeSet<&str>) -> bool {
    let path_chars = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    if word.is_empty() || !word.chars().all(path_chars) || word.starts_with('/') {
        return false;
    }
    let word = word.strip_prefix("./").unwrap_or(word);
    if word.starts_with("../") || (word.len() > ".md".len() && word.ends_with(".md")) {
        return true;
    }
    word.split_once('/')
        .is_some_and(|(first, _)| top_level.contains(first))
}

/// The words of `text` that are citations, each trimmed of the punctuation around it.
fn words<'a>(text: &'a str, top_level: &BTreeSet<&str>) -> Vec<&'a str> {
    text.split(|c: char| c.is_whitespace() || "()[],;\"'`|".contains(c))
        // Never inside a citation: a URL's scheme (and all of it after).
        .filter(|w| !w.contains("://"))
        // Sentence punctuation after a word, emphasis around it.
        .map(|w| w.trim_end_matches(['.', ':', '!', '?', '*', '_']))
        .map(|w| w.trim_start_matches(['*', '_']))
        .filter(|w| is_citation(w, top_level))
        .collect()
}

/// The citations of a Markdown file.
fn markdown_citations(text: &str, top_level: &BTreeSet<&str>) -> Vec<Citation> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            let target = target.split(['#', '?']).next().unwrap_or("");
            if !target.is_empty() && !target.contains(':') {
                found.push(Citation {
                    line: line_no,
                    path: target.to_owned(),
                    link: true,
                });
            }
            rest = &after[end..];
        }
        // Link targets are checked above; the words of the rest of the line here.
        let without_targets = strip_link_targets(line);
        for word in words(&without_targets, top_level) {
            found.push(Citation {
                line: line_no,
                path: word.to_owned(),
                link: false,
            });
        }
    }
    found
}

/// `line` without the `(target)` of its Markdown links.
fn strip_link_targets(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        out.push_str(&rest[..start + 1]);
        let after = &rest[start + 2..];
        rest = after.find(')').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The comments of Rust source, each with its line number (string and character literals
/// skipped, so that `"//"` in a string starts no comment).
fn rust_comments(source: &str) -> Vec<(usize, String)> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        Str,
        RawStr(usize),
        Block(usize),
    }
    let mut comments = Vec::new();
    let mut state = State::Code;
    for (i, line) in source.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut comment = String::new();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let next = chars.get(j + 1).copied();
            match state {
                State::Code => match (c, next) {
                    ('/', Some('/')) => {
                        comment.extend(&chars[j + 2..]);
                        break;
                    }
                    ('/', Some('*')) => {
                        state = State::Block(1);
                        j += 1;
                    }
                    ('"', _) => state = State::Str,
                    ('r', Some('"' | '#')) if j == 0 || !is_ident_char(chars[j - 1]) => {
                        let hashes = chars[j + 1..].iter().take_while(|&&h| h == '#').count();
                        if chars.get(j + 1 + hashes) == Some(&'"') {
                            state = State::RawStr(hashes);
                            j += 1 + hashes;
                        }
                    }
                    ('\'', _) => {
                        // A character literal ('x', '\n', '"'); otherwise a lifetime.
                        if next == Some('\\') {
                            // '\n', '\'', '\u{..}': the closing quote comes after the escape.
                            if let Some(end) = chars
                                .get(j + 3..)
                                .and_then(|rest| rest.iter().position(|&c| c == '\''))
                            {
                                j += 3 + end;
                            }
                        } else if chars.get(j + 2) == Some(&'\'') {
                            j += 2;
                        }
                    }
                    _ => {}
                },
                State::Str => match c {
                    '\\' => j += 1,
                    '"' => state = State::Code,
                    _ => {}
                },
                State::RawStr(hashes) => {
                    if c == '"'
                        && chars[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                    {
                        state = State::Code;
                        j += hashes;
                    }
                }
                State::Block(depth) => match (c, next) {
                    ('*', Some('/')) => {
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        j += 1;
                        comment.push(' ');
                    }
                    ('/', Some('*')) => {
                        state = State::Block(depth + 1);
                        j += 1;
                    }
                    _ => comment.push(c),
                },
            }
            j += 1;
        }
        if !comment.trim().is_empty() {
            comments.push((i + 1, comment));
        }
    }
    comments
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The citations in the comments of a Rust file.
fn rust_citations(source: &str, top_level: &BTreeSet<&str>) -> Vec<Citation> {
    rust_comments(source)
        .into_iter()
        .flat_map(|(line, comment)| {
            words(&comment, top_level)
                .into_iter()
                .map(|word| Citation {
                    line,
                    path: word.to_owned(),
                    link: false,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every citation in the repository (`file:line: path`), and those that name nothing in it,
/// each once, in file and line order.
fn check_all(root: &Path, repo: &Repo) -> (Vec<String>, Vec<String>) {
    let top_level = repo.top_level_dirs();
    let (mut all, mut missing) = (Vec::new(), BTreeSet::new());
    for file in &repo.files {
        let read = || std::fs::read_to_string(root.join(file)).expect("a tracked file is readable");
        let citations = if file.ends_with(".md") {
            markdown_citations(&read(), &top_level)
        } else if file.ends_with(".rs") {
            rust_citations(&read(), &top_level)
        } else {
            continue;
        };
        for citation in citations {
            if !repo.resolves(file, &citation) {
                missing.insert((file, citation.line, citation.path.clone()));
            }
            all.push(format!("{file}:{}: {}", citation.line, citation.path));
        }
    }
    let missing = missing
        .into_iter()
        .map(|(file, line, path)| format!("{file}:{line}: {path}"))
        .collect();
    (all, missing)
}

#[test]
fn every_cited_path_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository");
    let repo = Repo::load(root);
    assert!(
        repo.files.contains("README.md") && repo.files.contains("docs/feed1.md"),
        "the repository's files were not found under {}",
        root.display()
    );
    let (all, missing) = check_all(root, &repo);
    // The check reads what it should: the README's link to the FEED-1 page is among them.
    assert!(
        all.iter()
            .any(|c| c.starts_with("README.md:") && c.ends_with(": docs/feed1.md")),
        "the README's citations were not found; {} citations in all",
        all.len()
    );
    assert!(
        missing.is_empty(),
        "{} cited path(s) not in the repository (file:line: path):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

// The checker itself: what it takes for a citation, and what it does not.

fn sample_repo() -> Repo {
    Repo::new(
        [
            "README.md",
            "docs/feed1.md",
            "docs/feed-trace.png",
            "scripts/test.sh",
            "asynq-core/Cargo.toml",
            "asynq-core/src/join.rs",
            "asynq-core/src/cache.rs",
            "ui-tests/tests/pass/x.rs",
            "ui-tests/downstream/src/lib.rs",
        ]
        .map(str::to_owned),
    )
}

fn cited(text: &str, markdown: bool) -> Vec<String> {
    let repo = sample_repo();
    let top = repo.top_level_dirs();
    let citations = if markdown {
        markdown_citations(text, &top)
    } else {
        rust_citations(text, &top)
    };
    citations.into_iter().map(|c| c.path).collect()
}

#[test]
fn rust_paths_urls_and_patterns_are_not_citations() {
    let text = "See `asynq_core::Error`, <https://github.com/quora/asynq/blob/main/README.md>, \
                `/img/3.png`, `asynq-core/src/*.rs`, `feed1-q<Q>-a<A>.sqlite`, `join.rs`, \
                I/O, 127.0.0.1:11211, `HOST:PORT`, and crate::docs::feed1.";
    assert_eq!(cited(text, true), Vec::<String>::new());
    assert_eq!(cited(&format!("// {text}"), false), Vec::<String>::new());
}

#[test]
fn paths_in_backticks_prose_and_links_are_citations() {
    let text = "Read [the spec](docs/feed1.md#reference-figures), run `bash scripts/test.sh`;\n\
                the joins are in asynq-core/src/join.rs. Also `notes/bench/SPEC.md`, PLAN.md,\n\
                ![a picture](feed-trace.png) and **docs/missing.md**.";
    assert_eq!(
        cited(text, true),
        [
            "docs/feed1.md",
            "scripts/test.sh",
            "asynq-core/src/join.rs",
            "notes/bench/SPEC.md",
            "PLAN.md",
            "feed-trace.png",
            "docs/missing.md"
        ]
    );
}

#[test]
fn only_comments_of_rust_code_are_read() {
    let source = r#"
let url = "https://example.com//docs/nope.md"; // see `docs/feed1.md`
let c = '"'; let s = "// docs/also-nope.md";
/* block: scripts/test.sh */ let r = r"docs/raw.md // docs/raw2.md";
/// Doc comment: `asynq-core/src/gone.rs`.
fn f<'a>(x: &'a str) {} // a lifetime, then README.md
"#;
    assert_eq!(
        cited(source, false),
        [
            "docs/feed1.md",
            "scripts/test.sh",
            "asynq-core/src/gone.rs",
            "README.md"
        ]
    );
}

#[test]
fn a_missing_path_is_reported_and_a_present_one_is_not() {
    let repo = sample_repo();
    let check = |file: &str, path: &str, link: bool| {
        repo.resolves(
            file,
            &Citation {
                line: 1,
                path: path.to_owned(),
                link,
            },
        )
    };
    assert!(check("README.md", "docs/feed1.md", true));
    assert!(
        check("docs/feed1.md", "feed-trace.png", true),
        "relative to the page"
    );
    assert!(check("docs/feed1.md", "../README.md", true));
    assert!(
        !check("docs/feed1.md", "docs/feed1.md", true),
        "a link is relative to its file"
    );
    assert!(
        check("asynq-core/src/join.rs", "docs/feed1.md", false),
        "from the root"
    );
    assert!(
        check("asynq-core/src/join.rs", "src/cache.rs", false),
        "from the crate"
    );
    assert!(check("README.md", "docs/", false), "a directory");
    assert!(!check("README.md", "notes/bench/SPEC.md", false));
    assert!(!check("README.md", "PLAN.md", false));
    assert!(
        !check("docs/feed1.md", "../../outside/x.md", true),
        "outside the repository"
    );
}
