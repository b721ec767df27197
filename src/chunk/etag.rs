//! ETags: the content tags S3 clients compare.
//!
//! S3 gives an object written in one request the hex MD5 of its bytes, and
//! an object assembled from N uploaded parts the hex MD5 of the parts' MD5s
//! followed by `-N`. Clients compare the first kind with their own MD5 and
//! treat the second as opaque. A file split into chunks already carries
//! each chunk's MD5, so a file written through shoal's own interfaces gets
//! the multipart form over its chunks, without a second pass over its
//! bytes; a file of one chunk gets its chunk's MD5, which is the first
//! kind.

use md5::{Digest as _, Md5};

use super::{ChunkRef, Md5Hash};

/// The ETag of an object whose bytes have MD5 `md5`: its hex form.
pub fn single_part_etag(md5: &Md5Hash) -> String {
    md5.to_hex()
}

/// The ETag of an object assembled from parts whose MD5s are `part_md5s`,
/// in order: the hex MD5 of their concatenation, `-`, and their count.
pub fn multipart_etag<'a>(part_md5s: impl IntoIterator<Item = &'a Md5Hash>) -> String {
    let mut hasher = Md5::new();
    let mut parts = 0usize;
    for md5 in part_md5s {
        hasher.update(md5.0);
        parts += 1;
    }
    format!("{}-{parts}", hex::encode(hasher.finalize()))
}

/// The ETag of a file written in chunks: the chunk's MD5 for a file of one
/// chunk (the MD5 of its bytes), the MD5 of nothing for an empty file, the
/// multipart form over the chunks otherwise.
pub fn chunked_etag(chunks: &[ChunkRef]) -> String {
    match chunks {
        [] => single_part_etag(&Md5Hash::of(b"")),
        [only] => single_part_etag(&only.md5),
        many => multipart_etag(many.iter().map(|c| &c.md5)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chunk_gives_the_md5_of_the_bytes() {
        let chunk = ChunkRef::compute(b"hello");
        assert_eq!(chunked_etag(&[chunk]), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(chunked_etag(&[]), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn several_give_the_multipart_form() {
        // The MD5 of the two binary MD5s, as `md5sum` would compute it over
        // their concatenation.
        let a = Md5Hash::of(b"a");
        let b = Md5Hash::of(b"b");
        let mut joined = a.0.to_vec();
        joined.extend_from_slice(&b.0);
        let expected = format!("{}-2", Md5Hash::of(&joined).to_hex());
        assert_eq!(multipart_etag([&a, &b]), expected);
        let chunks = [ChunkRef::compute(b"a"), ChunkRef::compute(b"b")];
        assert_eq!(chunked_etag(&chunks), expected);
    }
}
