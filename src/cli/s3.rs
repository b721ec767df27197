//! `shoal s3 key …`: managing the S3 endpoint's access keys.

use anyhow::Result;

use super::{print_json, stdout_line};
use crate::api::ImportKey;
use crate::client::Client;

/// `shoal s3 key create NAME`: prints the new key, the only time its
/// secret is shown.
///
/// # Errors
/// The swarm has no cluster secret, the name is invalid, or the peer fails.
pub async fn key_create(client: &Client, name: &str, json: bool) -> Result<()> {
    let key = client.create_key(name).await?;
    if json {
        return print_json(&key);
    }
    stdout_line(&format!(
        "access key id:     {}\nsecret access key: {}\n(the secret is not shown again)",
        key.access_key_id, key.secret_access_key
    ))
}

/// `shoal s3 key import ID SECRET --name NAME`.
///
/// # Errors
/// The id or secret is malformed, a key has this id, or the peer fails.
pub async fn key_import(
    client: &Client,
    id: &str,
    secret: &str,
    name: &str,
    json: bool,
) -> Result<()> {
    let key = client
        .import_key(&ImportKey {
            name: name.to_owned(),
            access_key_id: id.to_owned(),
            secret_access_key: secret.to_owned(),
        })
        .await?;
    if json {
        return print_json(&key);
    }
    stdout_line(&format!("imported access key {}", key.access_key_id))
}

/// `shoal s3 key ls`: every key, never a secret.
///
/// # Errors
/// The peer fails.
pub async fn key_ls(client: &Client, json: bool) -> Result<()> {
    let keys = client.list_keys().await?;
    if json {
        return print_json(&keys);
    }
    let mut lines = Vec::with_capacity(keys.len());
    for key in keys {
        lines.push(format!("{}\t{}", key.access_key_id, key.name));
    }
    if lines.is_empty() {
        return Ok(());
    }
    stdout_line(&lines.join("\n"))
}

/// `shoal s3 key rm ID`.
///
/// # Errors
/// No such key, or the peer fails.
pub async fn key_rm(client: &Client, id: &str) -> Result<()> {
    client.remove_key(id).await?;
    stdout_line(&format!("removed access key {id}"))
}
