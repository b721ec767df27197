//! Access tokens through real peers: a peer that needs them refuses a
//! request without one, a token made through one peer works on every
//! peer, each scope allows what it says and no more, a removed or expired
//! token stops working, the page signs in with a cookie and needs its form
//! token for changes, and no token ever reaches a log.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Peer, SHOAL, assert_one_line_error, curl, start_swarm, wait_until};

/// Runs the CLI against `peer` with `token` in `SHOAL_TOKEN` and nothing
/// else: as a user on another machine would.
fn cli_as(peer: &Peer, token: &str, args: &[&str]) -> Output {
    Command::new(SHOAL)
        .args(args)
        .env("SHOAL_API", &peer.api)
        .env("SHOAL_TOKEN", token)
        .env("SHOAL_DATA", "/nonexistent")
        .env_remove("SHOAL_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run shoal CLI")
}

fn make_token(peer: &Peer, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--json"];
    all.extend_from_slice(args);
    let made = peer.json(&all);
    made["token"].as_str().expect("a token").to_owned()
}

/// The response headers of a request (curl `args`), and its status.
fn headers(args: &[&str]) -> (u16, String) {
    let mut all = vec!["-D", "-", "-o", "/dev/null"];
    all.extend_from_slice(args);
    curl(&all)
}

#[test]
fn tokens_open_the_api_by_scope_on_every_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let peers = start_swarm(tmp.path(), 3, &["--require-tokens", "--metrics-public"]);
    let (a, b, c) = (&peers[0], &peers[1], &peers[2]);

    // Without a token: 401 with a JSON error, whatever the route; the
    // monitors' routes stay open with --metrics-public.
    let (code, body) = curl(&[&format!("{}/v1/status", a.api)]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("needs a token"), "{body}");
    let (code, _) = curl(&[&format!("{}/v1/files", b.api)]);
    assert_eq!(code, 401);
    assert_eq!(curl(&[&format!("{}/health", a.api)]).0, 200);
    assert_eq!(curl(&[&format!("{}/metrics", a.api)]).0, 200);
    let (code, body) = curl(&[
        "-H",
        "Authorization: Basic eDp5",
        &format!("{}/v1/status", a.api),
    ]);
    assert_eq!((code, body.contains("Bearer")), (401, true), "{body}");

    // The peer's own token (the CLI reads it from the data directory)
    // makes the swarm's tokens.
    let reader = make_token(a, &["--read-only", "--name", "reader"]);
    let writer = make_token(a, &["--name", "writer"]);
    let boss = make_token(a, &["--admin", "--name", "boss"]);
    let brief = make_token(a, &["--name", "brief", "--expires", "3s"]);
    let listed = a.json(&["token", "ls", "--json"]);
    let mut scopes: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["scope"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            ("boss".to_owned(), "admin".to_owned()),
            ("brief".into(), "read-write".into()),
            ("reader".into(), "read-only".into()),
            ("writer".into(), "read-write".into()),
        ]
    );
    assert!(
        !listed.to_string().contains(&reader),
        "ls never shows a token"
    );
    assert_one_line_error(
        &a.cli(&["token", "create", "--name", "reader"]),
        "exists already",
    );

    // Read-only reads on any peer, and may not write.
    let file = tmp.path().join("note.txt");
    std::fs::write(&file, b"tokens").unwrap();
    let path = file.to_str().unwrap();
    assert!(cli_as(b, &reader, &["status"]).status.success());
    assert_one_line_error(
        &cli_as(b, &reader, &["put", path]),
        "is read-only; this needs read-write",
    );
    // Read-write writes and deletes, and may not manage the swarm.
    let put = cli_as(c, &writer, &["put", path]);
    assert!(put.status.success(), "{put:?}");
    let got = tmp.path().join("got.txt");
    let get = cli_as(
        b,
        &reader,
        &["get", "note.txt", "-o", got.to_str().unwrap()],
    );
    assert!(get.status.success(), "{get:?}");
    assert_eq!(std::fs::read(&got).unwrap(), b"tokens");
    assert_one_line_error(&cli_as(c, &writer, &["invite"]), "needs admin");
    assert_one_line_error(&cli_as(c, &writer, &["token", "ls"]), "needs admin");
    // Admin does everything.
    assert!(cli_as(b, &boss, &["invite"]).status.success());
    assert!(cli_as(c, &boss, &["rm", "note.txt"]).status.success());

    // A token that expires stops working on its own.
    wait_until(Duration::from_secs(15), "the brief token to expire", || {
        !cli_as(b, &brief, &["status"]).status.success()
    });
    assert_one_line_error(&cli_as(b, &brief, &["status"]), "expired");
    // A removed token stops working on every peer within moments.
    a.ok(&["token", "rm", "reader"]);
    wait_until(
        Duration::from_secs(10),
        "every peer to refuse the removed token",
        || {
            peers
                .iter()
                .all(|p| !cli_as(p, &reader, &["status"]).status.success())
        },
    );
    assert_one_line_error(&a.cli(&["token", "rm", "reader"]), "no token is named");

    // The page: a browser is sent to sign in; a wrong token is refused;
    // the right one is kept in a cookie no script can read, which opens
    // the pages, and a change made with it needs the page's form token.
    let (code, head) = headers(&["-H", "Accept: text/html", &format!("{}/", b.api)]);
    assert_eq!(code, 303);
    assert!(head.to_lowercase().contains("location: /login"), "{head}");
    let login = format!("{}/login", b.api);
    let (code, page) = curl(&["--data-urlencode", "token=shoal_nope", &login]);
    assert_eq!(code, 401);
    assert!(page.contains("not valid here"), "{page}");
    let (code, head) = headers(&["--data-urlencode", &format!("token={writer}"), &login]);
    assert_eq!(code, 303, "{head}");
    let set_cookie = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    // The cookie is this peer's own: its name carries the port.
    let port = b.api.rsplit(':').next().unwrap();
    let cookie = format!("shoal_token_{port}={writer}");
    assert!(set_cookie.contains(&cookie), "{set_cookie}");
    let (code, page) = curl(&["-b", &cookie, &format!("{}/peers", b.api)]);
    assert_eq!(code, 200);
    assert!(page.contains("Sign out"), "the page offers to sign out");
    let upload = format!("{}/v1/file?name=from-page", b.api);
    let (code, body) = curl(&["-b", &cookie, "-X", "PUT", "--data-binary", "x", &upload]);
    assert_eq!(code, 403, "{body}");
    let csrf = page_csrf(&curl(&["-b", &cookie, &format!("{}/files", b.api)]).1);
    let (code, body) = curl(&[
        "-b",
        &cookie,
        "-H",
        &format!("x-shoal-csrf: {csrf}"),
        "-X",
        "PUT",
        "--data-binary",
        "x",
        &upload,
    ]);
    assert_eq!(code, 201, "{body}");

    // No token's text is in any log.
    for peer in &peers {
        let log = peer.log_text();
        for token in [&reader, &writer, &boss, &brief] {
            assert!(
                !log.contains(token.as_str()),
                "a token in {}",
                peer.log.display()
            );
        }
        assert!(!log.contains(&local_token(&peer.data)));
    }
}

