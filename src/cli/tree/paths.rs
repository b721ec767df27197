//! Where a stored name lands under the directory `get -r` writes to.
//!
//! Names are keys, not paths (see `chunk::name`), so nothing here may let a
//! name reach outside the directory, whatever it holds. The part of a name
//! after the prefix is split at `/` and each piece becomes one path
//! component; a name is refused, never rewritten, when:
//!
//! - a piece is `.` or `..` (it would name the directory itself or its
//!   parent);
//! - a piece is empty: a leading `/` or a `//` (collapsing it would make
//!   `a//b` and `a/b` write the same file);
//! - a piece is over [`MAX_COMPONENT`] bytes (no common file system takes
//!   it);
//! - it ends in `/` (a folder marker, which becomes a directory) but has
//!   content.
//!
//! [`Claims`] refuses the second of two names that need one path to be
//! both a file and a directory (`a` and `a/b`, or `a` and the marker `a/`).
//! The names come in name order, in which `a` always sorts before every name
//! starting with `a/`, so the file is written and the other name fails.

use std::path::PathBuf;

/// The longest path component written: Linux's `NAME_MAX`, which ext4,
/// XFS, btrfs and tmpfs all share.
pub const MAX_COMPONENT: usize = 255;

/// Why a name cannot be written under the directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeName {
    /// A piece is `.` or `..`.
    #[error("unsafe name: it has a `{0}` component")]
    Dot(&'static str),
    /// A piece is empty (a leading `/` or `//`).
    #[error("unsafe name: it has an empty component (a leading `/` or a `//`)")]
    EmptyComponent,
    /// A piece is too long for a file system.
    #[error("component too long: {len} bytes, the limit is {MAX_COMPONENT}")]
    ComponentTooLong {
        /// The piece's length in bytes.
        len: usize,
    },
    /// A folder marker (a name ending in `/`) with content.
    #[error("a name ending in `/` marks a directory, but this one holds {0} bytes")]
    MarkerWithContent(u64),
}

/// What a name becomes, relative to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file at this path.
    File(PathBuf),
    /// A directory (from a folder marker); the empty path is the directory
    /// itself.
    Dir(PathBuf),
}

/// The part of `name` after `prefix` (empty, or ending in `/`), or `None`
/// if `name` does not start with it.
pub fn relative<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)
}

/// Maps `rel`, the part of a name after the prefix, of a file of `size`
/// bytes, to where it is written.
///
/// # Errors
/// [`UnsafeName`] when the name cannot be written safely (see the module
/// documentation).
pub fn target(rel: &str, size: u64) -> Result<Target, UnsafeName> {
    // The name is the prefix itself with its `/`: the marker of the
    // directory being written to.
    if rel.is_empty() {
        return match size {
            0 => Ok(Target::Dir(PathBuf::new())),
            _ => Err(UnsafeName::MarkerWithContent(size)),
        };
    }
    let (body, marker) = match rel.strip_suffix('/') {
        Some(body) => (body, true),
        None => (rel, false),
    };
    let mut path = PathBuf::new();
    for piece in body.split('/') {
        match piece {
            "" => return Err(UnsafeName::EmptyComponent),
            "." => return Err(UnsafeName::Dot(".")),
            ".." => return Err(UnsafeName::Dot("..")),
            p if p.len() > MAX_COMPONENT => {
                return Err(UnsafeName::ComponentTooLong { len: p.len() });
            }
            p => path.push(p),
        }
    }
    if !marker {
        return Ok(Target::File(path));
    }
    if size > 0 {
        return Err(UnsafeName::MarkerWithContent(size));
    }
    Ok(Target::Dir(path))
}

/// A name that needs as a directory a path an earlier name took as a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "conflicts with {file:?}, a file that comes first in name order: this name needs that path to be a directory"
)]
pub struct Conflict {
    /// The earlier name's part after the prefix.
    pub file: String,
}

/// The files claimed so far that a later name could need as a directory.
///
/// Names starting with one string are contiguous in name order, so only
/// the files that prefix the latest name can matter: they form a stack,
/// each entry a prefix of the next, no deeper than a name is long.
#[derive(Debug, Default)]
pub struct Claims {
    files: Vec<String>,
}

