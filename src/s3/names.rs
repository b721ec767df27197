//! How S3 names map onto shoal's: bucket names, and object keys as files.
//!
//! An object `KEY` in bucket `B` is the file `B/KEY`, so the CLI, the HTTP
//! API and S3 see one namespace. Bucket names follow S3's rules, which
//! never allow `/`, so the first `/` of a file name always ends its bucket.

use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use crate::chunk::{FileName, RecordKind};

/// The longest object key S3 allows, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// Whether `name` follows S3's rules for bucket names: 3 to 63 characters
/// of lower-case letters, digits, `.` and `-`, starting and ending with a
/// letter or digit, no `..`, and not shaped like an IP address.
pub fn is_valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-';
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(allowed)
        && edge(bytes.first())
        && edge(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// Checks a bucket name from a request.
///
/// # Errors
/// `InvalidBucketName`.
pub fn check_bucket(name: &str) -> S3Result<()> {
    if is_valid_bucket(name) {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidBucketName,
            "bucket names are 3 to 63 lower-case letters, digits, '.' and '-'"
        ))
    }
}

/// The file an object is.
///
/// # Errors
/// `InvalidBucketName`, `KeyTooLongError`, or `InvalidArgument` for a key
/// that is empty or has control characters (which file names cannot).
pub fn object_file(bucket: &str, key: &str) -> S3Result<FileName> {
    check_bucket(bucket)?;
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            format!("object keys are at most {MAX_KEY_LEN} bytes"),
        ));
    }
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "the object key is empty"));
    }
    FileName::new(format!("{bucket}/{key}")).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "object keys cannot contain control characters"
        )
    })
}

/// The file-name prefix of every object of `bucket` whose key starts with
/// `prefix`.
pub fn object_prefix(bucket: &str, prefix: &str) -> String {
    format!("{bucket}/{prefix}")
}

/// The key of the object a file of `bucket` is.
pub fn key_of<'a>(bucket: &str, file: &'a str) -> &'a str {
    file.get(bucket.len() + 1..).unwrap_or_default()
}

/// The record name of bucket `name`.
pub fn bucket_record(name: &str) -> S3Result<FileName> {
    check_bucket(name)?;
    FileName::record(RecordKind::Bucket, name)
        .map_err(|_| s3_error!(InvalidBucketName, "invalid bucket name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket", "my.bucket.1", &"a".repeat(63), "1ab"] {
            assert!(is_valid_bucket(ok), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "a_b",
            "192.168.1.1",
            "a/b",
            "",
        ] {
            assert!(!is_valid_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn an_object_is_the_file_bucket_slash_key() {
        let file = object_file("photos", "2024/a b.jpg").unwrap();
        assert_eq!(file.as_str(), "photos/2024/a b.jpg");
        assert_eq!(key_of("photos", file.as_str()), "2024/a b.jpg");
        let longest = object_file(&"b".repeat(63), &"k".repeat(MAX_KEY_LEN)).unwrap();
        assert_eq!(longest.as_str().len(), 63 + 1 + MAX_KEY_LEN);
        assert_eq!(
            object_file("photos", &"k".repeat(MAX_KEY_LEN + 1))
                .unwrap_err()
                .code(),
            &S3ErrorCode::KeyTooLongError
        );
        assert!(object_file("photos", "a\nb").is_err());
        assert!(object_file("photos", "").is_err());
        assert!(object_file("Photos", "a").is_err());
    }
}