/// The form token in a page of the Files view.
fn page_csrf(page: &str) -> String {
    let start = page
        .find("data-csrf=\"")
        .expect("the page has a form token")
        + 11;
    page[start..]
        .split('"')
        .next()
        .expect("a closing quote")
        .to_owned()
}

/// The token a peer keeps in its data directory.
fn local_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("api.token"))
        .expect("the peer keeps its own token")
        .trim()
        .to_owned()
}

#[test]
fn a_peer_on_loopback_is_open_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = Peer::start(&tmp.path().join("p"), &[]);
    assert_eq!(curl(&[&format!("{}/v1/status", peer.api)]).0, 200);
    let (code, page) = curl(&[&format!("{}/login", peer.api)]);
    assert_eq!(code, 200);
    assert!(page.contains("No sign-in needed"), "{page}");
    // Its own token is kept private all the same.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(peer.data.join("api.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Runs the CLI against `api` trusting the certificate in `ca` (if any).
fn cli_with_ca(api: &str, data: &Path, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(SHOAL);
    command
        .args(args)
        .env("SHOAL_API", api)
        .env("SHOAL_DATA", data)
        .env_remove("SHOAL_LOG")
        .env_remove("SHOAL_TOKEN")
        .stdin(Stdio::null());
    match ca {
        Some(ca) => command.env("SHOAL_CA", ca),
        None => command.env_remove("SHOAL_CA"),
    };
    command.output().expect("run shoal CLI")
}

#[test]
fn https_serves_the_api_the_page_and_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a self-signed certificate");
    let cert = tmp.path().join("cert.pem");
    let key = tmp.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());

    // A key that is no key, or a certificate file without a certificate,
    // stops the start with one line naming the file.
    let bad = Command::new(SHOAL)
        .args(["node", "--data", tmp.path().join("bad").to_str().unwrap()])
        .args(["--api", "127.0.0.1:0", "--s3", "off", "--no-mdns"])
        .args(["--tls-cert", key_arg, "--tls-key", key_arg])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(&bad, "holds no PEM certificate");

    let peer = Peer::start(
        &tmp.path().join("p"),
        &["--tls-cert", cert_arg, "--tls-key", key_arg],
    );
    assert!(peer.api.starts_with("https://"), "{}", peer.api);
    let (code, body) = curl(&["--cacert", cert_arg, &format!("{}/health", peer.api)]);
    assert_eq!(code, 200, "{body}");
    let (code, page) = curl(&["--cacert", cert_arg, &format!("{}/peers", peer.api)]);
    assert_eq!(code, 200);
    assert!(page.contains("Peers"), "the page over HTTPS");
    let plain = peer.api.replacen("https://", "http://", 1);
    assert_ne!(curl(&[&format!("{plain}/health")]).0, 200, "no plain HTTP");

    // The CLI trusts the certificate named by SHOAL_CA, and no other.
    let status = cli_with_ca(&peer.api, &peer.data, Some(&cert), &["status", "--json"]);
    assert!(status.status.success(), "{status:?}");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["tls"], true);
    let file = tmp.path().join("f");
    std::fs::write(&file, b"over tls").unwrap();
    let put = cli_with_ca(
        &peer.api,
        &peer.data,
        Some(&cert),
        &["put", file.to_str().unwrap()],
    );
    assert!(put.status.success(), "{put:?}");
    assert_one_line_error(
        &cli_with_ca(&peer.api, &peer.data, None, &["ls"]),
        "certificate",
    );

    // S3 answers over HTTPS too (anonymous, so refused, but in S3's words).
    let s3 = status["s3"].as_str().expect("S3 is on");
    let (code, body) = curl(&["--cacert", cert_arg, &format!("https://{s3}/")]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("<Error>"), "{body}");
}
