//! Putting and getting files through a real peer: sizes at chunk
//! boundaries, awkward names, restarts, listings, manifests, ranges.

mod common;

use std::path::Path;

use common::{Peer, random_bytes};

const MIB: usize = 1024 * 1024;

fn put_file(peer: &Peer, dir: &Path, name: &str, content: &[u8]) -> serde_json::Value {
    let local = dir.join("upload.tmp");
    std::fs::write(&local, content).unwrap();
    peer.json(&["put", local.to_str().unwrap(), "--name", name, "--json"])
}

fn get_file(peer: &Peer, dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join("download.tmp");
    // `--` lets names that start with `-` through, as for any Unix tool.
    peer.ok(&["get", "-o", out.to_str().unwrap(), "--", name]);
    std::fs::read(out).unwrap()
}

#[test]
fn files_of_every_boundary_size_round_trip_and_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut peer = Peer::start(&tmp.path().join("peer"), &[]);
    let sizes = [0, 1, MIB - 1, MIB, MIB + 1, 5 * MIB + 12_345];
    let mut files = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let content = random_bytes(size, i as u64);
        let name = format!("sizes/{size}");
        let put = put_file(&peer, tmp.path(), &name, &content);
        assert_eq!(put["name"], name.as_str());
        assert_eq!(put["size"], size as u64);
        assert_eq!(put["blake3"], blake3::hash(&content).to_hex().as_str());
        assert_eq!(put["chunks"], size.div_ceil(MIB) as u64);
        files.push((name, content));
    }
    for (name, content) in &files {
        assert!(
            get_file(&peer, tmp.path(), name) == *content,
            "{name} differs"
        );
    }

    let peer_id = peer.json(&["status", "--json"])["peer_id"].clone();
    let id = peer.ok(&["id", "--data", peer.data.to_str().unwrap()]);
    assert_eq!(
        id.trim(),
        peer_id.as_str().unwrap(),
        "shoal id must print the running peer's id"
    );
    peer.stop();
    peer.restart();
    assert_eq!(
        peer.json(&["status", "--json"])["peer_id"],
        peer_id,
        "identity must persist"
    );
    for (name, content) in &files {
        assert!(
            get_file(&peer, tmp.path(), name) == *content,
            "{name} differs after restart"
        );
    }
    let status = peer.json(&["status", "--json"]);
    assert_eq!(status["store"]["files"], sizes.len() as u64);
    assert_eq!(status["members"][0]["peer_id"], peer_id);
    assert_eq!(status["members"][0]["state"], "alive");
}

#[test]
fn names_are_opaque_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let names = [
        "..",
        ".",
        "a/b/c.txt",
        "/leading/slash",
        "trailing/",
        "a//b",
        "spaces and ünïcödé 日本",
        "%41%2F?query=1#frag&x",
        "plus+sign",
        "-starts-with-dash",
    ];
    for (i, name) in names.iter().enumerate() {
        let content = random_bytes(1000 + i, i as u64);
        put_file(&peer, tmp.path(), name, &content);
        assert!(
            get_file(&peer, tmp.path(), name) == content,
            "{name:?} differs"
        );
    }
    let mut listed = peer.names();
    listed.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(listed, expected);
    // A 63-byte bucket, `/` and a 1,024-byte S3 key.
    let longest = "n".repeat(1088);
    put_file(&peer, tmp.path(), &longest, b"x");
    assert_eq!(get_file(&peer, tmp.path(), &longest), b"x");
}

#[test]
fn stat_lists_chunks_with_digests_and_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let content = random_bytes(2 * MIB + 10, 7);
    put_file(&peer, tmp.path(), "s", &content);
    let stat = peer.json(&["stat", "s", "--json"]);
    let me = peer.json(&["status", "--json"])["peer_id"].clone();
    assert_eq!(stat["name"], "s");
    assert_eq!(stat["size"], content.len() as u64);
    let chunks = stat["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    for (i, (chunk, bytes)) in chunks.iter().zip(content.chunks(MIB)).enumerate() {
        assert_eq!(chunk["index"], i as u64);
        assert_eq!(chunk["size"], bytes.len() as u64);
        assert_eq!(chunk["blake3"], blake3::hash(bytes).to_hex().as_str());
        assert_eq!(
            chunk["md5"],
            hex::encode(<md5::Md5 as md5::Digest>::digest(bytes))
        );
        assert_eq!(chunk["replicas"], serde_json::json!([me]));
    }
}

