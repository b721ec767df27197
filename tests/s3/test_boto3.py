"""Buckets and single-part objects through boto3, the most used S3 SDK.

Each test names the S3 behaviour it relies on, because these are the
details clients act on: ETags compared with local MD5s, headers stored and
returned as sent, conditional requests that save a download, and error
codes that clients branch on (a NoSuchKey is "absent", anything else is a
failure).
"""

import gzip
import hashlib
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from conftest import unique_name
from s3expect import (
    MIB,
    b64,
    content_md5,
    crc32c,
    data,
    md5_etag,
    read,
    s3_error,
)


def test_bucket_lifecycle(s3):
    """Create, head, list, locate and delete a bucket."""
    name = unique_name("life")
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    listed = {b["Name"]: b for b in s3.list_buckets()["Buckets"]}
    assert name in listed and isinstance(listed[name]["CreationDate"], datetime)
    # us-east-1 is reported as no constraint (None), as AWS does.
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "", "us-east-1")
    s3.delete_bucket(Bucket=name)
    with s3_error("404", 404):
        s3.head_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_missing_bucket_errors(s3):
    name = unique_name("absent")
    with s3_error("NoSuchBucket", 404):
        s3.get_object(Bucket=name, Key="k")
    with s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=name, Key="k", Body=b"x")
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    with s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=name)


@pytest.mark.shoal_only  # AWS's us-east-1 (and the mock) answers 200 here
def test_creating_an_owned_bucket_again_is_refused(s3, bucket):
    with s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket=bucket)


@pytest.mark.shoal_only  # the mock server accepts any name
@pytest.mark.parametrize(
    "name", ["ab", "x" * 64, "Upper-case", "-leading-dash", "trailing-dash-", "192.168.1.1", "a..b"]
)
def test_invalid_bucket_names_are_refused(s3, name):
    """The S3 naming rules: 3-63 of [a-z0-9.-], letter or digit at both
    ends, not an IP address. (boto3 itself only refuses characters outside
    [A-Za-z0-9._-], so these reach the server.)"""
    with s3_error("InvalidBucketName", 400):
        s3.create_bucket(Bucket=name)


def test_a_bucket_with_objects_is_not_deleted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)


def test_put_get_head_with_headers_and_metadata(s3, bucket):
    """Content-Type, -Encoding, -Disposition, Cache-Control, Expires and
    x-amz-meta-* come back as sent; the ETag is the quoted MD5. The body is
    real gzip, so a client that decoded it would fail the comparison."""
    body = gzip.compress(data(100_000, 1))
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sent = dict(
        ContentType="application/x-shoal-test",
        ContentEncoding="gzip",
        ContentDisposition='attachment; filename="report.csv"',
        CacheControl="max-age=3600, must-revalidate",
        Expires=expires,
        Metadata={"colour": "blue", "multi-word": "some value"},
    )
    put = s3.put_object(Bucket=bucket, Key="dir/obj.gz", Body=body, **sent)
    assert put["ETag"] == md5_etag(body)
    for answer in (
        s3.head_object(Bucket=bucket, Key="dir/obj.gz"),
        s3.get_object(Bucket=bucket, Key="dir/obj.gz"),
    ):
        assert answer["ETag"] == md5_etag(body)
        assert answer["ContentLength"] == len(body)
        assert answer["ContentType"] == sent["ContentType"]
        assert answer["ContentEncoding"] == "gzip"
        assert answer["ContentDisposition"] == sent["ContentDisposition"]
        assert answer["CacheControl"] == sent["CacheControl"]
        assert answer["Expires"] == expires
        assert answer["Metadata"] == sent["Metadata"]
        assert isinstance(answer["LastModified"], datetime)
    assert read(s3, bucket, "dir/obj.gz") == body


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == md5_etag(b"")
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    assert read(s3, bucket, "empty") == b""


def test_overwrite_replaces_content_and_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!", Metadata={"w": "2"})
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["Metadata"] == {"w": "2"}
    assert read(s3, bucket, "k") == b"second!"


