//! `shoal put -r` and `shoal get -r` through a real peer: round trips of a
//! tree with links, FIFOs and empty directories, resuming, names that are
//! unsafe as paths, and interruption.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{Peer, random_bytes, wait_until};

const MIB: usize = 1024 * 1024;

/// The run's stderr lines starting with `start`.
fn lines_starting(out: &Output, start: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with(start))
        .map(str::to_owned)
        .collect()
}

/// Runs a tree command with `--json`, which must succeed, and returns its
/// summary and stderr.
fn tree_ok(peer: &Peer, args: &[&str]) -> (serde_json::Value, Output) {
    let out = peer.cli(args);
    assert!(
        out.status.success(),
        "shoal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = serde_json::from_slice(&out.stdout).expect("--json output is JSON");
    (summary, out)
}

fn counts(summary: &serde_json::Value, fields: &[&str]) -> Vec<u64> {
    fields
        .iter()
        .map(|f| {
            summary[*f]
                .as_u64()
                .unwrap_or_else(|| panic!("no {f} in {summary}"))
        })
        .collect()
}

/// Every regular file under `root` (links not followed) with its content,
/// and every directory, by relative path.
fn snapshot(root: &Path) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    fn visit(
        root: &Path,
        dir: &Path,
        files: &mut BTreeMap<String, Vec<u8>>,
        dirs: &mut Vec<String>,
    ) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(rel);
                visit(root, &path, files, dirs);
            } else if kind.is_file() {
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    visit(root, root, &mut files, &mut dirs);
    dirs.sort();
    (files, dirs)
}

/// Every path under `root` whose name marks a download's temporary file.
fn temporaries(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".shoal-get-")
            {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            }
        }
    }
    found
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .expect("make a FIFO");
}

/// photos/ with nested directories, an empty one, a multi-chunk file, an
/// empty file, links (to a file, to a directory, back up) and a FIFO.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("nested/deep/er")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("a.txt"), b"alpha").unwrap();
    fs::write(root.join("a-b.txt"), b"sorts before a/ but after a").unwrap();
    fs::write(
        root.join("nested/deep/er/big.bin"),
        random_bytes(3 * MIB + 17, 1),
    )
    .unwrap();
    fs::write(root.join("nested/one.bin"), random_bytes(700 * 1024, 2)).unwrap();
    fs::write(root.join("nested/zero"), b"").unwrap();
    symlink("a.txt", root.join("link")).unwrap();
    symlink("nested", root.join("dirlink")).unwrap();
    symlink("..", root.join("nested/up")).unwrap();
    mkfifo(&root.join("fifo"));
}

