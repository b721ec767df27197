//! Walking a local directory tree for `put -r`, lazily and in the order of
//! the names its files get.
//!
//! Only one directory's entries are held at a time per level of depth, never
//! the whole tree. Each directory's entries are sorted by their name with a
//! `/` appended to directories, which makes the walk's order exactly the
//! byte order of the stored names (`a-1` before `a/b`, since `-` sorts before
//! `/`): the upload can then match the walk against the swarm's listing of
//! the prefix, which comes in that order, one page at a time.
//!
//! Conventions:
//! - the directory given is always followed if it is a symbolic link;
//! - symbolic links inside it are skipped unless `follow` is set; followed,
//!   a link to a directory above it (a loop) is skipped, and a link to
//!   nothing fails;
//! - FIFOs, sockets and devices are always skipped (reading one could block
//!   forever or never end);
//! - every directory, the root included, yields [`Entry::Dir`] before what
//!   it holds, so its mode and time can be kept;
//! - an entry whose name is not UTF-8 cannot become part of a file name and
//!   fails; a directory whose name is not UTF-8 fails once for all it holds.
//!
//! This is blocking file-system code; it runs on a blocking thread.

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::chunk::FileAttributes;
use crate::cli::attrs;

/// One thing the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file (or, when following links, a link to one).
    File {
        /// Where it is.
        path: PathBuf,
        /// Its path below the root, `/`-separated.
        rel: String,
        /// Its size when the walk saw it.
        size: u64,
        /// Its mode and modification time when the walk saw it.
        attributes: FileAttributes,
    },
    /// A directory, before anything in it.
    Dir {
        /// Where it is.
        path: PathBuf,
        /// Its path below the root with a trailing `/`; empty for the root.
        rel: String,
        /// Its mode and modification time when the walk saw it.
        attributes: FileAttributes,
    },
    /// Something not stored, by convention.
    Skipped {
        /// Where it is.
        path: PathBuf,
        /// Why it is not stored.
        reason: String,
    },
    /// Something that should have been stored but cannot be.
    Failed {
        /// Where it is.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A directory's entry as classified when the directory was read.
#[derive(Debug)]
enum Kind {
    File(u64, FileAttributes),
    Dir,
    Skip(String),
    Fail(String),
}

#[derive(Debug)]
struct Child {
    /// The name as the file system has it.
    os_name: OsString,
    /// The name as text (lossy only for a name that fails).
    name: String,
    kind: Kind,
}

/// A directory being walked.
#[derive(Debug)]
struct Frame {
    path: PathBuf,
    /// Its path below the root with a trailing `/` (empty for the root).
    rel: String,
    /// Device and inode, to recognise a link back to it.
    id: (u64, u64),
    children: std::vec::IntoIter<Child>,
}

/// The walk: an iterator of [`Entry`].
#[derive(Debug)]
pub struct Walk {
    follow: bool,
    root: Option<PathBuf>,
    stack: Vec<Frame>,
}

impl Walk {
    /// A walk of the directory `root`, following symbolic links inside it
    /// if `follow`.
    ///
    /// # Errors
    /// `root` cannot be read or is not a directory.
    pub fn new(root: &Path, follow: bool) -> io::Result<Walk> {
        let meta = fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Walk {
            follow,
            root: Some(root.to_owned()),
            stack: Vec::new(),
        })
    }

    /// Starts walking the directory at `path`: pushes it unless it is
    /// empty, and returns what to report: the directory, or why it cannot
    /// be walked (a loop, or unreadable).
    fn enter(&mut self, path: PathBuf, rel: String) -> Entry {
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => return failed(path, &e),
        };
        let id = (meta.dev(), meta.ino());
        if self.stack.iter().any(|frame| frame.id == id) {
            return Entry::Skipped {
                path,
                reason: "symbolic link loop: it leads back to a directory above it".into(),
            };
        }
        let children = match self.read(&path) {
            Ok(children) => children,
            Err(e) => return failed(path, &e),
        };
        if !children.is_empty() {
            self.stack.push(Frame {
                path: path.clone(),
                rel: rel.clone(),
                id,
                children: children.into_iter(),
            });
        }
        Entry::Dir {
            path,
            rel,
            attributes: attrs::of_metadata(&meta),
        }
    }

    /// A directory's entries, classified and in name order.
    fn read(&self, dir: &Path) -> io::Result<Vec<Child>> {
        let mut children = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str().map(str::to_owned) else {
                children.push(Child {
                    name: os_name.to_string_lossy().into_owned(),
                    os_name,
                    kind: Kind::Fail(
                        "its name is not UTF-8, so it cannot become part of a file name".into(),
                    ),
                });
                continue;
            };
            let kind = match entry.file_type() {
                Ok(t) if t.is_symlink() && !self.follow => {
                    Kind::Skip("symbolic link, not followed (-L follows links)".into())
                }
                Ok(t) if t.is_symlink() => match fs::metadata(entry.path()) {
                    Ok(meta) => classify(&meta),
                    Err(e) => Kind::Fail(format!("symbolic link to nothing usable: {e}")),
                },
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(_) => match entry.metadata() {
                    Ok(meta) => classify(&meta),
                    Err(e) => Kind::Fail(e.to_string()),
                },
                Err(e) => Kind::Fail(e.to_string()),
            };
            children.push(Child {
                os_name,
                name,
                kind,
            });
        }
        children.sort_by(name_order);
        Ok(children)
    }
}

