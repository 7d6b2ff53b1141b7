//! How errors write what they hold: a stall's tree of waiting tasks, keys cut to a readable
//! length.

use std::fmt;

/// Equal lines once each, in the order they first appear, with how many times they appear.
pub(super) fn group(lines: &[String]) -> Vec<(&str, usize)> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for line in lines {
        match index.get(line.as_str()) {
            Some(&i) => groups[i].1 += 1,
            None => {
                index.insert(line, groups.len());
                groups.push((line, 1));
            }
        }
    }
    groups
}

/// Paths `a > b > c: note` as an indented tree, shared prefixes written once; a path that
/// `n > 1` tasks share is written once, as `n × c`.
pub(super) fn write_tree<'a>(
    f: &mut fmt::Formatter<'_>,
    paths: impl Iterator<Item = &'a (&'a str, usize)>,
) -> fmt::Result {
    let mut previous: Vec<&str> = Vec::new();
    for &(path, count) in paths {
        let (path, note) = match path.split_once(": ") {
            Some((path, note)) => (path, Some(note)),
            None => (path, None),
        };
        let segments: Vec<&str> = path.split(" > ").collect();
        let shared = previous
            .iter()
            .zip(&segments)
            .take_while(|(a, b)| a == b)
            .count()
            .min(segments.len().saturating_sub(1));
        let last = segments.len() - 1;
        for (depth, segment) in segments.iter().enumerate().skip(shared) {
            write!(f, "\n  {:indent$}", "", indent = 2 * depth)?;
            if depth == last && count > 1 {
                write!(f, "{count} × ")?;
            }
            f.write_str(segment)?;
        }
        if let Some(note) = note {
            write!(f, " ({note})")?;
        }
        previous = segments;
    }
    Ok(())
}

/// How many bytes of a key's `Debug` form a message shows.
pub(super) const KEY_SHOWN: usize = 100;

/// The `Debug` form of a key, cut to [`KEY_SHOWN`] bytes: for keys shown in messages, which
/// may be as long as their owner made them.
pub(crate) fn debug_bounded(value: &dyn fmt::Debug) -> String {
    debug_cut(value, KEY_SHOWN)
}

/// The `Debug` form of `value`, cut to `max` bytes (on a character boundary, then `…`).
pub(super) fn debug_cut(value: &dyn fmt::Debug, max: usize) -> String {
    /// Keeps the first `max` bytes written, and whether more came.
    struct Bounded {
        out: String,
        max: usize,
        cut: bool,
    }
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.max - self.out.len();
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            self.cut = true;
            // Stop the formatting: nothing more is kept.
            Err(fmt::Error)
        }
    }
    let mut bounded = Bounded {
        out: String::new(),
        max,
        cut: false,
    };
    let _ = fmt::write(&mut bounded, format_args!("{value:?}"));
    if bounded.cut {
        bounded.out.push('…');
    }
    bounded.out
}
