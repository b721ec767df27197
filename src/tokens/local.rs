//! The peer's own admin token, kept in its data directory.
//!
//! When the API binds beyond loopback every request needs a token, and
//! tokens are made through the API: something must open the first door.
//! Each peer makes an admin token of its own at its first start and keeps
//! it in `DATA/api.token`, readable only by the peer's user (who can read
//! the cluster secret and every chunk beside it anyway). The CLI on that
//! machine reads the file when `SHOAL_TOKEN` is not set, so whoever runs
//! the peer can make the swarm's tokens (`shoal token create`) with no
//! other step. The token works on this peer only: it is no swarm record,
//! and is replaced by deleting the file and restarting the peer.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::TokenText;
use super::secret;

/// The file, in the data directory, that keeps the peer's own token.
pub const LOCAL_TOKEN_FILE: &str = "api.token";

/// The peer's own admin token.
#[derive(Clone, Debug)]
pub struct LocalToken {
    token: TokenText,
}

/// Why the peer's own token cannot be read or made.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the peer's token file {}: {source}", path.display())]
pub struct LocalTokenError {
    action: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl LocalToken {
    /// The token kept in `data_dir`, made (durably, mode 0600) if there is
    /// none. A file that others may read is made private again.
    ///
    /// # Errors
    /// [`LocalTokenError`] if the file cannot be read, is not a token, or
    /// cannot be written.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, LocalTokenError> {
        let path = data_dir.join(LOCAL_TOKEN_FILE);
        let fail = |action, source| LocalTokenError {
            action,
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let token = TokenText::parse(&text).ok_or_else(|| {
                    fail(
                        "read",
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "it holds no token; delete it and restart to make a new one",
                        ),
                    )
                })?;
                let private = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(&path, private).map_err(|e| fail("protect", e))?;
                Ok(LocalToken { token })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let token = TokenText::generate().map_err(|e| fail("make", io::Error::other(e)))?;
                write_new(&path, &token).map_err(|e| fail("write", e))?;
                Ok(LocalToken { token })
            }
            Err(e) => Err(fail("read", e)),
        }
    }

    /// Whether `token` is this peer's own, in constant time.
    pub fn matches(&self, token: &TokenText) -> bool {
        token.id() == self.token.id() && secret::matches(token, &self.token.hash())
    }
}

/// Reads the token kept in `data_dir`, if there is one (for the CLI).
pub fn read(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(LOCAL_TOKEN_FILE)).ok()?;
    TokenText::parse(&text).map(|t| t.reveal())
}

fn write_new(path: &Path, token: &TokenText) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", token.reveal())?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_privately_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let first = LocalToken::load_or_create(tmp.path()).unwrap();
        let path = tmp.path().join(LOCAL_TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = LocalToken::load_or_create(tmp.path()).unwrap();
        assert!(again.matches(&first.token));
        let text = read(tmp.path()).unwrap();
        assert!(first.matches(&TokenText::parse(&text).unwrap()));
        assert!(!first.matches(&TokenText::generate().unwrap()));
        std::fs::write(&path, "junk").unwrap();
        let error = LocalToken::load_or_create(tmp.path()).unwrap_err();
        assert!(error.to_string().contains("holds no token"), "{error}");
    }
}
