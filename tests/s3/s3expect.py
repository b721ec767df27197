"""What S3 answers should look like, for the tests to assert against.

S3 clients depend on exact error codes and ETag forms (aws-cli and rclone
compare ETags with MD5s they compute), so the tests compute the expected
values independently here rather than trusting what the server says.
"""

import base64
import contextlib
import hashlib
import random

from conftest import need_module

ClientError = need_module("botocore.exceptions").ClientError

MIB = 1 << 20


def data(size, seed):
    """Reproducible pseudo-random bytes: the same seed, the same content."""
    return random.Random(seed).randbytes(size)


def md5_etag(content):
    """The ETag of a single-part object: its quoted hex MD5."""
    return f'"{hashlib.md5(content).hexdigest()}"'


def multipart_etag(parts):
    """The ETag of a multipart object: the MD5 of the parts' binary MD5s,
    then `-N`."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def split(content, part_size):
    return [content[i : i + part_size] for i in range(0, len(content), part_size)]


def b64(digest):
    return base64.b64encode(digest).decode()


def content_md5(content):
    """The Content-MD5 header for `content`."""
    return b64(hashlib.md5(content).digest())


def _crc32c_table():
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)
    return table


_CRC32C = _crc32c_table()


def crc32c(content):
    """CRC-32C (Castagnoli), which botocore computes only with the optional
    awscrt package; small inputs only (pure Python)."""
    crc = 0xFFFFFFFF
    for byte in content:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def code_of(error):
    return error.response.get("Error", {}).get("Code")


def status_of(error):
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


@contextlib.contextmanager
def s3_error(code, status):
    """Asserts the block raises a ClientError with this S3 error code and
    HTTP status. For HEAD requests, which carry no body, botocore's code is
    the status itself (`"404"`)."""
    try:
        yield
    except ClientError as e:
        assert (code_of(e), status_of(e)) == (code, status), (
            f"expected {code} ({status}), got {code_of(e)} ({status_of(e)}): {e}"
        )
    else:
        raise AssertionError(f"expected {code} ({status}), but the request succeeded")


def read(client, bucket, key, **extra):
    """The object's bytes, through GetObject."""
    return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