#[test]
fn a_tree_round_trips_and_a_rerun_moves_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let source = tmp.path().join("photos");
    make_tree(&source);
    let restored = tmp.path().join("restored");
    let (src, dst) = (source.to_str().unwrap(), restored.to_str().unwrap());
    let fields = ["files", "stored", "unchanged", "skipped", "failed"];

    let (put, out) = tree_ok(&peer, &["put", "-r", src, "--json"]);
    // a.txt, a-b.txt, big.bin, one.bin and zero, and the markers of the
    // five directories (photos/ itself included); skipped: link, dirlink,
    // nested/up and the FIFO.
    assert_eq!(counts(&put, &fields), [9, 5, 0, 4, 0], "{put}");
    assert_eq!(put["directories"], 5, "{put}");
    assert_eq!(put["failures"], serde_json::json!([]));
    assert_eq!(put["bytes"], (5 + 27 + 3 * MIB + 17 + 700 * 1024) as u64);
    let skipped = lines_starting(&out, "skipped: ");
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped.iter().any(|l| l.contains("FIFO")), "{skipped:?}");
    assert!(
        skipped.iter().any(|l| l.contains("symbolic link")),
        "{skipped:?}"
    );
    let mut names = peer.names();
    names.sort();
    assert_eq!(
        names,
        [
            "photos/",
            "photos/a-b.txt",
            "photos/a.txt",
            "photos/empty/",
            "photos/nested/",
            "photos/nested/deep/",
            "photos/nested/deep/er/",
            "photos/nested/deep/er/big.bin",
            "photos/nested/one.bin",
            "photos/nested/zero",
        ]
    );

    let (get, _) = tree_ok(&peer, &["get", "-r", "photos", "-o", dst, "--json"]);
    assert_eq!(
        counts(
            &get,
            &["files", "directories", "fetched", "unchanged", "failed"]
        ),
        [5, 5, 5, 0, 0],
        "{get}"
    );
    assert!(get.get("skipped").is_none() && get.get("stored").is_none());
    let (source_files, _) = snapshot(&source);
    let (restored_files, restored_dirs) = snapshot(&restored);
    assert!(
        source_files == restored_files,
        "restored files differ: {:?} vs {:?}",
        source_files.keys().collect::<Vec<_>>(),
        restored_files.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        restored_dirs,
        ["empty", "nested", "nested/deep", "nested/deep/er"]
    );
    assert!(fs::symlink_metadata(restored.join("link")).is_err());
    assert!(fs::symlink_metadata(restored.join("fifo")).is_err());
    assert!(temporaries(&restored).is_empty());

    // Nothing changed: nothing moves.
    let (put, _) = tree_ok(&peer, &["put", "-r", src, "--json"]);
    assert_eq!(counts(&put, &fields), [9, 0, 5, 4, 0], "{put}");
    assert_eq!(put["bytes"], 0);
    let (get, _) = tree_ok(&peer, &["get", "-r", "photos/", "-o", dst, "--json"]);
    assert_eq!(
        counts(&get, &["fetched", "unchanged", "failed"]),
        [0, 5, 0],
        "{get}"
    );

    // A file changed in place (same size) is stored again, and fetched again.
    fs::write(source.join("a.txt"), b"omega").unwrap();
    let out = peer.ok(&["put", "-r", src]);
    assert!(
        out.starts_with("put 9 files and 5 directories in ")
            && out.contains(": 1 stored (5 B), 4 unchanged, 4 skipped, 0 failed"),
        "{out}"
    );
    // A file cut short locally, as a crash before the final sync may leave
    // it, is found and fetched again.
    let big = restored.join("nested/deep/er/big.bin");
    fs::write(&big, b"").unwrap();
    let (get, _) = tree_ok(&peer, &["get", "-r", "photos", "-o", dst, "--json"]);
    assert_eq!(
        counts(&get, &["fetched", "unchanged", "failed"]),
        [2, 3, 0],
        "{get}"
    );
    assert_eq!(fs::read(restored.join("a.txt")).unwrap(), b"omega");
    assert_eq!(fs::read(&big).unwrap(), random_bytes(3 * MIB + 17, 1));

    // Following links: the link to a file and the directory behind dirlink
    // are stored; the loops back up and the FIFO are still skipped.
    let (put, out) = tree_ok(
        &peer,
        &["put", "-r", "-L", src, "--name", "linked", "--json"],
    );
    assert_eq!(counts(&put, &fields), [12, 9, 0, 3, 0], "{put}");
    assert_eq!(put["directories"], 8, "{put}");
    let loops = lines_starting(&out, "skipped: ");
    assert_eq!(
        loops.iter().filter(|l| l.contains("loop")).count(),
        2,
        "{loops:?}"
    );
    let linked = tmp.path().join("linked");
    tree_ok(
        &peer,
        &[
            "get",
            "-r",
            "linked",
            "-o",
            linked.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(fs::read(linked.join("link")).unwrap(), b"omega");
    assert_eq!(
        fs::read(linked.join("dirlink/one.bin")).unwrap(),
        random_bytes(700 * 1024, 2)
    );
}

#[test]
fn names_unsafe_as_paths_fail_and_everything_else_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let upload = tmp.path().join("upload");
    let long = format!("t/{}", "l".repeat(300));
    let names: Vec<(&str, &[u8])> = vec![
        ("t/ok", b"ok"),
        ("t/sub/fine", b"fine"),
        ("t/dir/", b""),
        ("t/a", b"a file"),
        ("t/a/b", b"under a file"),
        ("t/../evil", b"evil"),
        ("t/./dot", b"dot"),
        ("t//x", b"double slash"),
        ("t/marker/", b"a marker with content"),
        ("t/linked/x", b"through a link"),
        (&long, b"long"),
    ];
    for (name, content) in &names {
        fs::write(&upload, content).unwrap();
        peer.ok(&["put", upload.to_str().unwrap(), "--name", name]);
    }

    // Links already in the directory: one where a directory is needed, one
    // at a file's own path. Neither may be written through.
    let out_dir = tmp.path().join("out");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&out_dir).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("target"), b"untouched").unwrap();
    symlink(&outside, out_dir.join("linked")).unwrap();
    symlink(outside.join("target"), out_dir.join("ok")).unwrap();

    let out = peer.cli(&["get", "-r", "t", "-o", out_dir.to_str().unwrap(), "--json"]);
    assert!(!out.status.success(), "unsafe names must fail the run");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json output is JSON");
    assert_eq!(
        counts(
            &summary,
            &["files", "directories", "fetched", "unchanged", "failed"]
        ),
        [10, 1, 3, 0, 7],
        "{summary}"
    );
    let errors = lines_starting(&out, "error: ");
    let reason = |name: &str| -> String {
        errors
            .iter()
            .find(|l| l.starts_with(&format!("error: {name}: ")))
            .unwrap_or_else(|| panic!("no error line for {name}: {errors:?}"))
            .clone()
    };
    assert!(reason("t/../evil").contains("unsafe name"));
    assert!(reason("t/./dot").contains("unsafe name"));
    assert!(reason("t//x").contains("unsafe name"));
    assert!(reason(&long).contains("component too long"));
    assert!(reason("t/a/b").contains("conflicts"));
    assert!(reason("t/marker/").contains("marks a directory"));
    assert!(reason("t/linked/x").contains("symbolic link"));
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(last.starts_with("error: 7 of 10 files failed"), "{last}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 7);
    assert!(
        failures
            .iter()
            .all(|f| f["name"].is_string() && f["error"].is_string())
    );

    // What is safe is written; nothing escapes the directory.
    assert_eq!(fs::read(out_dir.join("sub/fine")).unwrap(), b"fine");
    assert_eq!(fs::read(out_dir.join("a")).unwrap(), b"a file");
    assert!(fs::metadata(out_dir.join("dir")).unwrap().is_dir());
    let ok = fs::symlink_metadata(out_dir.join("ok")).unwrap();
    assert!(ok.is_file(), "the link at ok's own path is replaced");
    assert_eq!(fs::read(out_dir.join("ok")).unwrap(), b"ok");
    assert_eq!(fs::read(outside.join("target")).unwrap(), b"untouched");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    let mut around: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    around.sort();
    assert_eq!(around, ["out", "outside", "peer", "peer.log", "upload"]);
    assert!(fs::symlink_metadata(out_dir.join("evil")).is_err());
    assert!(temporaries(&out_dir).is_empty());
}

