//! A history of writes to a last-writer-wins store, and the rule the
//! final state must follow (docs/architecture.md, *Consistency model*).
//!
//! Each write records what it wrote (put contents are unique, so a read
//! names the write it shows) and its outcome: acknowledged with a version,
//! or not acknowledged, which means *unknown*: it may have landed, may
//! land later (through read repair or anti-entropy), or never.

/// What a write did.
#[derive(Clone, Debug)]
pub enum Write {
    /// A put of these bytes.
    Put(Vec<u8>),
    /// A delete.
    Delete,
}

/// What became of a write.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Acknowledged (`201` or `204`) with this version (`x-shoal-version`,
    /// text that sorts in version order).
    Acked(String),
    /// Not acknowledged: the status (0 if none) and the answer's body.
    Unknown(u16, String),
}

/// One write of the history.
#[derive(Clone, Debug)]
pub struct Op {
    /// The name written.
    pub name: String,
    /// What was written.
    pub write: Write,
    /// Through which host (peer) it went.
    pub host: usize,
    /// When, in the test's terms ("before", a side of a cut, ...).
    pub phase: &'static str,
    /// What became of it.
    pub outcome: Outcome,
}

impl Op {
    /// Its version, if it was acknowledged.
    pub fn acked_version(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Acked(v) => Some(v),
            Outcome::Unknown(..) => None,
        }
    }
}

/// What a get answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// `200`: the version and the bytes.
    Live(String, Vec<u8>),
    /// `404`.
    Gone,
    /// Anything else (unavailable, cut off): the status and body.
    Failed(u16, String),
}

/// The acknowledged write of `ops` with the highest version.
pub fn latest_acked<'a>(ops: &[&'a Op]) -> Option<&'a Op> {
    ops.iter()
        .copied()
        .filter(|op| op.acked_version().is_some())
        .max_by(|x, y| x.acked_version().cmp(&y.acked_version()))
}

/// Whether `read`, the one state every peer agrees on for a name, is
/// allowed by the name's writes `ops`: the latest acknowledged write, or a
/// write that was not acknowledged but is stamped later than every
/// acknowledged one, or nothing if no write was acknowledged. So an
/// acknowledged write is lost only to a later-stamped write of the same
/// name, and a deleted name comes back only through a later-stamped put.
///
/// # Errors
/// Why the state breaks the rule.
pub fn judge(ops: &[&Op], read: &Read) -> Result<(), String> {
    let latest = latest_acked(ops);
    let latest_version = latest.and_then(Op::acked_version);
    match read {
        Read::Live(version, bytes) => {
            let writer = ops
                .iter()
                .find(|op| matches!(&op.write, Write::Put(b) if b == bytes))
                .ok_or("content no put wrote")?;
            match (writer.acked_version(), latest) {
                (Some(v), _) if v != version => Err(format!(
                    "the content of the put acknowledged as {v} under version {version}"
                )),
                (Some(_), Some(latest)) if !std::ptr::eq(*writer, latest) => Err(format!(
                    "an acknowledged write lost to an earlier-stamped one: the latest acknowledged is the {}",
                    describe_op(latest)
                )),
                (Some(_), _) => Ok(()),
                (None, _) if latest_version.is_none_or(|l| version.as_str() > l) => Ok(()),
                (None, _) => Err(format!(
                    "a put that was not acknowledged, stamped {version}, beat the acknowledged {}",
                    latest.map(describe_op).unwrap_or_default()
                )),
            }
        }
        Read::Gone => match latest {
            None => Ok(()),
            Some(op) if matches!(op.write, Write::Delete) => Ok(()),
            // A delete that was not acknowledged may have landed, stamped
            // later; its stamp is not known to check.
            Some(_)
                if ops.iter().any(|op| {
                    matches!(op.write, Write::Delete) && op.acked_version().is_none()
                }) =>
            {
                Ok(())
            }
            Some(op) => Err(format!(
                "the acknowledged {} is lost, and no later delete was tried",
                describe_op(op)
            )),
        },
        Read::Failed(..) => Err("unreadable".into()),
    }
}

/// Whether `read` shows the acknowledged write `op`.
pub fn shows(read: &Read, op: &Op) -> bool {
    match (&op.write, read) {
        (Write::Put(bytes), Read::Live(version, got)) => {
            Some(version.as_str()) == op.acked_version() && got == bytes
        }
        (Write::Delete, Read::Gone) => true,
        _ => false,
    }
}

/// A read, for messages.
pub fn describe(read: &Read) -> String {
    match read {
        Read::Live(version, bytes) => format!("version {version} ({} bytes)", bytes.len()),
        Read::Gone => "not found".into(),
        Read::Failed(status, body) => format!("failed {status} {}", body.trim()),
    }
}

/// A write, for messages.
pub fn describe_op(op: &Op) -> String {
    let what = match &op.write {
        Write::Put(bytes) => format!("put of {} bytes", bytes.len()),
        Write::Delete => "delete".into(),
    };
    let outcome = match &op.outcome {
        Outcome::Acked(v) => format!("acknowledged as {v}"),
        Outcome::Unknown(status, why) => format!("not acknowledged: {status} {}", why.trim()),
    };
    format!(
        "{what} of {} through host {} ({}): {outcome}",
        op.name, op.host, op.phase
    )
}
