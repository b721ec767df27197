"""Multipart uploads through boto3: the transfer manager, every low-level
call, and the rules S3 enforces at CompleteMultipartUpload.

Every large upload from aws-cli, rclone or boto3 is multipart, and their
integrity checks depend on the `md5(part md5s)-N` ETag; a store that
accepted a bad part list would silently assemble the wrong object.
"""

import pytest

from conftest import need_module
from s3expect import MIB, data, md5_etag, multipart_etag, read, s3_error, split

TransferConfig = need_module("boto3.s3.transfer").TransferConfig

PART = 5 * MIB  # the smallest part S3 allows (but for the last)


def upload_parts(s3, bucket, key, parts):
    """Starts an upload and sends `parts` as parts 1..N; returns the
    upload id and the part list for CompleteMultipartUpload."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        assert etag == md5_etag(body)
        done.append({"PartNumber": number, "ETag": etag})
    return upload, done


def test_transfer_manager_round_trip(s3, bucket, tmp_path):
    """boto3's upload_file/download_file, forced to 5 MiB parts: a 12 MiB
    file goes up as 3 parts, and comes down in ranged GETs."""
    content = data(12 * MIB + 12345, 10)
    source = tmp_path / "up.bin"
    source.write_bytes(content)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=3)
    s3.upload_file(str(source), bucket, "big/file.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert head["ContentLength"] == len(content)
    assert head["ETag"] == multipart_etag(split(content, PART))
    assert head["ETag"].endswith('-3"')

    target = tmp_path / "down.bin"
    s3.download_file(bucket, "big/file.bin", str(target), Config=config)
    assert target.read_bytes() == content


def test_low_level_multipart(s3, bucket):
    parts = [data(PART, 11), data(PART, 12), data(1000, 13)]
    upload, done = upload_parts(s3, bucket, "mp", parts)

    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", upload)]
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (n, md5_etag(b), len(b)) for n, b in enumerate(parts, start=1)
    ]
    # Not visible before completion.
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="mp")

    answer = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": done}
    )
    assert answer["ETag"] == multipart_etag(parts)
    assert read(s3, bucket, "mp") == b"".join(parts)
    assert s3.head_object(Bucket=bucket, Key="mp")["ETag"] == multipart_etag(parts)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.shoal_only  # the mock server ignores PartNumber
def test_get_by_part_number(s3, bucket):
    """GetObject/HeadObject by part number give that part and the count
    (parallel downloaders fetch parts this way)."""
    parts = [data(PART, 21), data(PART, 22), data(1000, 23)]
    upload, done = upload_parts(s3, bucket, "mp", parts)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": done}
    )
    second = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert second["Body"].read() == parts[1]
    assert second["PartsCount"] == 3
    assert second["ContentRange"] == f"bytes {PART}-{2 * PART - 1}/{2 * PART + 1000}"
    assert s3.head_object(Bucket=bucket, Key="mp", PartNumber=3)["ContentLength"] == 1000


@pytest.mark.shoal_only
def test_part_number_of_a_single_part_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"one part")
    assert read(s3, bucket, "single", PartNumber=1) == b"one part"


def test_a_reuploaded_part_replaces_the_first(s3, bucket):
    first, second, last = data(PART, 14), data(PART, 15), b"tail"
    upload, done = upload_parts(s3, bucket, "k", [first, last])
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=second)[
        "ETag"
    ]
    done[0]["ETag"] = etag
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}
    )
    assert read(s3, bucket, "k") == second + last


def test_a_completion_may_leave_parts_out(s3, bucket):
    """Parts 1 and 3 of three: S3 assembles what the list names."""
    parts = [data(PART, 16), b"skipped", b"last"]
    upload, done = upload_parts(s3, bucket, "k", parts)
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": [done[0], done[2]]}
    )
    assert read(s3, bucket, "k") == parts[0] + parts[2]


def test_a_small_part_before_the_last_is_refused(s3, bucket):
    upload, done = upload_parts(s3, bucket, "k", [b"too small", b"last"])
    with s3_error("EntityTooSmall", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}
        )


def test_a_wrong_part_etag_is_refused(s3, bucket):
    upload, done = upload_parts(s3, bucket, "k", [data(PART, 17), b"last"])
    done[1]["ETag"] = md5_etag(b"something else")
    with s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}
        )
    missing = [done[0], {"PartNumber": 7, "ETag": md5_etag(b"never sent")}]
    with s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": missing}
        )


@pytest.mark.shoal_only  # the mock server sorts the list itself
def test_parts_out_of_order_are_refused(s3, bucket):
    upload, done = upload_parts(s3, bucket, "k", [data(PART, 18), data(PART, 19)])
    with s3_error("InvalidPartOrder", 400):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done[::-1]}
        )


def test_abort(s3, bucket):
    upload, _ = upload_parts(s3, bucket, "k", [b"part"])
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="k", UploadId=upload)
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


@pytest.mark.shoal_only  # the mock server fails (500) on some of these
def test_aborted_and_unknown_uploads_are_refused(s3, bucket):
    upload, done = upload_parts(s3, bucket, "k", [b"part"])
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload)
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=2, Body=b"x")
    with s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": done}
        )
    with s3_error("NoSuchUpload", 404):
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="no-such-upload")
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId="no-such-upload", PartNumber=1, Body=b"x")


def test_upload_part_copy(s3, bucket):
    """UploadPartCopy, whole and by range: how clients copy objects over
    5 GiB, and how some assemble objects from others."""
    source = data(6 * MIB, 20)
    tail = b"tail object"
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    s3.put_object(Bucket=bucket, Key="tail", Body=tail)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange=f"bytes=100-{100 + PART - 1}",
    )["CopyPartResult"]["ETag"]
    second = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "tail"},
    )["CopyPartResult"]["ETag"]
    expected = [source[100 : 100 + PART], tail]
    assert [first, second] == [md5_etag(p) for p in expected]
    answer = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}]
        },
    )
    assert answer["ETag"] == multipart_etag(expected)
    assert read(s3, bucket, "assembled") == b"".join(expected)


@pytest.mark.shoal_only  # the mock server answers NoSuchUpload
@pytest.mark.parametrize("number", [0, 10001])
def test_part_numbers_outside_1_to_10000_are_refused(s3, bucket, number):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    try:
        with s3_error("InvalidArgument", 400):
            s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=number, Body=b"x")
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload)
