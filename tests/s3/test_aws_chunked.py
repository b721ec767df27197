"""Streaming uploads in the `aws-chunked` encoding, built by hand.

The Java, Go and JavaScript SDKs (and boto3 over HTTPS) send bodies as
signed or unsigned chunks with `x-amz-decoded-content-length`, and the
newest put the checksum in a trailer. boto3 over plain HTTP never does, so
these tests build such requests themselves (sigv4.py), check the builder
against AWS's published example first, then send good and broken bodies.
"""

from datetime import datetime, timezone

import pytest

from s3expect import data, md5_etag, read, s3_error
from sigv4 import (
    STREAMING_SIGNED,
    Signer,
    crc32_b64,
    error_code,
    put_signed,
    put_signed_chunked,
    put_unsigned_trailer,
    signed_chunked_length,
)

# AWS's worked example ("Signature Calculations for the Authorization
# Header: Transferring Payload in Multiple Chunks"): 66560 bytes of "a" in
# a 64 KiB and a 1 KiB chunk, with these published signatures.
EXAMPLE_KEY = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
EXAMPLE_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
EXAMPLE_CHUNKS = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]

CHUNK = 64 * 1024


def test_the_signer_reproduces_the_aws_example():
    """Runs anywhere: proves the hand-built signatures follow AWS's
    algorithm, so a refusal in the tests below is the server's doing."""
    signer = Signer(*EXAMPLE_KEY, when=datetime(2013, 5, 24, tzinfo=timezone.utc))
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": STREAMING_SIGNED,
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": str(signed_chunked_length([65536, 1024])),
    }
    assert headers["Content-Length"] == "66824"  # as the example states
    _, seed = signer.authorization(
        "PUT", "/examplebucket/chunkObject.txt", {}, headers, STREAMING_SIGNED
    )
    assert seed == EXAMPLE_SEED
    previous = seed
    for chunk, expected in zip([b"a" * 65536, b"a" * 1024, b""], EXAMPLE_CHUNKS, strict=True):
        previous = signer.chunk_signature(previous, chunk)
        assert previous == expected


@pytest.fixture
def signer(target):
    return Signer(target.access_key, target.secret_key)


def test_a_plain_hand_signed_put(target, s3, bucket, signer):
    """The baseline: the same signer with a whole-body hash."""
    body = data(10_000, 50)
    status, _, answer = put_signed(target.endpoints[0], signer, bucket, "plain", body)
    assert status == 200, answer
    assert read(s3, bucket, "plain") == body


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 4321])
def test_a_signed_chunked_upload(target, s3, bucket, signer, size):
    body = data(size, 51)
    status, headers, answer = put_signed_chunked(
        target.endpoints[0], signer, bucket, "streamed", body, CHUNK
    )
    assert status == 200, answer
    assert {k.lower(): v for k, v in headers.items()}["etag"] == md5_etag(body)
    head = s3.head_object(Bucket=bucket, Key="streamed")
    assert head["ContentLength"] == size
    # The framing is not part of the object.
    assert head.get("ContentEncoding") in (None, "")
    assert read(s3, bucket, "streamed") == body


@pytest.mark.shoal_only  # the mock server does not check chunk signatures
@pytest.mark.parametrize("bad_chunk", [0, 2, 3])  # first, middle, the final empty one
def test_a_bad_chunk_signature_is_refused_and_stores_nothing(
    target, s3, bucket, signer, bad_chunk
):
    body = data(3 * 8192 + 100, 52)  # small, so the server can answer early
    status, _, answer = put_signed_chunked(
        target.endpoints[0], signer, bucket, "tampered", body, 8192, tamper_chunk=bad_chunk
    )
    assert status == 403, answer
    assert error_code(answer) == "SignatureDoesNotMatch"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="tampered")


@pytest.mark.parametrize("size", [0, 5000, 2 * CHUNK + 99])
def test_an_unsigned_upload_with_a_crc32_trailer(target, s3, bucket, signer, size):
    body = data(size, 53)
    status, _, answer = put_unsigned_trailer(
        target.endpoints[0], signer, bucket, "trailed", body, CHUNK
    )
    assert status == 200, answer
    assert read(s3, bucket, "trailed") == body
    assert s3.head_object(Bucket=bucket, Key="trailed")["ContentLength"] == size


@pytest.mark.shoal_only  # the mock server drops checksums sent as trailers
def test_a_trailer_checksum_is_kept(target, s3, bucket, signer):
    body = data(3 * CHUNK, 55)
    status, _, answer = put_unsigned_trailer(
        target.endpoints[0], signer, bucket, "trailed", body, CHUNK
    )
    assert status == 200, answer
    head = s3.head_object(Bucket=bucket, Key="trailed", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(body)


@pytest.mark.shoal_only  # the mock server does not verify trailers
def test_a_wrong_trailer_checksum_is_refused_and_stores_nothing(target, s3, bucket, signer):
    body = data(20_000, 54)
    status, _, answer = put_unsigned_trailer(
        target.endpoints[0], signer, bucket, "bad-trailer", body, 8192, checksum=crc32_b64(b"x")
    )
    assert status == 400, answer
    assert error_code(answer) == "BadDigest"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad-trailer")


@pytest.mark.shoal_only
def test_a_refused_request_with_a_body_closes_its_connection(target, s3, bucket, signer):
    """An upload refused before its body is read (here: to an upload that
    does not exist) must not leave the body's bytes on a kept-alive
    connection, where they would be read as the start of the next request.
    A client that sent `Expect: 100-continue` and stopped waiting sends the
    body anyway, so the server closes the connection instead."""
    import hashlib
    import http.client
    import urllib.parse

    from sigv4 import host_of, object_path

    body = b"late body"
    payload_hash = hashlib.sha256(body).hexdigest()
    path = object_path(bucket, "k")
    query = {"partNumber": "1", "uploadId": "no-such-upload"}
    headers = {
        "Host": host_of(target.endpoints[0]),
        "Content-Length": str(len(body)),
        "Expect": "100-continue",
        "x-amz-content-sha256": payload_hash,
        "x-amz-date": signer.amz_date,
    }
    authorization, _ = signer.authorization("PUT", path, query, headers, payload_hash)
    parts = urllib.parse.urlsplit(target.endpoints[0])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.putrequest("PUT", f"{path}?{urllib.parse.urlencode(query)}", skip_host=True,
                              skip_accept_encoding=True)
        for name, value in {**headers, "Authorization": authorization}.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 404
        assert answer.getheader("Connection", "").lower() == "close"
    finally:
        connection.close()
