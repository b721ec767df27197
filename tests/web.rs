//! The built-in web page, as a person sees it in a real browser: headless
//! Chromium loads the pages of a real swarm, a file is uploaded through the
//! Files page (its file input, as a user choosing a file), and the verdict
//! changes once a peer is killed. Every page also reads without
//! JavaScript, and the delete form only works from the peer's own page.
//! On a peer that needs tokens, the browser signs in through the form and
//! uploads with the cookie it keeps.
//!
//! The browser is Debian's `chromium`, driven by `tests/web/upload.py`
//! over the DevTools protocol with the Python of `SHOAL_PYTHON` (else
//! `.venv`), both of which `scripts/test.sh` installs. Without them the
//! test says so and passes, except in CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Peer, QUICK_HEALING, curl, get_bytes, put_bytes, python, random_bytes, start_swarm, wait_until,
};
use tempfile::TempDir;

/// A Python with the browser driver, and Chromium; `Err` says what lacks.
fn tools() -> Result<(PathBuf, &'static str), String> {
    let python = python::with_modules("websocket")?;
    let runs = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !runs(Path::new("chromium"), &["--version"]) {
        return Err("chromium is not installed (run scripts/test.sh as root)".into());
    }
    Ok((python, "chromium"))
}

/// The page at `url` as Chromium renders it, scripts run.
fn rendered(url: &str) -> String {
    let profile = TempDir::new().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The browser tools, or `None` after saying why the test is skipped;
/// in CI a missing tool fails the test instead.
fn tools_or_skip() -> Option<(PathBuf, &'static str)> {
    python::or_skip(tools(), "the browser test")
}

fn short(peer: &Peer) -> String {
    let id = peer.peer_id();
    id[id.len() - 8..].to_owned()
}

#[test]
fn the_page_shows_the_swarm_takes_an_upload_and_turns_when_a_peer_dies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some((python, chromium)) = tools_or_skip() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 4, &QUICK_HEALING);
    let page = peers[0].api.clone();
    put_bytes(
        &peers[0],
        dir.path(),
        "docs/report.txt",
        b"quarterly figures",
    );

    // Server-rendered: the overview reads without JavaScript, every member
    // listed, and the verdict once every peer has reported its files.
    wait_until(
        Duration::from_secs(30),
        "the verdict counts the file",
        || {
            curl(&[&format!("{page}/")])
                .1
                .contains("The one file has 3 copies")
        },
    );
    let (code, html) = curl(&[&format!("{page}/")]);
    assert_eq!(code, 200);
    for peer in &peers {
        assert!(html.contains(&short(peer)), "{} not listed", short(peer));
    }
    let dom = rendered(&format!("{page}/peers"));
    assert_eq!(
        dom.matches("<span class=\"state alive\">alive</span>")
            .count(),
        4,
        "{dom}"
    );

    // An upload through the Files page, with the browser's file input.
    let source = dir.path().join("from-the-page.bin");
    let content = random_bytes(300_000, 11);
    std::fs::write(&source, &content).unwrap();
    let out = Command::new(&python)
        .arg(root.join("tests/web/upload.py"))
        .args([chromium, &page])
        .arg(&source)
        .output()
        .expect("run the browser driver");
    assert!(
        out.status.success(),
        "the upload through the page failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(get_bytes(&peers[2], dir.path(), "from-the-page.bin") == content);
    let dom = rendered(&format!("{page}/file?name=from-the-page.bin"));
    assert!(
        dom.contains("from-the-page.bin") && dom.contains("id=\"chunks\""),
        "{dom}"
    );
    let dom = rendered(&format!("{page}/files?prefix=docs%2F"));
    assert!(dom.contains("report.txt"), "{dom}");

    // A folder of more files than a page shows is one row, and the files
    // after it are on the same page.
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..150 {
        std::fs::write(many.join(format!("f{i:03}")), format!("file {i}")).unwrap();
    }
    peers[0].ok(&["put", "-r", many.to_str().unwrap(), "--name", "many"]);
    put_bytes(&peers[0], dir.path(), "zzz-last.txt", b"the last name");
    let (_, listing) = curl(&[&format!("{page}/files")]);
    assert_eq!(listing.matches(">many/</a>").count(), 1, "{listing}");
    assert!(listing.contains(">zzz-last.txt</a>"), "{listing}");
    assert!(!listing.contains("more…"), "{listing}");

    // Deleting takes the form of the file's own page: without its token,
    // or from another site's page, nothing is deleted.
    let form = curl(&[&format!("{page}/file?name=docs%2Freport.txt")]).1;
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the delete form carries a token")
        .to_owned();
    let delete = format!("{page}/ui/delete");
    let (code, _) = curl(&["-d", "name=docs/report.txt&csrf=wrong", &delete]);
    assert_eq!(code, 403);
    let (code, _) = curl(&[
        "-H",
        "Origin: http://elsewhere.example",
        "-d",
        &format!("name=docs/report.txt&csrf={token}"),
        &delete,
    ]);
    assert_eq!(code, 403);
    assert!(peers[1].names().contains(&"docs/report.txt".to_owned()));
    let (code, _) = curl(&["-d", &format!("name=docs/report.txt&csrf={token}"), &delete]);
    assert_eq!(code, 303);
    assert!(!peers[1].names().contains(&"docs/report.txt".to_owned()));

    let verdict = |dom: &str| -> String {
        let start = dom.find("<section class=\"verdict").expect("a verdict");
        let end = dom[start..].find("</section>").expect("its end");
        dom[start..start + end].to_owned()
    };
    // Copies of the upload may still be landing as repair looks: wait for
    // the swarm to settle before taking a peer away.
    let mut last = String::new();
    let settled = common::poll_until(Duration::from_secs(60), || {
        last = verdict(&curl(&[&format!("{page}/")]).1);
        last.contains("verdict ok")
    });
    assert!(settled, "the verdict did not settle: {last}");

    // A peer dies: the verdict turns, in the browser too, and the activity
    // page tells it.
    let victim = short(&peers[3]);
    peers[3].kill9();
    wait_until(
        Duration::from_secs(30),
        "the verdict names the dead peer",
        || {
            let verdict = verdict(&curl(&[&format!("{page}/")]).1);
            verdict.contains("verdict warn")
                && verdict.contains(&victim)
                && verdict.contains("down")
        },
    );
    // And so does the browser's rendering of it.
    let shown = verdict(&rendered(&format!("{page}/")));
    assert!(
        shown.contains(&victim) && shown.contains("is down"),
        "{shown}"
    );
    let (_, activity) = curl(&[&format!("{page}/activity")]);
    assert!(
        activity.contains(&format!("peer {victim} is dead")),
        "{activity}"
    );
}

#[test]
fn a_browser_signs_in_with_a_token_and_uploads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some((python, chromium)) = tools_or_skip() else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let peer = Peer::start(&dir.path().join("p"), &["--require-tokens"]);
    // Without signing in, the browser lands on the sign-in form.
    let dom = rendered(&format!("{}/files", peer.api));
    assert!(dom.contains("id=\"token\""), "{dom}");
    let token = peer.json(&["token", "create", "--name", "browser", "--json"])["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let source = dir.path().join("signed-in.txt");
    std::fs::write(&source, b"uploaded after signing in").unwrap();
    let out = Command::new(&python)
        .arg(root.join("tests/web/upload.py"))
        .args([chromium, &peer.api])
        .arg(&source)
        .arg(&token)
        .output()
        .expect("run the browser driver");
    assert!(
        out.status.success(),
        "signing in and uploading through the page failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get_bytes(&peer, dir.path(), "signed-in.txt"),
        b"uploaded after signing in"
    );
    // The browser sent the file's modification time with it.
    let stat = peer.json(&["stat", "signed-in.txt", "--json"]);
    assert!(stat["mtime"].is_string(), "{stat}");
}
