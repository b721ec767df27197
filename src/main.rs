//! The `shoal` binary: parses the command line and dispatches into the
//! library. Errors end here as one `error: ...` line on stderr and a
//! non-zero exit code.

mod cmdline;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use cmdline::{Cli, Command, KeyCommand, S3Command, TokenCommand};
use shoal::tokens::Scope;

/// mimalloc instead of the C library's allocator: with a dozen threads
/// taking turns on short-lived allocations, glibc's per-thread arenas kept
/// freed memory and a peer's resident size reached three times its live
/// heap (208 MiB for 72 MiB while serving 30,000 small-record reads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Token { command } => match command {
            TokenCommand::Create {
                read_only,
                admin,
                name,
                expires,
                json,
                api,
            } => {
                let scope = match (read_only, admin) {
                    (true, _) => Scope::ReadOnly,
                    (_, true) => Scope::Admin,
                    _ => Scope::ReadWrite,
                };
                let request = shoal::cli::token::request(name, scope, expires);
                shoal::cli::token::create(&api.client()?, &request, json).await
            }
            TokenCommand::Ls { json, api } => shoal::cli::token::ls(&api.client()?, json).await,
            TokenCommand::Rm { name, api } => shoal::cli::token::rm(&api.client()?, &name).await,
        },
        Command::S3 {
            command: S3Command::Key { command },
        } => match command {
            KeyCommand::Create { name, json, api } => {
                shoal::cli::s3::key_create(&api.client()?, &name, json).await
            }
            KeyCommand::Ls { json, api } => shoal::cli::s3::key_ls(&api.client()?, json).await,
            KeyCommand::Rm { access_key_id, api } => {
                shoal::cli::s3::key_rm(&api.client()?, &access_key_id).await
            }
            KeyCommand::Import {
                access_key_id,
                secret_access_key,
                name,
                json,
                api,
            } => {
                shoal::cli::s3::key_import(
                    &api.client()?,
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
            let client = api.client()?;
            shoal::cli::put_tree(&client, &path, name.as_deref(), jobs, follow_links, json).await
        }
        Command::Put {
            path,
            name,
            json,
            api,
            ..
        } => shoal::cli::put(&api.client()?, &path, name.as_deref(), json).await,
        Command::Get {
            name,
            output,
            recursive: true,
            jobs,
            json,
            no_preserve,
            api,
        } => {
            shoal::cli::get_tree(
                &api.client()?,
                &name,
                output.as_deref(),
                jobs,
                json,
                !no_preserve,
            )
            .await
        }
        Command::Get {
            name,
            output,
            no_preserve,
            api,
            ..
        } => {
            let client = api.client()?;
            shoal::cli::get(&client, &name, output.as_deref(), !no_preserve).await
        }
        Command::Ls { prefix, json, api } => shoal::cli::ls(&api.client()?, &prefix, json).await,
        Command::Rm { name, api } => shoal::cli::rm(&api.client()?, &name).await,
        Command::Stat { name, json, api } => shoal::cli::stat(&api.client()?, &name, json).await,
        Command::Status {
            watch: true, api, ..
        } => shoal::cli::watch::watch(&api.client()?).await,
        Command::Status { json, api, .. } => shoal::cli::status(&api.client()?, json).await,
        Command::Scrub { json, api } => shoal::cli::scrub(&api.client()?, json).await,
        Command::Leave { json, api } => shoal::cli::leave(&api.client()?, json).await,
        Command::Invite { json, api } => shoal::cli::invite(&api.client()?, json).await,
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
                "a command is required: node, keygen, id, invite, put, get, ls, rm, stat or status (see 'shoal --help')",
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