impl Claims {
    /// Records `rel` (the part of a name after the prefix, already found
    /// safe by [`target`]); names must come in name order.
    ///
    /// # Errors
    /// [`Conflict`] if an earlier name took, as a file, a path `rel` needs
    /// as a directory. A name that conflicts claims nothing.
    pub fn claim(&mut self, rel: &str, target: &Target) -> Result<(), Conflict> {
        while self
            .files
            .last()
            .is_some_and(|file| !rel.starts_with(file.as_str()))
        {
            self.files.pop();
        }
        if let Some(file) = self
            .files
            .iter()
            .find(|file| rel.as_bytes().get(file.len()) == Some(&b'/'))
        {
            return Err(Conflict { file: file.clone() });
        }
        if matches!(target, Target::File(_)) {
            self.files.push(rel.to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> Result<Target, UnsafeName> {
        Ok(Target::File(PathBuf::from(p)))
    }

    fn dir(p: &str) -> Result<Target, UnsafeName> {
        Ok(Target::Dir(PathBuf::from(p)))
    }

    #[test]
    fn ordinary_names_map_piece_by_piece() {
        assert_eq!(target("a", 5), file("a"));
        assert_eq!(target("a/b/c.txt", 5), file("a/b/c.txt"));
        assert_eq!(target("a/b.../..c", 5), file("a/b.../..c"));
        assert_eq!(target(".hidden", 0), file(".hidden"));
        assert_eq!(
            target("with space/and\\back", 1),
            file("with space/and\\back")
        );
    }

    #[test]
    fn markers_become_directories_only_when_empty() {
        assert_eq!(target("a/b/", 0), dir("a/b"));
        assert_eq!(target("", 0), dir(""), "the prefix's own marker");
        assert_eq!(target("a/", 3), Err(UnsafeName::MarkerWithContent(3)));
        assert_eq!(target("", 1), Err(UnsafeName::MarkerWithContent(1)));
    }

    #[test]
    fn dots_and_empty_pieces_are_refused() {
        for rel in ["..", "../x", "a/..", "a/../b", "a/../../etc/passwd", "../"] {
            assert_eq!(target(rel, 1), Err(UnsafeName::Dot("..")), "{rel}");
        }
        for rel in [".", "./x", "a/./b", "a/."] {
            assert_eq!(target(rel, 1), Err(UnsafeName::Dot(".")), "{rel}");
        }
        for rel in ["/etc/passwd", "//x", "a//b", "a/b//", "/", "//"] {
            assert_eq!(target(rel, 0), Err(UnsafeName::EmptyComponent), "{rel}");
        }
    }

    #[test]
    fn long_pieces_are_refused() {
        let longest = "x".repeat(MAX_COMPONENT);
        assert!(target(&format!("a/{longest}"), 1).is_ok());
        let too_long = "x".repeat(MAX_COMPONENT + 1);
        assert_eq!(
            target(&format!("a/{too_long}/b"), 1),
            Err(UnsafeName::ComponentTooLong {
                len: MAX_COMPONENT + 1
            })
        );
        // Bytes count, not characters.
        let wide = "é".repeat(128);
        assert_eq!(
            target(&wide, 1),
            Err(UnsafeName::ComponentTooLong { len: 256 })
        );
    }

    #[test]
    fn no_mapped_path_leaves_the_directory() {
        use std::path::Component;
        let samples = [
            "a", "a/b", "..", "../a", "a/..", ".", "/a", "a//", "a/./b", "...", "..a", "a..",
        ];
        for rel in samples {
            if let Ok(Target::File(p) | Target::Dir(p)) = target(rel, 0) {
                assert!(
                    p.components().all(|c| matches!(c, Component::Normal(_))),
                    "{rel} mapped to {p:?}"
                );
            }
        }
    }

    #[test]
    fn relative_strips_the_prefix() {
        assert_eq!(relative("photos/a.jpg", "photos/"), Some("a.jpg"));
        assert_eq!(relative("photos/", "photos/"), Some(""));
        assert_eq!(relative("photosx/a", "photos/"), None);
        assert_eq!(relative("anything", ""), Some("anything"));
    }

    fn claim_all(names: &[&str]) -> Vec<Result<(), Conflict>> {
        let mut claims = Claims::default();
        names
            .iter()
            .map(|rel| claims.claim(rel, &target(rel, 0).unwrap()))
            .collect()
    }

    fn conflict(file: &str) -> Result<(), Conflict> {
        Err(Conflict { file: file.into() })
    }

    #[test]
    fn a_file_then_a_name_under_it_conflicts() {
        // Name order: '-' and '.' sort before '/'.
        let names = ["a", "a-1", "a.txt", "a/b", "a/c/d", "b"];
        assert_eq!(
            claim_all(&names),
            vec![Ok(()), Ok(()), Ok(()), conflict("a"), conflict("a"), Ok(())]
        );
    }

    #[test]
    fn a_file_then_its_marker_conflicts_but_a_marker_claims_nothing() {
        assert_eq!(claim_all(&["a", "a/"]), vec![Ok(()), conflict("a")]);
        assert_eq!(claim_all(&["a/", "a/b"]), vec![Ok(()), Ok(())]);
        assert_eq!(claim_all(&["", "a"]), vec![Ok(()), Ok(())]);
    }

    #[test]
    fn nested_conflicts_name_the_nearest_file() {
        let names = ["x/y", "x/y/z", "x/y0", "x/z", "x/z/w/v"];
        assert_eq!(
            claim_all(&names),
            vec![Ok(()), conflict("x/y"), Ok(()), Ok(()), conflict("x/z")]
        );
    }

    #[test]
    fn unrelated_names_never_conflict() {
        let names = ["a/b", "a/c", "ab", "b/a", "ba"];
        assert!(claim_all(&names).iter().all(Result::is_ok));
    }
}
