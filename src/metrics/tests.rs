use std::time::Duration;

use super::{MemberCounts, MetricsBuilder, Snapshot};

#[test]
fn a_scrape_reports_the_snapshot_and_what_was_recorded() {
    let builder = MetricsBuilder::new();
    let instruments = builder.instruments();
    let metrics = builder.finish();
    instruments.http_request("/v1/file", 201, Duration::from_millis(3));
    instruments.peer_request("store", Duration::from_millis(2), None);
    instruments.peer_request("store", Duration::from_secs(20), Some("timeout"));
    let snapshot = Snapshot {
        members: MemberCounts {
            alive: 3,
            suspect: 1,
            dead: 0,
        },
        repair_bytes: 1 << 20,
        disk_free_bytes: None,
        ..Snapshot::default()
    };
    let text = metrics.render(snapshot);
    for line in [
        r#"shoal_members{state="alive"} 3"#,
        r#"shoal_members{state="suspect"} 1"#,
        r#"shoal_members{state="dead"} 0"#,
        "shoal_repair_bytes_total 1048576",
        r#"shoal_http_requests_total{route="/v1/file",status="201"} 1"#,
        r#"shoal_peer_request_duration_seconds_count{op="store"} 2"#,
        r#"shoal_peer_request_duration_seconds_bucket{le="0.004",op="store"} 1"#,
        r#"shoal_peer_requests_failed_total{op="store",reason="timeout"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // A figure that could not be read is left out, not reported as 0.
    assert!(!text.contains("shoal_disk_free_bytes"));
    assert!(text.ends_with("# EOF\n"));

    // The next scrape reports its own figures.
    let text = metrics.render(Snapshot::default());
    assert!(text.contains(r#"shoal_members{state="alive"} 0"#));
}
