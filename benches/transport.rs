//! Compares the two ways libp2p offers to admit only holders of a cluster
//! secret, on loopback, in one process:
//!
//! - `noise`: TCP + noise + yamux, no secret (the baseline);
//! - `prologue`: the same with a key derived from the secret as the noise
//!   prologue (what shoal uses);
//! - `pnet`: libp2p's private-network layer (a second cipher under noise).
//!
//! For each it measures 1 MiB request/response throughput, and how long a
//! dial with the wrong secret takes to fail. Run with
//! `cargo bench --bench transport`; ratios within one run are what count.

use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::transport::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, Swarm, SwarmBuilder, Transport, noise, tcp, yamux};
use libp2p_pnet::{PnetConfig, PreSharedKey};

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 512;
const IN_FLIGHT: usize = 4;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Noise,
    Prologue,
    Pnet,
}

#[derive(Clone, Default)]
struct BlobCodec;

impl request_response::Codec for BlobCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = u8;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 2 * CHUNK {
            return Err(std::io::Error::other("too large"));
        }
        let mut buf = vec![0u8; len];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<u8> {
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await?;
        Ok(b[0])
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        io.write_all(&(req.len() as u32).to_be_bytes()).await?;
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: u8,
    ) -> std::io::Result<()> {
        io.write_all(&[res]).await?;
        io.close().await
    }
}

type Behaviour = request_response::Behaviour<BlobCodec>;

fn behaviour() -> Behaviour {
    request_response::Behaviour::new(
        [(StreamProtocol::new("/bench/blob/1"), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
    )
}

fn build(variant: Variant, secret: [u8; 32]) -> Swarm<Behaviour> {
    let key = Keypair::generate_ed25519();
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    match variant {
        Variant::Noise | Variant::Prologue => {
            let prologue = match variant {
                Variant::Prologue => blake3::derive_key("bench prologue", &secret).to_vec(),
                _ => Vec::new(),
            };
            SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    move |k: &Keypair| noise::Config::new(k).map(|c| c.with_prologue(prologue)),
                    yamux::Config::default,
                )
                .expect("tcp")
                .with_behaviour(|_| behaviour())
                .expect("behaviour")
                .with_swarm_config(idle)
                .build()
        }
        Variant::Pnet => {
            let psk = PreSharedKey::new(blake3::derive_key("bench psk", &secret));
            SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_other_transport(|k| {
                    let noise = noise::Config::new(k).expect("noise");
                    tcp::tokio::Transport::new(tcp::Config::default())
                        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                        .upgrade(Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default())
                })
                .expect("transport")
                .with_behaviour(|_| behaviour())
                .expect("behaviour")
                .with_swarm_config(idle)
                .build()
        }
    }
}

async fn listen(swarm: &mut Swarm<Behaviour>) -> Multiaddr {
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address;
        }
    }
}

/// Runs the server side until the process ends.
fn serve(mut server: Swarm<Behaviour>) {
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = server.select_next_some().await
            {
                let _ = server.behaviour_mut().send_response(channel, 1);
            }
        }
    });
}

async fn throughput(variant: Variant) -> f64 {
    let secret = [7u8; 32];
    let mut server = build(variant, secret);
    let addr = listen(&mut server).await;
    let server_id = *server.local_peer_id();
    serve(server);
    let mut client = build(variant, secret);
    client.add_peer_address(server_id, addr);
    let payload = vec![0xa5u8; CHUNK];
    let started = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while sent < IN_FLIGHT {
        client
            .behaviour_mut()
            .send_request(&server_id, payload.clone());
        sent += 1;
    }
    while done < CHUNKS {
        match client.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message { .. }) => {
                done += 1;
                if sent < CHUNKS {
                    client
                        .behaviour_mut()
                        .send_request(&server_id, payload.clone());
                    sent += 1;
                }
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                panic!("{variant:?}: request failed: {error}")
            }
            _ => {}
        }
    }
    CHUNKS as f64 / started.elapsed().as_secs_f64()
}

async fn wrong_secret_failure(variant: Variant) -> Duration {
    let mut server = build(variant, [1u8; 32]);
    let addr = listen(&mut server).await;
    serve(server);
    let mut client = build(variant, [2u8; 32]);
    let started = Instant::now();
    client.dial(addr).unwrap();
    loop {
        match client.select_next_some().await {
            SwarmEvent::OutgoingConnectionError { .. } => return started.elapsed(),
            SwarmEvent::ConnectionEstablished { .. } => {
                panic!("{variant:?}: a wrong secret connected")
            }
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() {
    println!("1 MiB requests, {IN_FLIGHT} in flight, {CHUNKS} per run, loopback, best of 3 runs");
    let mut baseline = 0.0;
    for variant in [Variant::Noise, Variant::Prologue, Variant::Pnet] {
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            best = best.max(throughput(variant).await);
        }
        if let Variant::Noise = variant {
            baseline = best;
        }
        let failure = match variant {
            Variant::Noise => "n/a".to_owned(),
            _ => format!("{:.3} s", wrong_secret_failure(variant).await.as_secs_f64()),
        };
        println!(
            "{:<8} {best:6.0} MiB/s ({:.2}x noise alone); a wrong secret fails after {failure}",
            format!("{variant:?}:"),
            best / baseline
        );
    }
}
