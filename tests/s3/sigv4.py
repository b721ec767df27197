"""SigV4 signing by hand, for the request forms no installed client sends.

boto3 over plain HTTP signs the whole body and never uses `aws-chunked`,
yet other SDKs stream uploads that way (each chunk signed, chained from the
header's seed signature) or send an unsigned chunked body whose checksum
arrives as a trailer. This module builds those requests byte by byte, so
the tests can send them with http.client and also send deliberately broken
ones. It follows the published AWS algorithm; test_aws_chunked.py checks it
against AWS's own worked example.
"""

import base64
import hashlib
import hmac
import http.client
import urllib.parse
import zlib
from datetime import datetime, timezone

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def uri_encode(text, keep_slash=True):
    """SigV4's URI encoding: everything but unreserved characters, UTF-8."""
    return urllib.parse.quote(text, safe="-_.~" + ("/" if keep_slash else ""))


def crc32_b64(data):
    """The value of an `x-amz-checksum-crc32` header for `data`."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class Signer:
    """Signs requests with one key, for one moment and region."""

    def __init__(self, access_key, secret_key, region="us-east-1", when=None):
        when = when or datetime.now(timezone.utc)
        self.access_key = access_key
        self.amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        day = when.strftime("%Y%m%d")
        self.scope = f"{day}/{region}/s3/aws4_request"
        key = _hmac(("AWS4" + secret_key).encode(), day)
        for part in (region, "s3", "aws4_request"):
            key = _hmac(key, part)
        self.key = key

    def signature(self, string_to_sign):
        return hmac.new(self.key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def authorization(self, method, path, query, headers, payload_hash):
        """The Authorization header value and its signature (the seed of a
        chunked body). `path` is already URI-encoded; `headers` are all
        signed and must include host and x-amz-date."""
        names = sorted(k.lower() for k in headers)
        values = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
        canonical_query = "&".join(
            f"{uri_encode(k, False)}={uri_encode(v, False)}" for k, v in sorted(query.items())
        )
        canonical = "\n".join(
            [
                method,
                path,
                canonical_query,
                "".join(f"{n}:{values[n]}\n" for n in names),
                ";".join(names),
                payload_hash,
            ]
        )
        to_sign = "\n".join(
            [ALGORITHM, self.amz_date, self.scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = self.signature(to_sign)
        value = (
            f"{ALGORITHM} Credential={self.access_key}/{self.scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return value, signature

    def chunk_signature(self, previous, chunk):
        """The signature of one chunk, chained from the previous one."""
        to_sign = "\n".join(
            [
                f"{ALGORITHM}-PAYLOAD",
                self.amz_date,
                self.scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        return self.signature(to_sign)


def split(data, chunk_size):
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]


def signed_chunked_length(sizes):
    """The encoded length of a signed aws-chunked body whose chunks have
    these sizes (the final empty chunk is added here)."""
    return sum(len(f"{n:x};chunk-signature=") + 64 + 2 + n + 2 for n in [*sizes, 0])


def signed_chunked_body(signer, seed, chunks):
    """The aws-chunked body: every chunk, then the empty final one, each
    with its chained signature."""
    body = bytearray()
    previous = seed
    for chunk in [*chunks, b""]:
        previous = signer.chunk_signature(previous, chunk)
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    return bytes(body)


def unsigned_trailer_body(chunks, trailer_name, trailer_value):
    """An unsigned aws-chunked body ending in one trailing header."""
    body = bytearray()
    for chunk in chunks:
        body += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    body += f"0\r\n{trailer_name}:{trailer_value}\r\n\r\n".encode()
    return bytes(body)


def host_of(endpoint):
    return urllib.parse.urlsplit(endpoint).netloc


def object_path(bucket, key):
    return "/" + uri_encode(bucket) + "/" + uri_encode(key)


def send(endpoint, method, path, headers, body=b""):
    """Sends one request as given; returns (status, headers, body)."""
    parts = urllib.parse.urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def put_signed_chunked(endpoint, signer, bucket, key, data, chunk_size, tamper_chunk=None):
    """PUTs `data` as a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload. With
    `tamper_chunk`, that chunk's signature is made wrong (one hex digit
    changed) to check the server refuses the body."""
    chunks = split(data, chunk_size)
    path = object_path(bucket, key)
    headers = {
        "Host": host_of(endpoint),
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(signed_chunked_length([len(c) for c in chunks])),
        "x-amz-content-sha256": STREAMING_SIGNED,
        "x-amz-date": signer.amz_date,
        "x-amz-decoded-content-length": str(len(data)),
    }
    authorization, seed = signer.authorization("PUT", path, {}, headers, STREAMING_SIGNED)
    body = signed_chunked_body(signer, seed, chunks)
    if tamper_chunk is not None:
        body = _tamper(body, tamper_chunk)
    return send(endpoint, "PUT", path, {**headers, "Authorization": authorization}, body)


def _tamper(body, index):
    """Changes one hex digit of the `index`th chunk signature in `body`."""
    marker = b"chunk-signature="
    at = -1
    for _ in range(index + 1):
        at = body.index(marker, at + 1)
    digit = at + len(marker)
    flipped = b"0" if body[digit : digit + 1] != b"0" else b"1"
    return body[:digit] + flipped + body[digit + 1 :]


def put_unsigned_trailer(endpoint, signer, bucket, key, data, chunk_size, checksum=None):
    """PUTs `data` as a STREAMING-UNSIGNED-PAYLOAD-TRAILER upload whose
    trailer carries `x-amz-checksum-crc32` (the right one unless given)."""
    chunks = split(data, chunk_size)
    body = unsigned_trailer_body(chunks, "x-amz-checksum-crc32", checksum or crc32_b64(data))
    path = object_path(bucket, key)
    headers = {
        "Host": host_of(endpoint),
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(len(body)),
        "x-amz-content-sha256": STREAMING_UNSIGNED_TRAILER,
        "x-amz-date": signer.amz_date,
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    authorization, _ = signer.authorization("PUT", path, {}, headers, STREAMING_UNSIGNED_TRAILER)
    return send(endpoint, "PUT", path, {**headers, "Authorization": authorization}, body)


def put_signed(endpoint, signer, bucket, key, data):
    """A plain signed PUT (whole-body SHA-256): the baseline that shows the
    signer itself is right when a chunked form fails."""
    path = object_path(bucket, key)
    payload_hash = hashlib.sha256(data).hexdigest()
    headers = {
        "Host": host_of(endpoint),
        "Content-Length": str(len(data)),
        "x-amz-content-sha256": payload_hash,
        "x-amz-date": signer.amz_date,
    }
    authorization, _ = signer.authorization("PUT", path, {}, headers, payload_hash)
    return send(endpoint, "PUT", path, {**headers, "Authorization": authorization}, data)


def error_code(body):
    """The <Code> of an S3 XML error body, or None."""
    text = body.decode(errors="replace")
    start, end = text.find("<Code>"), text.find("</Code>")
    return text[start + 6 : end] if 0 <= start < end else None
