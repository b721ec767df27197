//! Incarnations: the counter by which a member's own word overrules rumours
//! about it.
//!
//! Only a member raises its own incarnation, and it does so to refute a
//! rumour that it is suspect or dead. Alive at incarnation `i` loses to
//! suspect or dead at `i`, and beats either at any lower incarnation. This
//! module holds the two rules that guard the counter itself: a rumour far
//! ahead of what is known is not believed, and a refutation moves just past
//! the rumour it answers.

/// The furthest a rumour about this peer may run ahead of its own
/// incarnation. Only a peer raises its own incarnation, so a rumour far
/// ahead is forged or corrupt, and obeying it would push the incarnation to
/// where it can no longer be raised.
pub(super) const MAX_INCARNATION_LEAD: u64 = 1 << 20;

/// Whether a rumour's incarnation runs implausibly far ahead of the one
/// known (see [`MAX_INCARNATION_LEAD`]). A member remembered from an earlier
/// run (known incarnation 0) may be anywhere.
pub(super) fn implausible(rumored: u64, known: u64) -> bool {
    known > 0 && rumored - known.min(rumored) > MAX_INCARNATION_LEAD
}

/// The incarnation this peer takes to overrule a rumour that it failed at
/// `rumored`, its own being `own`; `None` when the rumour is stale (an
/// incarnation already overruled) or forged (one it never had).
pub(super) fn refutation(own: u64, rumored: u64) -> Option<u64> {
    if rumored < own {
        return None;
    }
    if rumored - own > MAX_INCARNATION_LEAD {
        tracing::warn!(
            incarnation = rumored,
            own,
            "ignoring a rumour about this peer at an incarnation it never had"
        );
        return None;
    }
    Some(rumored.saturating_add(1))
}