#[test]
fn prefixes_local_names_and_misuse() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let source = tmp.path().join("src");
    fs::create_dir_all(source.join("d")).unwrap();
    fs::write(source.join("d/good"), b"good").unwrap();
    fs::write(source.join(OsStr::from_bytes(b"bad\xff")), b"bad").unwrap();
    let src = source.to_str().unwrap();

    // A local name that is not UTF-8 fails; the rest is stored.
    let out = peer.cli(&["put", "-r", src, "--name", "", "--json"]);
    assert!(!out.status.success());
    let errors = lines_starting(&out, "error: ");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("not UTF-8"), "{errors:?}");
    assert!(errors[1].contains("1 of 2 files failed"), "{errors:?}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["failures"][0]["path"]
            .as_str()
            .map(|p| p.starts_with(src)),
        Some(true)
    );
    // `--name ''`: no prefix at all (and so no marker for the root).
    let mut names = peer.names();
    names.sort();
    assert_eq!(names, ["d/", "d/good"]);

    // `get -r ''` fetches everything, and needs -o.
    common::assert_one_line_error(&peer.cli(&["get", "-r", ""]), "pass -o DIR");
    let all = tmp.path().join("all");
    tree_ok(
        &peer,
        &["get", "-r", "", "-o", all.to_str().unwrap(), "--json"],
    );
    assert_eq!(fs::read(all.join("d/good")).unwrap(), b"good");

    common::assert_one_line_error(&peer.cli(&["put", "-r", "-", "--name", "x"]), "stdin");
    common::assert_one_line_error(&peer.cli(&["get", "-r", "d", "-o", "-"]), "stdout");
    common::assert_one_line_error(
        &peer.cli(&["put", "-r", source.join("d/good").to_str().unwrap()]),
        "not a directory",
    );
    common::assert_one_line_error(&peer.cli(&["put", "-r", src, "--jobs", "0"]), "jobs");
    common::assert_one_line_error(&peer.cli(&["put", src, "-L"]), "--recursive");
}

#[test]
fn an_interrupted_get_leaves_no_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let source = tmp.path().join("big");
    fs::create_dir_all(&source).unwrap();
    fs::write(source.join("large.bin"), random_bytes(48 * MIB, 3)).unwrap();
    peer.ok(&["put", "-r", source.to_str().unwrap()]);

    let out_dir = tmp.path().join("out");
    let mut child = common::command_in(None)
        .args(["get", "-r", "big", "-o", out_dir.to_str().unwrap()])
        .env("SHOAL_API", &peer.api)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt it once a download is under way (or it has finished).
    wait_until(Duration::from_secs(60), "a download to start", || {
        !temporaries(&out_dir).is_empty() || child.try_wait().unwrap().is_some()
    });
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code().is_some(),
        "the command exits by itself rather than dying of the signal"
    );
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("interrupted"), "{stderr}");
    }
    assert!(
        temporaries(&out_dir).is_empty(),
        "{:?}",
        temporaries(&out_dir)
    );
}