def test_writes_and_reads_say_their_version(s3, bucket):
    def version(answer):
        return answer["ResponseMetadata"]["HTTPHeaders"]["x-shoal-version"]

    first = version(s3.put_object(Bucket=bucket, Key="v", Body=b"one"))
    assert version(s3.get_object(Bucket=bucket, Key="v")) == first
    second = version(s3.put_object(Bucket=bucket, Key="v", Body=b"two"))
    assert second > first
    assert version(s3.head_object(Bucket=bucket, Key="v")) == second
    deleted = version(s3.delete_object(Bucket=bucket, Key="v"))
    assert deleted > second
    # Deleting what is not there writes nothing, so there is no version.
    gone = s3.delete_object(Bucket=bucket, Key="v")
    assert "x-shoal-version" not in gone["ResponseMetadata"]["HTTPHeaders"]


@pytest.mark.parametrize(
    "key",
    [
        "with space.txt",
        "plus+sign",
        "percent%41not-decoded",
        "question?mark#hash&amp=eq",
        "ünïcødé/ключ/日本.txt",
        "tilde~and'quote\"",
        "a//double/slash/",
        "x" * 1024,
    ],
)
def test_keys_with_special_characters_round_trip(s3, bucket, key):
    body = key.encode()[:100] + b"!"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert read(s3, bucket, key) == body
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]


@pytest.mark.shoal_only  # the mock server has no key length limit
def test_a_key_over_1024_bytes_is_refused(s3, bucket):
    with s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")  # 1026 bytes


def test_missing_object_errors(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="nope")
    with s3_error("404", 404):
        s3.head_object(Bucket=bucket, Key="nope")


def test_sdk_default_crc32_is_returned_on_request(s3, bucket):
    """boto3 sends x-amz-checksum-crc32 on every upload by default and
    expects it back with ChecksumMode=ENABLED (and then verifies the body
    against it itself)."""
    body = data(300_000, 2)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    expected = b64(zlib.crc32(body).to_bytes(4, "big"))
    assert got["ChecksumCRC32"] == expected
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected


@pytest.mark.shoal_only  # the mock server keeps only the SDK's default CRC32
@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA1", "SHA256"])
def test_explicit_checksums_are_stored(s3, bucket, algorithm):
    body = data(20_000, 3)
    value = {
        "CRC32C": b64(crc32c(body).to_bytes(4, "big")),
        "SHA1": b64(hashlib.sha1(body).digest()),
        "SHA256": b64(hashlib.sha256(body).digest()),
    }[algorithm]
    s3.put_object(Bucket=bucket, Key="k", Body=body, **{f"Checksum{algorithm}": value})
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == value


def test_content_md5_is_accepted(s3, bucket):
    body = data(50_000, 4)
    s3.put_object(Bucket=bucket, Key="k", Body=body, ContentMD5=content_md5(body))
    assert read(s3, bucket, "k") == body


@pytest.mark.shoal_only  # the mock server does not verify digests
@pytest.mark.parametrize(
    "header",
    [
        {"ContentMD5": content_md5(b"other content")},
        {"ChecksumCRC32": b64(b"\0\0\0\0")},
        {"ChecksumCRC32C": b64(b"\0\0\0\0")},
        {"ChecksumSHA1": b64(hashlib.sha1(b"other").digest())},
        {"ChecksumSHA256": b64(hashlib.sha256(b"other").digest())},
    ],
    ids=lambda h: next(iter(h)),
)
def test_a_wrong_digest_is_refused_and_stores_nothing(s3, bucket, header):
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"the real content", **header)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


