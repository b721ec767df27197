//! `shoal token …`: managing the access tokens of the API and the page.

use std::time::Duration;

use anyhow::Result;

use super::{print_json, stdout_line};
use crate::api::CreateToken;
use crate::client::Client;
use crate::tokens::Scope;

/// The request for a token called `name` (a name from the current time if
/// none) with `scope`, working for `expires` if given.
pub fn request(name: Option<String>, scope: Scope, expires: Option<Duration>) -> CreateToken {
    let name = name.unwrap_or_else(|| {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        format!(
            "token-{}",
            now.trim_end_matches('Z').replace([':', 'T'], "-")
        )
    });
    CreateToken {
        name,
        scope,
        expires_in_s: expires.map(|d| d.as_secs().max(1)),
    }
}

/// `shoal token create`: prints the new token, the only time it is shown.
///
/// # Errors
/// The name is taken or invalid, or the peer refuses or fails.
pub async fn create(client: &Client, request: &CreateToken, json: bool) -> Result<()> {
    let token = client.create_token(request).await?;
    if json {
        return print_json(&token);
    }
    stdout_line(&format!(
        "{}\n(token {:?}, {}; it is not shown again: pass it as SHOAL_TOKEN or sign in to the page with it)",
        token.token,
        token.name,
        token.scope.name()
    ))
}

/// `shoal token ls`: every token's name, scope and expiry.
///
/// # Errors
/// The peer refuses or fails.
pub async fn ls(client: &Client, json: bool) -> Result<()> {
    let tokens = client.list_tokens().await?;
    if json {
        return print_json(&tokens);
    }
    let mut lines = Vec::with_capacity(tokens.len());
    for token in tokens {
        let expiry = match token.expires_ms {
            None => "never expires".to_owned(),
            Some(ms) if token.expired => format!("expired {}", super::timestamp(ms)),
            Some(ms) => format!("expires {}", super::timestamp(ms)),
        };
        lines.push(format!(
            "{}\t{}\t{}",
            token.name,
            token.scope.name(),
            expiry
        ));
    }
    if lines.is_empty() {
        return Ok(());
    }
    stdout_line(&lines.join("\n"))
}

/// `shoal token rm NAME`.
///
/// # Errors
/// No token has this name, or the peer refuses or fails.
pub async fn rm(client: &Client, name: &str) -> Result<()> {
    client.remove_token(name).await?;
    stdout_line(&format!("removed token {name:?}"))
}