/// A file's or directory's permission bits and modification time.
fn mode_and_time(path: &Path) -> (u32, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.mtime(), meta.mtime_nsec())
}

/// Sets `path`'s modification time to `secs` and `nanos` past the epoch.
fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let at = std::time::UNIX_EPOCH + Duration::new(secs, nanos);
    fs::File::open(path).unwrap().set_modified(at).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn files_and_directories_keep_their_mode_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let source = tmp.path().join("keep");
    fs::create_dir_all(source.join("bin")).unwrap();
    fs::create_dir_all(source.join("locked")).unwrap();
    fs::write(source.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::write(source.join("locked/secret"), random_bytes(2 * MIB + 5, 9)).unwrap();
    fs::write(source.join("notes.txt"), b"notes").unwrap();
    // The setuid bit is stored but not restored.
    set_mode(&source.join("bin/tool"), 0o4750);
    set_mode(&source.join("locked/secret"), 0o400);
    set_mode(&source.join("notes.txt"), 0o604);
    set_mtime(&source.join("bin/tool"), 1_500_000_000, 123_456_789);
    set_mtime(&source.join("locked/secret"), 1_400_000_000, 5);
    set_mtime(&source.join("notes.txt"), 1_300_000_000, 0);
    // A directory without write permission, and times set last, since
    // writing inside a directory changes its time.
    set_mode(&source.join("locked"), 0o500);
    set_mtime(&source.join("locked"), 1_200_000_000, 7);
    set_mtime(&source.join("bin"), 1_100_000_000, 0);
    set_mtime(&source, 1_000_000_000, 1);
    let every = [
        "",
        "bin",
        "bin/tool",
        "locked",
        "locked/secret",
        "notes.txt",
    ];
    let mut before: Vec<_> = every
        .iter()
        .map(|p| mode_and_time(&source.join(p)))
        .collect();
    before[2].0 = 0o750;

    tree_ok(&peer, &["put", "-r", source.to_str().unwrap(), "--json"]);
    let restored = tmp.path().join("restored");
    tree_ok(
        &peer,
        &[
            "get",
            "-r",
            "keep",
            "-o",
            restored.to_str().unwrap(),
            "--json",
        ],
    );
    let after: Vec<_> = every
        .iter()
        .map(|p| mode_and_time(&restored.join(p)))
        .collect();
    assert_eq!(after, before, "{every:?}");

    // Touching a file changes nothing but its time: put -r stores the new
    // time without sending the content again.
    set_mtime(&source.join("notes.txt"), 1_300_000_001, 0);
    let (put, _) = tree_ok(&peer, &["put", "-r", source.to_str().unwrap(), "--json"]);
    assert_eq!(
        counts(&put, &["stored", "unchanged", "bytes"]),
        [1, 2, 0],
        "{put}"
    );
    // And get -r gives the restored copy its new time without fetching it.
    let (get, _) = tree_ok(
        &peer,
        &[
            "get",
            "-r",
            "keep",
            "-o",
            restored.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(counts(&get, &["fetched", "unchanged"]), [0, 3], "{get}");
    assert_eq!(mode_and_time(&restored.join("notes.txt")).1, 1_300_000_001);

    // One file: `get` restores mode and time over an existing file's own,
    // and `stat` shows them; `--no-preserve` leaves a new file's default
    // mode and the time it was written.
    let single = tmp.path().join("single");
    fs::write(&single, b"other").unwrap();
    set_mode(&single, 0o666);
    peer.ok(&["get", "keep/bin/tool", "-o", single.to_str().unwrap()]);
    assert_eq!(mode_and_time(&single), before[2]);
    let stat = peer.ok(&["stat", "keep/bin/tool"]);
    assert!(stat.contains("mode     4750"), "{stat}");
    assert!(
        stat.contains("modified 2017-07-14T02:40:00.123456789Z"),
        "{stat}"
    );
    let plain = tmp.path().join("plain");
    peer.ok(&[
        "get",
        "keep/bin/tool",
        "-o",
        plain.to_str().unwrap(),
        "--no-preserve",
    ]);
    let (mode, secs, _) = mode_and_time(&plain);
    assert_eq!(mode & 0o111, 0, "no execute bits without the stored mode");
    assert!(secs > 1_700_000_000, "written now, not in 2017");
    let json: serde_json::Value =
        serde_json::from_str(&peer.ok(&["stat", "keep/notes.txt", "--json"])).unwrap();
    assert_eq!(json["mode"], "0604");
    assert_eq!(json["mtime"], "1300000001.000000000");
}