/// Orders a directory's entries as the names they give: a directory sorts
/// as if it ended in `/`, as the names of the files inside it do.
fn name_order(a: &Child, b: &Child) -> Ordering {
    fn key(child: &Child) -> impl Iterator<Item = &u8> {
        let slash: &[u8] = if matches!(child.kind, Kind::Dir) {
            b"/"
        } else {
            b""
        };
        child.name.as_bytes().iter().chain(slash)
    }
    key(a).cmp(key(b)).then_with(|| a.os_name.cmp(&b.os_name))
}

fn classify(meta: &Metadata) -> Kind {
    let t = meta.file_type();
    if t.is_file() {
        Kind::File(meta.len(), attrs::of_metadata(meta))
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_fifo() {
        Kind::Skip("FIFO, not stored".into())
    } else if t.is_socket() {
        Kind::Skip("socket, not stored".into())
    } else if t.is_block_device() || t.is_char_device() {
        Kind::Skip("device, not stored".into())
    } else {
        Kind::Skip("not a regular file, not stored".into())
    }
}

fn failed(path: PathBuf, e: &io::Error) -> Entry {
    Entry::Failed {
        path,
        reason: e.to_string(),
    }
}

impl Iterator for Walk {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if let Some(root) = self.root.take() {
            return Some(self.enter(root, String::new()));
        }
        loop {
            let frame = self.stack.last_mut()?;
            let Some(child) = frame.children.next() else {
                self.stack.pop();
                continue;
            };
            let path = frame.path.join(&child.os_name);
            let rel = format!("{}{}", frame.rel, child.name);
            match child.kind {
                Kind::File(size, attributes) => {
                    return Some(Entry::File {
                        path,
                        rel,
                        size,
                        attributes,
                    });
                }
                Kind::Skip(reason) => return Some(Entry::Skipped { path, reason }),
                Kind::Fail(reason) => return Some(Entry::Failed { path, reason }),
                Kind::Dir => return Some(self.enter(path, format!("{rel}/"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn names(walk: Walk) -> Vec<String> {
        walk.map(|entry| match entry {
            Entry::File { rel, .. } => rel,
            Entry::Dir { rel, .. } => format!("{rel}(dir)"),
            Entry::Skipped { path, .. } => format!("skip:{}", path.display()),
            Entry::Failed { path, .. } => format!("fail:{}", path.display()),
        })
        .collect()
    }

    #[test]
    fn walks_in_name_order() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for dir in ["a/b", "a-", "c", "empty"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in ["a/b/x", "a/y", "a-/z", "a.txt", "a0", "c/1", "c/10", "c/2"] {
            fs::write(root.join(file), file).unwrap();
        }
        let walked = names(Walk::new(root, false).unwrap());
        let expected = [
            "(dir)",
            "a-/(dir)",
            "a-/z",
            "a.txt",
            "a/(dir)",
            "a/b/(dir)",
            "a/b/x",
            "a/y",
            "a0",
            "c/(dir)",
            "c/1",
            "c/10",
            "c/2",
            "empty/(dir)",
        ];
        assert_eq!(walked, expected);
        let names: Vec<String> = walked.iter().map(|n| n.replace("(dir)", "")).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "the walk's order is the names' order");
    }

    #[test]
    fn links_are_skipped_unless_followed_and_loops_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/f"), "f").unwrap();
        symlink("d/f", root.join("link")).unwrap();
        symlink("..", root.join("d/up")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();

        let plain = names(Walk::new(&root, false).unwrap());
        let shown = |p: &str| root.join(p).display().to_string();
        assert_eq!(
            plain,
            vec![
                "(dir)".to_owned(),
                "d/(dir)".to_owned(),
                "d/f".to_owned(),
                format!("skip:{}", shown("d/up")),
                format!("skip:{}", shown("dangling")),
                format!("skip:{}", shown("link")),
            ]
        );

        let followed = names(Walk::new(&root, true).unwrap());
        assert_eq!(
            followed,
            vec![
                "(dir)".to_owned(),
                "d/(dir)".to_owned(),
                "d/f".to_owned(),
                format!("skip:{}", shown("d/up")),
                format!("fail:{}", shown("dangling")),
                "link".to_owned(),
            ]
        );
    }

    #[test]
    fn an_empty_root_is_one_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(names(Walk::new(tmp.path(), false).unwrap()), ["(dir)"]);
        assert!(Walk::new(&tmp.path().join("missing"), false).is_err());
        fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(Walk::new(&tmp.path().join("file"), false).is_err());
    }

    #[test]
    fn non_utf8_names_fail() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join(OsStr::from_bytes(b"bad\xff"));
        fs::write(&bad, "x").unwrap();
        fs::write(tmp.path().join("good"), "x").unwrap();
        let walked: Vec<Entry> = Walk::new(tmp.path(), false).unwrap().collect();
        assert_eq!(walked.len(), 3);
        assert!(matches!(&walked[0], Entry::Dir { rel, .. } if rel.is_empty()));
        assert!(matches!(&walked[1], Entry::Failed { path, .. } if *path == bad));
        assert!(matches!(&walked[2], Entry::File { rel, size: 1, .. } if rel == "good"));
    }
}
