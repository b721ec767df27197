//! Record reads: one name's record or head, and pages of heads by name
//! prefix for listings.
//!
//! Listings read heads only (see `records`), so a page of large files costs
//! the same as one of small files.

use std::ops::Bound;

use redb::ReadableDatabase;

use super::error::Result;
use super::records;
use super::tables::{FILE_CHUNKS, FILES};
use super::{RecordHead, Store};
use crate::chunk::{FileName, FileRecord};
use crate::codec;

impl Store {
    /// The current record for `name`, live or tombstone.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn record(&self, name: &FileName) -> Result<Option<FileRecord>> {
        let name = name.clone();
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let files = txn.open_table(FILES)?;
            let chunk_lists = txn.open_table(FILE_CHUNKS)?;
            records::read_record(&files, &chunk_lists, name.as_str())
        })
        .await
    }

    /// The head of the current record for `name`, live or tombstone.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn head(&self, name: &FileName) -> Result<Option<RecordHead>> {
        let name = name.clone();
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let files = txn.open_table(FILES)?;
            records::read_head(&files, name.as_str())?
                .map(|head| head.public(name.as_str()))
                .transpose()
        })
        .await
    }

    /// The heads of the records (live files and tombstones) whose names
    /// start with `prefix` and sort after `after`, in name order, at most
    /// `limit` of them, and whether more follow. Reads only the heads, so a
    /// page of large files costs the same as one of small files.
    ///
    /// # Errors
    /// Database errors, or an undecodable record.
    pub async fn heads(
        &self,
        prefix: String,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<RecordHead>, bool)> {
        self.read(move |s| {
            let txn = s.db.get()?.begin_read()?;
            let table = txn.open_table(FILES)?;
            let start = match &after {
                Some(a) if a.as_str() >= prefix.as_str() => Bound::Excluded(a.as_str()),
                _ => Bound::Included(prefix.as_str()),
            };
            let mut heads = Vec::new();
            for row in table.range::<&str>((start, Bound::Unbounded))? {
                let (key, raw) = row?;
                let name = key.value();
                if !name.starts_with(prefix.as_str()) {
                    break;
                }
                if heads.len() == limit {
                    return Ok((heads, true));
                }
                let head: records::FileHead = codec::decode(raw.value())?;
                heads.push(head.public(name)?);
            }
            Ok((heads, false))
        })
        .await
    }
}
