//! Virtual-hosted-style addressing: `bucket.DOMAIN` names the bucket.
//!
//! Any other `Host` (an IP address, `localhost`, the domain itself) is
//! answered path-style, so turning `--s3-domain` on never breaks clients
//! that address the peer directly. The port, which clients send whenever it
//! is not 80, is not part of the match.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// Reads the bucket from hosts under one domain.
#[derive(Debug, Clone)]
pub struct DomainHost {
    domain: String,
}

impl DomainHost {
    /// Hosts under `domain` (any case; a trailing dot is ignored).
    pub fn new(domain: &str) -> Self {
        DomainHost {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }

    /// The bucket `host` names, if it is `bucket.DOMAIN[:port]`.
    pub fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        let name = strip_port(host);
        let bucket = name.len().checked_sub(self.domain.len() + 1)?;
        let (bucket_part, rest) = name.split_at(bucket);
        let suffix = rest.strip_prefix('.')?;
        (suffix.eq_ignore_ascii_case(&self.domain) && !bucket_part.is_empty())
            .then_some(bucket_part)
    }
}

/// `host` without a `:port` suffix (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

impl S3Host for DomainHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(self.domain.as_str()).with_bucket(bucket),
            None => VirtualHost::new(strip_port(host)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_subdomains_only() {
        let host = DomainHost::new("s3.lan");
        assert_eq!(host.bucket_of("photos.s3.lan:7072"), Some("photos"));
        assert_eq!(host.bucket_of("photos.S3.LAN"), Some("photos"));
        assert_eq!(
            host.bucket_of("my.dotted.bucket.s3.lan"),
            Some("my.dotted.bucket")
        );
        assert_eq!(host.bucket_of("s3.lan:7072"), None);
        assert_eq!(host.bucket_of(".s3.lan"), None);
        assert_eq!(host.bucket_of("127.0.0.1:7072"), None);
        assert_eq!(host.bucket_of("photos.other.lan"), None);
        assert_eq!(host.bucket_of("xs3.lan"), None);
        assert_eq!(host.bucket_of("[::1]:7072"), None);
        assert_eq!(strip_port("[::1]:7072"), "[::1]");
        assert_eq!(strip_port("h:80"), "h");
        assert_eq!(strip_port("h"), "h");
    }
}