#[test]
fn listing_filters_by_prefix_and_deleting_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    for name in ["logs/a", "logs/b", "logsx", "other"] {
        put_file(&peer, tmp.path(), name, name.as_bytes());
    }
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(peer.json(&["ls", "logs/", "--json"])),
        ["logs/a", "logs/b"]
    );
    assert_eq!(names(peer.json(&["ls", "--json"])).len(), 4);
    assert_eq!(
        names(peer.json(&["ls", "nothing", "--json"])),
        Vec::<String>::new()
    );
    let human = peer.ok(&["ls", "logs"]);
    assert_eq!(human.lines().count(), 3, "{human}");

    peer.ok(&["rm", "logs/a"]);
    assert_eq!(names(peer.json(&["ls", "logs/", "--json"])), ["logs/b"]);
    common::assert_one_line_error(
        &peer.cli(&["get", "logs/a", "-o", "/dev/null"]),
        "no such file",
    );
    put_file(&peer, tmp.path(), "logs/a", b"back again");
    assert_eq!(get_file(&peer, tmp.path(), "logs/a"), b"back again");
}

#[test]
fn overwriting_replaces_content_and_stdin_and_stdout_work() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    put_file(&peer, tmp.path(), "f", b"first version");
    put_file(&peer, tmp.path(), "f", b"second");
    assert_eq!(get_file(&peer, tmp.path(), "f"), b"second");

    let content = random_bytes(MIB + 3, 9);
    let mut child = std::process::Command::new(common::SHOAL)
        .args(["put", "-", "--name", "piped"])
        .env("SHOAL_API", &peer.api)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &content).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let out = peer.cli(&["get", "piped", "-o", "-"]);
    assert!(out.status.success());
    assert!(out.stdout == content, "stdout differs");

    // Without -o, get writes to the name's last segment in the current dir.
    put_file(&peer, tmp.path(), "dir/leaf.bin", b"leaf");
    let status = std::process::Command::new(common::SHOAL)
        .args(["get", "dir/leaf.bin"])
        .env("SHOAL_API", &peer.api)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(std::fs::read(tmp.path().join("leaf.bin")).unwrap(), b"leaf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_serves_ranges_head_and_json_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let content = random_bytes(3 * MIB, 11);
    let http = reqwest::Client::new();
    let api = &peer.api;

    let put = http
        .put(format!("{api}/v1/files/dir/r.bin"))
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let second = http
        .put(format!("{api}/v1/files/dir/s.bin"))
        .body("second")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);

    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-9", 0, 9),
        ("bytes=1048570-1048600", 1_048_570, 1_048_600),
        ("bytes=-100", content.len() - 100, content.len() - 1),
        ("bytes=3000000-", 3_000_000, content.len() - 1),
    ];
    for (range, start, end) in cases {
        let resp = http
            .get(format!("{api}/v1/files/dir/r.bin"))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            resp.headers()["content-range"].to_str().unwrap(),
            format!("bytes {start}-{end}/{}", content.len())
        );
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            &content[start..=end],
            "{range}"
        );
    }
    let resp = http
        .get(format!("{api}/v1/file?name=dir%2Fr.bin"))
        .header("range", "bytes=5000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes */{}", content.len()).as_str()
    );

    let head = http
        .head(format!("{api}/v1/files/dir/r.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        content.len().to_string().as_str()
    );
    assert_eq!(
        head.headers()["x-shoal-blake3"],
        blake3::hash(&content).to_hex().as_str()
    );

    let stale = http
        .get(format!("{api}/v1/files/dir/r.bin"))
        .header("if-match", "\"00\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let current = format!("\"{}\"", blake3::hash(&content).to_hex());
    for (if_match, expected) in [(current.as_str(), 200), ("*", 200), ("\"*\"", 412)] {
        let resp = http
            .head(format!("{api}/v1/files/dir/r.bin"))
            .header("if-match", if_match)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "If-Match: {if_match}");
    }
    let weak = format!("W/{current}");
    let resp = http
        .get(format!("{api}/v1/files/dir/r.bin"))
        .header("if-match", &weak)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412, "weak tags never match strongly");
    // If-Range: a range of the current version, or the whole of a changed one.
    let resumed = http
        .get(format!("{api}/v1/files/dir/r.bin"))
        .header("range", "bytes=10-19")
        .header("if-range", &current)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 206);
    let changed = http
        .get(format!("{api}/v1/files/dir/r.bin"))
        .header("range", "bytes=10-19")
        .header("if-range", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.bytes().await.unwrap().len(), content.len());

    let missing = http
        .get(format!("{api}/v1/files/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "no such file: nope");

    for (url, status) in [
        (format!("{api}/v1/file?name=%ff"), 400),
        (format!("{api}/v1/files/%ff"), 400),
        (format!("{api}/v1/file"), 400),
        (format!("{api}/v1/files?limit=0"), 400),
        (format!("{api}/v1/files?prefix={}", "p".repeat(1089)), 400),
    ] {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), status, "{url}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    let zero_suffix = http
        .get(format!("{api}/v1/files/dir/r.bin"))
        .header("range", "bytes=-0")
        .send()
        .await
        .unwrap();
    assert_eq!(zero_suffix.status(), 416);

    let bad = http
        .put(format!("{api}/v1/file?name=a%00b"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let wrong_hash = http
        .put(format!("{api}/v1/files/checked"))
        .header("x-shoal-blake3", blake3::hash(b"other").to_hex().as_str())
        .body("content")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_hash.status(), 422);
    assert_eq!(
        http.head(format!("{api}/v1/files/checked"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let page: serde_json::Value = http
        .get(format!("{api}/v1/files?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["files"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], "dir/r.bin");

    let deleted = http
        .delete(format!("{api}/v1/files/dir/r.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        http.get(format!("{api}/v1/files/dir/r.bin"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn get_writes_where_the_user_means() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("peer"), &[]);
    let content = random_bytes(MIB + 5, 21);
    put_file(&peer, tmp.path(), "dir/doc", &content);
    let run_get = |args: &[&str], umask: &str| {
        let script = format!("umask {umask}; exec \"$0\" \"$@\"");
        std::process::Command::new("sh")
            .args(["-c", &script, common::SHOAL, "get"])
            .args(args)
            .env("SHOAL_API", &peer.api)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };

    // A device is written to, never replaced.
    assert!(
        run_get(&["dir/doc", "-o", "/dev/null"], "022")
            .status
            .success()
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A link is followed to its target, which is replaced; the link stays.
    let target = tmp.path().join("target");
    std::os::unix::fs::symlink("target", tmp.path().join("link")).unwrap();
    assert!(run_get(&["dir/doc", "-o", "link"], "022").status.success());
    assert!(
        std::fs::symlink_metadata(tmp.path().join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read(&target).unwrap() == content);

    // With --no-preserve, new files honour the umask and replaced files
    // keep their mode; without it, both get the mode the file was put with.
    assert!(
        run_get(&["dir/doc", "-o", "private", "--no-preserve"], "077")
            .status
            .success()
    );
    let mode = std::fs::metadata(tmp.path().join("private"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(
        run_get(&["dir/doc", "-o", "target", "--no-preserve"], "022")
            .status
            .success()
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let stored = peer.json(&["stat", "dir/doc", "--json"])["mode"]
        .as_str()
        .map(|m| u32::from_str_radix(m, 8).unwrap())
        .expect("put records the mode");
    for (path, umask) in [("target", "022"), ("private2", "077")] {
        assert!(run_get(&["dir/doc", "-o", path], umask).status.success());
        let mode = std::fs::metadata(tmp.path().join(path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, stored, "{path}");
    }

    // Unusable destinations fail before anything is downloaded.
    std::fs::create_dir(tmp.path().join("doc")).unwrap();
    common::assert_one_line_error(&run_get(&["dir/doc"], "022"), "is a directory");
    common::assert_one_line_error(&run_get(&["dir/doc", "-o", ""], "022"), "value is required");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
