//! The `shoal` binary: parses the command line and dispatches into the
//! library. Errors end here as one `error: ...` line on stderr and a
//! non-zero exit code.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// mimalloc instead of the C library's allocator: with a dozen threads
/// taking turns on short-lived allocations, glibc's per-thread arenas kept
/// freed memory and a peer's resident size reached three times its live
/// heap (208 MiB for 72 MiB while serving 30,000 small-record reads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use libp2p::Multiaddr;
use shoal::client::Client;
use shoal::config::{
    self, DEFAULT_API_ADDR, DEFAULT_API_URL, DEFAULT_S3_ADDR, HealingConfig, NodeConfig,
    ReplicationConfig, S3Config, StoreConfig, TransferConfig,
};
use shoal::gossip::GossipConfig;
use shoal::net::{DEFAULT_LISTEN_ADDR, NetConfig};
use shoal::secret::{ClusterSecret, SECRET_ENV};

/// A masterless, peer-to-peer distributed file store.
#[derive(Parser)]
#[command(name = "shoal", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a peer in the foreground (stop it with Ctrl-C or SIGTERM).
    Node(Box<NodeArgs>),
    /// Print a new random cluster secret (64 hex digits) for --secret-file.
    Keygen {
        /// Write it to this new file (readable by its owner only) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the peer id of a data directory's identity, creating it if needed.
    Id {
        /// The peer's data directory.
        #[arg(long, env = "SHOAL_DATA", value_name = "DIR", default_value_os_t = config::default_data_dir())]
        data: PathBuf,
    },
    /// Manage the S3 endpoint.
    S3 {
        #[command(subcommand)]
        command: S3Command,
    },
    /// Upload a file (PATH `-` reads stdin and needs --name), or with -r
    /// every file under a directory.
    Put {
        /// The local file to upload (with -r, the directory).
        path: PathBuf,
        /// The name to store it under (default: the file's base name); with
        /// -r, the prefix of every name (default: the directory's base name;
        /// '' for none).
        #[arg(long, allow_hyphen_values = true)]
        name: Option<String>,
        /// Store every regular file under the directory PATH as
        /// PREFIX/relative/path, skipping those already stored unchanged.
        #[arg(short, long)]
        recursive: bool,
        /// With -r, follow symbolic links (by default they are skipped).
        #[arg(short = 'L', long, requires = "recursive")]
        follow_links: bool,
        /// With -r, uploads in flight at once.
        #[arg(long, value_name = "N", default_value_t = shoal::cli::DEFAULT_JOBS,
              value_parser = parse_jobs, requires = "recursive")]
        jobs: usize,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Download a file, verifying every chunk before it becomes visible, or
    /// with -r every file under a prefix.
    Get {
        /// The file's name (with -r, the prefix: files named PREFIX/...; ''
        /// for every file).
        name: String,
        /// Where to write it: a file, an existing directory, or `-` for stdout
        /// (default: the name's last segment in the current directory); with
        /// -r, the directory to fill (default: the prefix's last segment).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Fetch every file whose name starts with NAME/ into a directory,
        /// skipping those already there unchanged.
        #[arg(short, long)]
        recursive: bool,
        /// With -r, downloads in flight at once.
        #[arg(long, value_name = "N", default_value_t = shoal::cli::DEFAULT_JOBS,
              value_parser = parse_jobs, requires = "recursive")]
        jobs: usize,
        /// With -r, print the summary as JSON.
        #[arg(long, requires = "recursive")]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// List files, optionally only those whose names start with PREFIX.
    Ls {
        /// Only names starting with this.
        #[arg(default_value = "")]
        prefix: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Delete a file.
    Rm {
        /// The file's name.
        name: String,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show a file's manifest and which peers hold each chunk.
    Stat {
        /// The file's name.
        name: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Re-hash every chunk the peer stores now, replacing damaged copies
    /// from other replicas, and report what was found.
    Scrub {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Hand everything this peer stores to the peers that take over its
    /// share, then stop it: the swarm keeps every copy throughout.
    Leave {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show the peer, the swarm's members and the local store.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Subcommand)]
enum S3Command {
    /// Manage S3 access keys (they need a cluster secret).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key; its secret is shown only now.
    Create {
        /// A name for the key, for people.
        name: String,
        /// Print the key as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// List the keys (never their secrets).
    Ls {
        /// Print the keys as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Remove a key on every peer, for good.
    Rm {
        /// The access key id.
        access_key_id: String,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Add a key made elsewhere, keeping its id and secret.
    Import {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
        /// A name for the key, for people.
        #[arg(long)]
        name: String,
        /// Print the key as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Args)]
struct ApiArg {
    /// The API of the peer to talk to.
    #[arg(long, env = "SHOAL_API", value_name = "URL", default_value = DEFAULT_API_URL)]
    api: String,
}

#[derive(Args)]
struct NodeArgs {
    /// Where the peer keeps its identity, database and chunks (created if missing).
    #[arg(long, env = "SHOAL_DATA", value_name = "DIR", default_value_os_t = config::default_data_dir())]
    data: PathBuf,
    /// Address for the local HTTP API (loopback by default: it has no authentication).
    #[arg(long, env = "SHOAL_API_ADDR", value_name = "ADDR", default_value = DEFAULT_API_ADDR)]
    api: SocketAddr,
    /// Address for the S3 endpoint, or `off` (port 0 picks a free one).
    #[arg(long, env = "SHOAL_S3_ADDR", value_name = "ADDR|off", default_value = DEFAULT_S3_ADDR, value_parser = parse_s3_addr)]
    s3: S3Addr,
    /// Also answer virtual-hosted-style S3 requests (`bucket.DOMAIN`).
    #[arg(long, value_name = "DOMAIN")]
    s3_domain: Option<String>,
    /// How long an S3 multipart upload may stay open before it is aborted
    /// and its parts freed.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
    s3_upload_expiry: Duration,
    /// Chunk size for new files.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = parse_u32_size)]
    chunk_size: u32,
    /// Size at which a segment file stops taking new chunks.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = config::parse_size)]
    segment_size: u64,
    /// How long a chunk no file uses is kept before its space is reclaimed.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration)]
    gc_grace: Duration,
    /// How often unused chunks and old deletion records are collected.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    gc_interval: Duration,
    /// How often the chunk references this peer holds are checked, to free
    /// the chunks of files deleted while it was down.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    audit_interval: Duration,
    /// How long the record of a deleted file is kept.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    tombstone_ttl: Duration,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Where to accept connections from other peers (repeatable).
    #[arg(long, value_name = "MULTIADDR", default_value = DEFAULT_LISTEN_ADDR, value_parser = parse_multiaddr)]
    listen: Vec<Multiaddr>,
    /// A member to join the swarm through, e.g. /ip4/192.168.1.10/tcp/7071
    /// (repeatable; a /p2p/<peer id> suffix is optional).
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    join: Vec<Multiaddr>,
    /// Do not discover peers on the LAN by mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// File holding the cluster secret (see `shoal keygen`); the
    /// SHOAL_SECRET environment variable may carry the secret itself instead.
    #[arg(long, env = "SHOAL_SECRET_FILE", value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// How often this peer probes one other member.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    probe_interval: Duration,
    /// How long a probe waits for an answer before asking other members to try.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = humantime::parse_duration)]
    probe_timeout: Duration,
    /// The shortest time a suspected member has to refute before it is
    /// declared dead (an unconfirmed suspicion lasts three times as long).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    suspicion_timeout: Duration,
    /// Copies kept of every chunk and manifest (N); use the same value on
    /// every peer.
    #[arg(long, value_name = "N", default_value_t = 3)]
    replicas: usize,
    /// Copies that must be durable before a put or delete is acknowledged (W).
    #[arg(long, value_name = "W", default_value_t = 2)]
    write_quorum: usize,
    /// Manifest copies a get consults (R); R + W must exceed N.
    #[arg(long, value_name = "R", default_value_t = 2)]
    read_quorum: usize,
    /// How long a member may stay dead before its data is copied to the
    /// peers that take over its share (longer than a reboot).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    rereplicate_after: Duration,
    /// How often this peer checks that the owners of what it holds have it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    repair_interval: Duration,
    /// How often this peer re-hashes everything it stores (`shoal scrub`
    /// starts a scrub at once).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    scrub_interval: Duration,
    /// Copies a repair sends at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    repair_parallelism: usize,
    /// How long another peer may take to start answering before it is
    /// taken for hung and the next peer is tried.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    peer_timeout: Duration,
    /// The slowest transfer (bytes per second) still taken for a working
    /// peer: a request moving data may take --peer-timeout plus its size at
    /// this rate.
    #[arg(long, value_name = "BYTES", default_value = "1MiB", value_parser = config::parse_size)]
    min_transfer_rate: u64,
    /// How often this peer announces itself (stretched in swarms of over ten).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    announce_interval: Duration,
}

fn parse_multiaddr(text: &str) -> Result<Multiaddr, String> {
    let addr: Multiaddr = text
        .trim()
        .parse()
        .map_err(|e| format!("{e} (expected a multiaddr such as /ip4/192.168.1.10/tcp/7071)"))?;
    let has_tcp = addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)));
    if !has_tcp {
        return Err("shoal peers speak TCP: give an address such as /ip4/192.168.1.10/tcp/7071 or /dns4/host/tcp/7071".into());
    }
    Ok(addr)
}

/// Where the S3 endpoint listens, if anywhere.
#[derive(Clone, Copy, Debug)]
struct S3Addr(Option<SocketAddr>);

fn parse_s3_addr(text: &str) -> Result<S3Addr, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(S3Addr(None));
    }
    text.parse()
        .map(|addr| S3Addr(Some(addr)))
        .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:7072, or `off`"))
}

/// `--jobs`: at least one transfer, and not so many that a typo opens
/// thousands of connections.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("{text:?} is not a number of jobs from 1 to 1024")),
    }
}

fn parse_u32_size(text: &str) -> Result<u32, String> {
    let size = config::parse_size(text).map_err(|e| e.to_string())?;
    u32::try_from(size).map_err(|_| format!("{text:?} is too large"))
}

impl NodeArgs {
    fn into_config(self) -> Result<NodeConfig> {
        let secret = cluster_secret(self.secret_file.as_deref())?;
        Ok(NodeConfig {
            data_dir: self.data,
            api_addr: self.api,
            s3: self.s3.0.map(|addr| S3Config {
                addr,
                domain: self.s3_domain,
                upload_expiry: self.s3_upload_expiry,
            }),
            chunk_size: self.chunk_size,
            store: StoreConfig {
                segment_bytes: self.segment_size,
                gc_grace: self.gc_grace,
                gc_interval: self.gc_interval,
                tombstone_ttl: self.tombstone_ttl,
                audit_interval: self.audit_interval,
                ..StoreConfig::default()
            },
            shutdown_grace: self.shutdown_grace,
            transfer: TransferConfig {
                peer_timeout: self.peer_timeout,
                min_transfer_rate: self.min_transfer_rate,
                ..TransferConfig::default()
            },
            healing: HealingConfig {
                rereplicate_after: self.rereplicate_after,
                repair_interval: self.repair_interval,
                scrub_interval: self.scrub_interval,
                repair_parallelism: self.repair_parallelism,
                ..HealingConfig::default()
            },
            replication: ReplicationConfig {
                replicas: self.replicas,
                write_quorum: self.write_quorum,
                read_quorum: self.read_quorum,
            },
            net: NetConfig {
                listen: self.listen,
                join: self.join,
                mdns: !self.no_mdns,
                secret,
                gossip: GossipConfig {
                    probe_interval: self.probe_interval,
                    probe_timeout: self.probe_timeout,
                    suspicion_timeout: self.suspicion_timeout,
                    announce_interval: self.announce_interval,
                    ..GossipConfig::default()
                },
                ..NetConfig::default()
            },
        })
    }
}

/// The cluster secret from `--secret-file` or `SHOAL_SECRET`; giving both
/// is a mistake worth stopping for, since they might differ.
fn cluster_secret(file: Option<&std::path::Path>) -> Result<Option<ClusterSecret>> {
    let from_env = std::env::var(SECRET_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    match (file, from_env) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give the cluster secret once: --secret-file or {SECRET_ENV}, not both")
        }
        (Some(path), None) => Ok(Some(ClusterSecret::read_file(path)?)),
        (None, Some(text)) => Ok(Some(ClusterSecret::parse(&text, SECRET_ENV)?)),
        (None, None) => Ok(None),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let default_level = if matches!(cli.command, Command::Node(_)) {
        "info"
    } else {
        "warn"
    };
    init_tracing(default_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Node(args) => {
            let shutdown = CancellationToken::new();
            shoal::node::cancel_on_signals(shutdown.clone())?;
            shoal::node::run(args.into_config()?, shutdown).await?;
            Ok(())
        }
        Command::Keygen { output } => shoal::cli::keygen(output.as_deref()),
        Command::Id { data } => shoal::cli::id(&data),
        Command::S3 {
            command: S3Command::Key { command },
        } => match command {
            KeyCommand::Create { name, json, api } => {
                shoal::cli::s3::key_create(&Client::new(&api.api)?, &name, json).await
            }
            KeyCommand::Ls { json, api } => {
                shoal::cli::s3::key_ls(&Client::new(&api.api)?, json).await
            }
            KeyCommand::Rm { access_key_id, api } => {
                shoal::cli::s3::key_rm(&Client::new(&api.api)?, &access_key_id).await
            }
            KeyCommand::Import {
                access_key_id,
                secret_access_key,
                name,
                json,
                api,
            } => {
                shoal::cli::s3::key_import(
                    &Client::new(&api.api)?,
                    &access_key_id,
                    &secret_access_key,
                    &name,
                    json,
                )
                .await
            }
        },
        Command::Put {
            path,
            name,
            recursive: true,
            follow_links,
            jobs,
            json,
            api,
        } => {
            if path.as_os_str() == "-" {
                anyhow::bail!("-r reads a directory; it cannot read stdin");
            }
            let client = Client::new(&api.api)?;
            shoal::cli::put_tree(&client, &path, name.as_deref(), jobs, follow_links, json).await
        }
        Command::Put {
            path,
            name,
            json,
            api,
            ..
        } => shoal::cli::put(&Client::new(&api.api)?, &path, name.as_deref(), json).await,
        Command::Get {
            name,
            output,
            recursive: true,
            jobs,
            json,
            api,
        } => {
            shoal::cli::get_tree(
                &Client::new(&api.api)?,
                &name,
                output.as_deref(),
                jobs,
                json,
            )
            .await
        }
        Command::Get {
            name, output, api, ..
        } => shoal::cli::get(&Client::new(&api.api)?, &name, output.as_deref()).await,
        Command::Ls { prefix, json, api } => {
            shoal::cli::ls(&Client::new(&api.api)?, &prefix, json).await
        }
        Command::Rm { name, api } => shoal::cli::rm(&Client::new(&api.api)?, &name).await,
        Command::Stat { name, json, api } => {
            shoal::cli::stat(&Client::new(&api.api)?, &name, json).await
        }
        Command::Status { json, api } => shoal::cli::status(&Client::new(&api.api)?, json).await,
        Command::Scrub { json, api } => shoal::cli::scrub(&Client::new(&api.api)?, json).await,
        Command::Leave { json, api } => shoal::cli::leave(&Client::new(&api.api)?, json).await,
    }
}

fn init_tracing(default_level: &str) {
    let mut directives = std::env::var("SHOAL_LOG").unwrap_or_else(|_| default_level.to_owned());
    // s3s reports every refused S3 request (a missing key, a bad signature)
    // at error level; it stays quiet unless SHOAL_LOG names it.
    if !directives.contains("s3s") {
        directives.push_str(",s3s=off");
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Prints an error as one line and returns the failure exit code. A closed
/// stdout (`shoal ls | head`) is not an error worth reporting.
fn fail(e: &anyhow::Error) -> ExitCode {
    let broken_pipe = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    // Each cause once, even where a message already quotes its source.
    let message = shoal::client::chain(e.as_ref());
    say_error(&message);
    ExitCode::FAILURE
}

/// Writes `error: <message>` as one line on stderr; if stderr itself is
/// gone there is no one to tell, and the exit code still says it.
fn say_error(message: &str) {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let _ = writeln!(std::io::stderr(), "error: {line}");
}

/// Help and version go out as clap renders them; a usage mistake becomes
/// one `error:` line pointing at `--help`.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            say_error(
                "a command is required: node, keygen, id, put, get, ls, rm, stat or status (see 'shoal --help')",
            );
            ExitCode::from(2)
        }
        _ => {
            // clap's message is its first paragraph, which for a missing
            // argument spans lines naming each one.
            let rendered = e.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .collect();
            let message = paragraph.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            say_error(&format!("{message} (see 'shoal --help')"));
            ExitCode::from(2)
        }
    }
}
