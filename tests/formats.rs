//! Stored formats across releases: a data directory written by the first
//! release opens with this one, every file reads back whole, and the
//! directory keeps working (writes, restarts) after it was brought to the
//! current format.

mod common;

use std::path::{Path, PathBuf};

use common::{Peer, get_bytes as get, put_bytes as put};
use tempfile::TempDir;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/first-release")
}

/// Copies the fixture's data directory into `to`, as a user's disk would
/// hold it (the identity key readable by its owner only).
fn copy_data(to: &Path) {
    let from = fixture().join("data");
    std::fs::create_dir_all(to.join("segments")).unwrap();
    for entry in ["identity.key", "shoal.redb", "segments/00000000.seg"] {
        std::fs::copy(from.join(entry), to.join(entry)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        to.join("identity.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

fn expected(file: &str) -> Vec<u8> {
    std::fs::read(fixture().join("expected").join(file)).unwrap()
}

#[test]
fn a_data_directory_from_the_first_release_reads_back_whole() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("peer");
    copy_data(&data);
    let mut peer = Peer::start(&data, &[]);
    let files = [
        ("small.txt", "small"),
        ("multi/chunked.bin", "chunked"),
        ("empty", "empty"),
        ("overwritten", "new"),
        ("names/with spaces and ünicode.txt", "unicode"),
    ];
    let check = |peer: &Peer| {
        for (name, file) in files {
            assert!(get(peer, dir.path(), name) == expected(file), "{name}");
        }
        let out = peer.cli(&["get", "deleted", "-o", "-"]);
        common::assert_one_line_error(&out, "no such file");
        let mut names = peer.names();
        names.sort();
        let mut want: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
    };
    check(&peer);
    assert!(
        peer.log_text()
            .contains("moved file records to the current format"),
        "the old record table was migrated"
    );

    // The directory now works as one written by this release.
    put(&peer, dir.path(), "overwritten", b"third version");
    peer.stop();
    peer.restart();
    assert_eq!(get(&peer, dir.path(), "overwritten"), b"third version");
    put(&peer, dir.path(), "overwritten", &expected("new"));
    check(&peer);
}