def test_ranges(s3, bucket):
    body = data(1000, 5)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    for header, start, end in [
        ("bytes=0-9", 0, 9),
        ("bytes=990-", 990, 999),
        ("bytes=-25", 975, 999),
        ("bytes=500-5000", 500, 999),  # an end past the object is cut short
    ]:
        got = s3.get_object(Bucket=bucket, Key="k", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert got["ContentRange"] == f"bytes {start}-{end}/1000", header
        assert got["ContentLength"] == end - start + 1, header
        assert got["Body"].read() == body[start : end + 1], header
    with s3_error("InvalidRange", 416):
        s3.get_object(Bucket=bucket, Key="k", Range="bytes=1000-1010")


def test_conditional_get(s3, bucket):
    body = b"conditional"
    etag = s3.put_object(Bucket=bucket, Key="k", Body=body)["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    day = timedelta(days=1)

    assert read(s3, bucket, "k", IfMatch=etag) == body
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')

    assert read(s3, bucket, "k", IfNoneMatch='"0123456789abcdef0123456789abcdef"') == body
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)

    assert read(s3, bucket, "k", IfModifiedSince=modified - day) == body
    with s3_error("304", 304):
        s3.get_object(Bucket=bucket, Key="k", IfModifiedSince=modified)

    assert read(s3, bucket, "k", IfUnmodifiedSince=modified + day) == body
    with s3_error("PreconditionFailed", 412):
        s3.get_object(Bucket=bucket, Key="k", IfUnmodifiedSince=modified - day)

    # HEAD answers the same way, with no body to carry a code.
    with s3_error("304", 304):
        s3.head_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    with s3_error("412", 412):
        s3.head_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')


def test_response_header_overrides(s3, bucket):
    """response-* query parameters replace the stored headers in one GET,
    as presigned download links use them."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="application/x-override",
        ResponseContentDisposition='attachment; filename="o.bin"',
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="fr",
        ResponseContentEncoding="identity",
        ResponseExpires=datetime(2031, 5, 6, tzinfo=timezone.utc),
    )
    assert got["ContentType"] == "application/x-override"
    assert got["ContentDisposition"] == 'attachment; filename="o.bin"'
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "fr"
    assert got["ContentEncoding"] == "identity"
    assert got["Expires"] == datetime(2031, 5, 6, tzinfo=timezone.utc)


def test_delete_object_and_objects(s3, bucket):
    keys = [f"d/{i}" for i in range(5)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.delete_object(Bucket=bucket, Key="d/0")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="d/0")
    # Deleting what is not there succeeds: deletes are idempotent.
    s3.delete_object(Bucket=bucket, Key="d/0")

    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": k} for k in keys[1:3] + ["never-was"]]},
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["d/1", "d/2", "never-was"]
    assert not answer.get("Errors")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/3", "d/4"]


@pytest.mark.shoal_only  # the mock server reports deletions even when quiet
def test_quiet_delete_objects_reports_only_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}], "Quiet": True})
    assert not quiet.get("Deleted") and not quiet.get("Errors")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_object(s3, bucket):
    body = data(3 * MIB + 17, 6)
    s3.put_object(
        Bucket=bucket, Key="src", Body=body, ContentType="text/x-src", Metadata={"origin": "src"}
    )
    other = unique_name("copy")
    s3.create_bucket(Bucket=other)
    try:
        source = {"Bucket": bucket, "Key": "src"}
        copied = s3.copy_object(Bucket=other, Key="dst", CopySource=source)
        assert copied["CopyObjectResult"]["ETag"] == md5_etag(body)
        head = s3.head_object(Bucket=other, Key="dst")
        assert (head["ContentType"], head["Metadata"]) == ("text/x-src", {"origin": "src"})
        assert read(s3, other, "dst") == body
        s3.delete_object(Bucket=other, Key="dst")
    finally:
        s3.delete_bucket(Bucket=other)

    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="text/x-new",
        Metadata={"fresh": "yes"},
    )
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-new", {"fresh": "yes"})
    assert read(s3, bucket, "replaced") == body

    # Copying an object onto itself with new metadata is how clients
    # (rclone, aws s3 cp --metadata-directive) change metadata in place.
    s3.copy_object(
        Bucket=bucket,
        Key="src",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"origin": "changed"},
    )
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"origin": "changed"}
    assert read(s3, bucket, "src") == body


def test_copy_when_the_source_matches(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")["ETag"]
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=source, CopySourceIfMatch=etag)
    assert read(s3, bucket, "ok") == b"copy me"
    with s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "absent"})


@pytest.mark.shoal_only  # the mock server checks only x-amz-copy-source-if-none-match
def test_copy_preconditions_refuse(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="src")["LastModified"]
    source = {"Bucket": bucket, "Key": "src"}
    for condition in [
        {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfUnmodifiedSince": modified - timedelta(days=1)},
        {"CopySourceIfModifiedSince": modified},
    ]:
        with s3_error("PreconditionFailed", 412):
            s3.copy_object(Bucket=bucket, Key="refused", CopySource=source, **condition)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="refused")


@pytest.mark.shoal_only
def test_conditional_puts(s3, bucket):
    """`If-None-Match: *` writes only a new key; `If-Match` only over the
    version named."""
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert read(s3, bucket, "once") == b"first"
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"third", IfMatch='"0123"')
    s3.put_object(Bucket=bucket, Key="once", Body=b"fourth", IfMatch=md5_etag(b"first"))
    assert read(s3, bucket, "once") == b"fourth"
