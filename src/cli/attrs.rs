//! A local file's mode and modification time: read when it is put,
//! restored when it is got.
//!
//! Only the permission bits are kept (not the owner, which another machine
//! may not have). They are restored on the file as written, before it is
//! renamed into place, so a file never appears with the wrong ones; the
//! time is restored last, since writing would change it again. A
//! directory's are restored after everything inside it is written, for the
//! same reason, and because a directory without write permission could not
//! be filled.
//!
//! The setuid, setgid and sticky bits are stored but not restored: anyone
//! who can write to the swarm could otherwise plant a setuid program in a
//! tree that root fetches (`cp -p` and `rsync -p` drop them too when the
//! owner changes). A mode or time the file system refuses (vfat, a file of
//! another user) leaves a warning, not a failed transfer: the bytes, which
//! matter most, are in place.

use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::chunk::{FileAttributes, MODE_BITS, Mtime, parse_mode};

/// The bits of a stored mode that are restored: read, write and execute
/// for owner, group and others.
const RESTORED_BITS: u32 = 0o777;

/// The mode and modification time of what `meta` describes.
pub fn of_metadata(meta: &Metadata) -> FileAttributes {
    let mtime = u32::try_from(meta.mtime_nsec()).ok().map(|nanos| Mtime {
        secs: meta.mtime(),
        nanos,
    });
    FileAttributes {
        mode: Some(meta.mode() & MODE_BITS),
        mtime,
    }
}

/// The attributes a listing or a manifest reports (`mode` in octal, `mtime`
/// in decimal seconds); a value that does not parse is left out rather
/// than failing the transfer, which loses nothing the file's bytes hold.
pub fn of_report(mode: Option<&str>, mtime: Option<&str>) -> FileAttributes {
    FileAttributes {
        mode: mode.and_then(|m| parse_mode(m).ok()),
        mtime: mtime.and_then(|t| Mtime::parse(t).ok()),
    }
}

/// Gives the open file `file` the mode and time in `attributes` (each only
/// if known).
///
/// # Errors
/// The file system refuses either change.
pub fn apply(file: &File, attributes: &FileAttributes) -> io::Result<()> {
    if let Some(mode) = attributes.mode {
        file.set_permissions(Permissions::from_mode(mode & RESTORED_BITS))?;
    }
    if let Some(time) = attributes.mtime.and_then(Mtime::to_system) {
        file.set_modified(time)?;
    }
    Ok(())
}

/// [`apply`] to the file or directory at `path`; a symbolic link there is
/// not followed (and fails).
///
/// # Errors
/// It cannot be opened, or the file system refuses either change.
pub fn apply_at(path: &Path, attributes: &FileAttributes) -> io::Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    let nofollow = rustix::fs::OFlags::NOFOLLOW.bits();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(nofollow).unwrap_or(0))
        .open(path)?;
    apply(&file, attributes)
}

/// Prints a warning that `path` kept its own mode and time.
pub fn warn(path: &Path, error: &io::Error) {
    eprintln!(
        "warning: {}: cannot set its stored mode and time: {error}",
        path.display()
    );
}

/// Whether the file `meta` describes already has `attributes` (what is
/// unknown matches anything).
pub fn has(meta: &Metadata, attributes: &FileAttributes) -> bool {
    let local = of_metadata(meta);
    attributes
        .mode
        .is_none_or(|mode| local.mode == Some(mode & RESTORED_BITS))
        && attributes
            .mtime
            .is_none_or(|time| local.mtime == Some(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_applied_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let wanted = FileAttributes {
            mode: Some(0o4640),
            mtime: Some(Mtime {
                secs: 1_500_000_000,
                nanos: 123_456_789,
            }),
        };
        let before = std::fs::metadata(&path).unwrap();
        assert!(!has(&before, &wanted));
        apply_at(&path, &wanted).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        let restored = FileAttributes {
            mode: Some(0o640),
            ..wanted
        };
        assert_eq!(of_metadata(&after), restored, "no setuid bit");
        assert!(has(&after, &wanted));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(apply_at(&link, &wanted).is_err(), "links are not followed");
        assert!(has(&after, &FileAttributes::default()));
    }

    #[test]
    fn reported_values_that_do_not_parse_are_left_out() {
        let attributes = of_report(Some("0755"), Some("soon"));
        assert_eq!(attributes.mode, Some(0o755));
        assert_eq!(attributes.mtime, None);
    }
}
