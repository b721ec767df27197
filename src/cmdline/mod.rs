//! The binary's command line: every command and its arguments, as clap
//! parses them. The peer's own flags are in `node`.

mod node;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

pub use node::NodeArgs;
use shoal::client::Client;
use shoal::config::{self, DEFAULT_API_URL};

/// A masterless, peer-to-peer distributed file store.
#[derive(Parser)]
#[command(name = "shoal", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Manage access tokens for the API and the web page (needed when a
    /// peer's --api listens beyond loopback).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
        /// Leave files (and with -r, directories) with the mode and time they
        /// get when written, instead of those they were put with.
        #[arg(long)]
        no_preserve: bool,
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
    /// Print one line that lets another machine's peer join this swarm
    /// (`shoal node --invite LINE`). It carries the cluster secret: share it
    /// as you would the secret.
    Invite {
        /// Print it as JSON, with the addresses it names.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Show the peer, the swarm's members and the local store.
    Status {
        /// Print the result as JSON.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Redraw the swarm's overview every second (the verdict, repair,
        /// every member) until Ctrl-C.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token (read-write unless told); it is shown only now.
    Create {
        /// Only list, stat and get.
        #[arg(long, conflicts_with = "admin")]
        read_only: bool,
        /// Also manage tokens and S3 keys, read invites, scrub and leave.
        #[arg(long)]
        admin: bool,
        /// A name for the token, for people (default: token-DATE-TIME).
        #[arg(long)]
        name: Option<String>,
        /// Stop working after this long (`30d`, `12h`); never, if absent.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
        /// Print the token as JSON (`{"name","token",...}`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// List the tokens (never the tokens themselves).
    Ls {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Remove a token on every peer, for good.
    Rm {
        /// The token's name.
        name: String,
        #[command(flatten)]
        api: ApiArg,
    },
}

#[derive(Subcommand)]
pub enum S3Command {
    /// Manage S3 access keys (they need a cluster secret).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
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
pub struct ApiArg {
    /// The API of the peer to talk to.
    #[arg(long, env = "SHOAL_API", value_name = "URL", default_value = DEFAULT_API_URL)]
    pub api: String,
}

impl ApiArg {
    /// A client for the API, with the token from `SHOAL_TOKEN` (never a
    /// flag, which other users could read in the process list), or else,
    /// for a peer on this machine, the peer's own token from its data
    /// directory (`SHOAL_DATA`, or the default) if this user can read it;
    /// for `https://`, trusting the certificates in the file `SHOAL_CA`.
    pub fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.api)?;
        let token = match std::env::var("SHOAL_TOKEN") {
            Ok(token) if !token.trim().is_empty() => Some(token),
            _ if client.is_local() => {
                let data = std::env::var_os("SHOAL_DATA")
                    .map_or_else(config::default_data_dir, std::path::PathBuf::from);
                shoal::tokens::read_local(&data)
            }
            _ => None,
        };
        let ca = match std::env::var_os("SHOAL_CA") {
            Some(path) if !path.is_empty() => Some(std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read SHOAL_CA {}",
                    std::path::Path::new(&path).display()
                )
            })?),
            _ => None,
        };
        Ok(client.with_credentials(token.as_deref(), ca.as_deref())?)
    }
}

/// `--jobs`: at least one transfer, and not so many that a typo opens
/// thousands of connections.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("{text:?} is not a number of jobs from 1 to 1024")),
    }
}
