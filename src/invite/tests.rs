use libp2p::Multiaddr;
use proptest::prelude::*;

use super::{INVITE_PREFIX, Invite, InviteError, MAX_INVITE_ADDRS};
use crate::secret::ClusterSecret;

fn peer() -> libp2p::PeerId {
    libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id()
}

fn addr(port: u16) -> Multiaddr {
    format!("/ip4/192.168.1.10/tcp/{port}/p2p/{}", peer())
        .parse()
        .unwrap()
}

#[test]
fn an_invite_reads_back_as_written() {
    let secret = ClusterSecret::generate().unwrap();
    let invite = Invite::new(Some(secret.clone()), [addr(7071), addr(7072)]);
    let line = invite.to_string();
    assert!(line.starts_with(INVITE_PREFIX));
    assert!(line.contains(&secret.to_hex()));
    assert_eq!(Invite::parse(&format!("  {line}\n")).unwrap(), invite);

    let open = Invite::new(None, [addr(7073)]);
    assert!(open.to_string().contains(":open@"));
    assert_eq!(Invite::parse(&open.to_string()).unwrap(), open);
}

#[test]
fn debug_output_never_shows_the_secret() {
    let secret = ClusterSecret::generate().unwrap();
    let invite = Invite::new(Some(secret.clone()), [addr(1)]);
    assert!(!format!("{invite:?}").contains(&secret.to_hex()));
}

#[test]
fn only_dialable_addresses_with_a_peer_id_are_kept_and_at_most_sixteen() {
    let without_id: Multiaddr = "/ip4/10.0.0.1/tcp/7071".parse().unwrap();
    let udp: Multiaddr = format!("/ip4/10.0.0.1/udp/7071/p2p/{}", peer())
        .parse()
        .unwrap();
    let many: Vec<Multiaddr> = (0..40).map(addr).collect();
    let invite = Invite::new(
        None,
        [without_id, udp].into_iter().chain(many.iter().cloned()),
    );
    assert_eq!(invite.addrs, many[..MAX_INVITE_ADDRS]);
}

#[test]
fn damaged_invites_are_refused_with_the_reason() {
    let good = Invite::new(Some(ClusterSecret::generate().unwrap()), [addr(7071)]).to_string();
    let (head, addrs) = good.split_once('@').unwrap();
    let cases = [
        (
            "shoal-invite-9:open@/ip4/1.2.3.4/tcp/1".to_owned(),
            InviteError::NotAnInvite,
        ),
        (head.to_owned(), InviteError::NoAddresses),
        (format!("{head}@"), InviteError::NoAddresses),
        (
            format!("{}@{addrs}", &head[..head.len() - 1]),
            InviteError::BadSecret,
        ),
        (format!("{head}x@{addrs}"), InviteError::BadSecret),
        ("x".repeat(9000), InviteError::TooLong(9000)),
    ];
    for (text, expected) in cases {
        assert_eq!(Invite::parse(&text).unwrap_err(), expected, "{text}");
    }
    let too_many = vec![addrs; MAX_INVITE_ADDRS + 1].join(",");
    assert_eq!(
        Invite::parse(&format!("{head}@{too_many}")).unwrap_err(),
        InviteError::TooManyAddresses(MAX_INVITE_ADDRS + 1)
    );
    for bad in [
        "/ip4/1.2.3.4/tcp/7071",
        "not an address",
        "/ip4/1.2.3.4/udp/1",
    ] {
        assert!(
            matches!(
                Invite::parse(&format!("{head}@{bad}")),
                Err(InviteError::BadAddress { .. })
            ),
            "{bad}"
        );
    }
}

proptest! {
    #[test]
    fn no_text_makes_parsing_panic(text in ".{0,300}") {
        let _ = Invite::parse(&text);
        let _ = Invite::parse(&format!("{INVITE_PREFIX}{text}"));
    }
}
