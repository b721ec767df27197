//! What monitors see, on real peers scraped with curl: `/metrics` in the
//! Prometheus text format with shoal's and libp2p's metrics, figures that
//! follow what the swarm does, and `/health` turning 503 once too few
//! members are alive to read.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Peer, QUICK_HEALING, curl, put_bytes, random_bytes, start_swarm, wait_until};
use tempfile::TempDir;

/// The value of the sample named exactly `series` (name and labels), if
/// the peer exports it.
fn sample(peer: &Peer, series: &str) -> Option<f64> {
    let (code, text) = curl(&[&format!("{}/metrics", peer.api)]);
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
}

/// `shoal status --watch` (not on a terminal: frames one after another)
/// shows the verdict and every member, and stops cleanly on Ctrl-C.
fn watch_shows_the_swarm(peer: &Peer, members: usize) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(common::SHOAL)
        .args(["status", "--watch", "--api", &peer.api])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run shoal status --watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Frames start with the verdict and end with the members: wait for a
    // whole one that says all is well (copies may still be landing at
    // first).
    let mut frame: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no healthy frame within 30 s; last:\n{}", frame.join("\n"))
        });
        if ["OK: ", "WARNING: ", "DANGER: "]
            .iter()
            .any(|m| line.starts_with(m))
        {
            frame.clear();
        }
        frame.push(line);
        let alive = frame.iter().filter(|l| l.contains(" alive ")).count();
        if frame[0].starts_with("OK: ") && alive == members {
            break;
        }
    }
    assert!(frame.iter().any(|l| l.starts_with("PEER")), "{frame:?}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends the watch cleanly: {status}");
}

fn health(peer: &Peer) -> (u16, serde_json::Value) {
    let (code, body) = curl(&[&format!("{}/health", peer.api)]);
    (code, serde_json::from_str(&body).expect("JSON"))
}

#[test]
fn metrics_follow_the_swarm_and_health_fails_without_a_read_quorum() {
    let dir = TempDir::new().unwrap();
    let mut peers = start_swarm(dir.path(), 4, &QUICK_HEALING);
    let (code, body) = health(&peers[0]);
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");

    let content = random_bytes(10 * 65536, 7);
    put_bytes(&peers[0], dir.path(), "watched", &content);

    let (code, text) = curl(&[&format!("{}/metrics", peers[0].api)]);
    assert_eq!(code, 200);
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics text");
    // (`shoal_peer_requests_failed` appears with its first failure.)
    for family in [
        "# TYPE shoal_members gauge",
        "# TYPE shoal_http_requests counter",
        "# TYPE shoal_http_request_duration_seconds histogram",
        "# TYPE shoal_peer_request_duration_seconds histogram",
        "# TYPE shoal_under_replicated_items gauge",
        "# TYPE shoal_hinted_items gauge",
        "# TYPE shoal_repair_bytes counter",
        "# TYPE shoal_repair_queue_bytes gauge",
        "# TYPE shoal_scrub_damaged counter",
        "# TYPE shoal_store_bytes gauge",
        "# TYPE shoal_store_chunks gauge",
        "# TYPE shoal_disk_free_bytes gauge",
        "# TYPE libp2p_swarm_connections_established counter",
    ] {
        assert!(text.contains(family), "no {family:?} in\n{text}");
    }
    assert_eq!(
        sample(&peers[0], r#"shoal_members{state="alive"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &peers[0],
            r#"shoal_http_requests_total{route="/v1/file",status="201"}"#
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &peers[0],
            r#"shoal_peer_request_duration_seconds_count{op="store"}"#
        )
        .is_some_and(|n| n >= 10.0),
        "the put's chunk stores are timed"
    );
    // Every chunk has 3 copies on 4 peers: 30 copies of 64 KiB in all.
    let stored: f64 = peers
        .iter()
        .map(|p| sample(p, "shoal_store_chunks").unwrap())
        .sum();
    assert_eq!(stored, 30.0);
    let bytes: f64 = peers
        .iter()
        .map(|p| sample(p, "shoal_store_bytes").unwrap())
        .sum();
    assert_eq!(bytes, 30.0 * 65536.0);
    assert!(sample(&peers[0], "shoal_disk_free_bytes").is_some_and(|b| b > 0.0));

    watch_shows_the_swarm(&peers[0], 4);

    // A peer dies: the others count it dead, and repair copies its share
    // to the fourth peer.
    peers[3].kill9();
    let survivors = &peers[..3];
    wait_until(Duration::from_secs(30), "the death is counted", || {
        sample(&survivors[0], r#"shoal_members{state="dead"}"#) == Some(1.0)
    });
    wait_until(
        Duration::from_secs(60),
        "repair's bytes are counted",
        || {
            survivors
                .iter()
                .map(|p| sample(p, "shoal_repair_bytes_total").unwrap())
                .sum::<f64>()
                > 0.0
        },
    );
    let (code, body) = health(&survivors[0]);
    assert_eq!(code, 200, "{body}");

    // Two more die: one member left, and a read needs two answers.
    peers[2].kill9();
    peers[1].kill9();
    wait_until(Duration::from_secs(30), "health turns 503", || {
        health(&peers[0]).0 == 503
    });
    let (_, body) = health(&peers[0]);
    assert_eq!(body["status"], "unavailable");
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("read needs answers from 2"), "{reasons}");
}
