//! The peer's identity: an ed25519 key pair kept in the data directory.
//!
//! The key is created on first use and reused ever after, so a peer keeps its
//! id across restarts and `shoal id` can print the id before the peer ever
//! runs. The file is written to a temporary name, synced and then linked into
//! place, so two processes racing to create it agree on one key and a crash
//! never leaves a truncated key behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use libp2p::PeerId;
use libp2p::identity::Keypair;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "identity.key";

/// The identity could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The data directory or key file could not be created or read.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The data directory path names something that is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The key file exists but does not hold a key.
    #[error("{path} does not hold a valid identity key; move it away to create a new identity")]
    Corrupt {
        /// The key file.
        path: PathBuf,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the key pair from `data_dir`, creating the directory and the key if
/// they do not exist yet.
///
/// # Errors
/// [`IdentityError`] if the directory or key cannot be created or read, or the
/// key file is not a key.
pub fn load_or_create(data_dir: &Path) -> Result<Keypair, IdentityError> {
    if fs::metadata(data_dir).is_ok_and(|m| !m.is_dir()) {
        return Err(IdentityError::NotADirectory(data_dir.to_owned()));
    }
    fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    let path = data_dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(data_dir, &path),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Keypair, IdentityError> {
    Keypair::from_protobuf_encoding(bytes).map_err(|_| IdentityError::Corrupt {
        path: path.to_owned(),
    })
}

fn create(data_dir: &Path, path: &Path) -> Result<Keypair, IdentityError> {
    let keypair = Keypair::generate_ed25519();
    let encoded = keypair
        .to_protobuf_encoding()
        .expect("ed25519 key pairs always have a protobuf encoding");
    let tmp = data_dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&encoded)?;
        file.sync_all()
    };
    write().map_err(io_err(&tmp))?;
    // hard_link fails if the key appeared meanwhile: then the other process
    // won the race and its key is the identity.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            fs::File::open(data_dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(data_dir))?;
            Ok(keypair)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let bytes = fs::read(path).map_err(io_err(path))?;
            decode(path, &bytes)
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new/sub");
        let first = load_or_create(&data).unwrap();
        let second = load_or_create(&data).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let mode = fs::metadata(data.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"garbage").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(IdentityError::Corrupt { .. })
        ));
    }
}
