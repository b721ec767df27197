"""One namespace: S3 and shoal's own CLI see the same files, and every
peer's S3 endpoint sees the same buckets.

Object KEY in bucket B is the shoal file `B/KEY`. That is what lets a user
move data in with `shoal put` and serve it over S3 (or the reverse), so it
is checked in both directions, including deletes.
"""

import json
import socket
from urllib.parse import urlsplit

import pytest

from conftest import S3_DOMAIN, need_module, unique_name
from s3expect import MIB, data, md5_etag, read, s3_error

boto3 = need_module("boto3")
Config = need_module("botocore.config").Config
TransferConfig = need_module("boto3.s3.transfer").TransferConfig

pytestmark = pytest.mark.shoal_only


def cli_names(swarm, prefix):
    listing = json.loads(swarm.cli("ls", prefix, "--json").stdout)
    return [entry["name"] for entry in listing]


def test_an_s3_object_is_a_shoal_file(s3, swarm, bucket, tmp_path):
    body = data(3 * MIB + 5, 40)
    s3.put_object(Bucket=bucket, Key="dir/from-s3.bin", Body=body)
    out = tmp_path / "got.bin"
    swarm.cli("get", f"{bucket}/dir/from-s3.bin", "-o", out)
    assert out.read_bytes() == body
    assert f"{bucket}/dir/from-s3.bin" in cli_names(swarm, f"{bucket}/")


def test_a_shoal_file_is_an_s3_object(s3, swarm, bucket, tmp_path):
    body = data(2 * MIB + 3, 41)
    source = tmp_path / "put.bin"
    source.write_bytes(body)
    swarm.cli("put", source, "--name", f"{bucket}/nested/from-cli.bin")
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("nested/from-cli.bin", len(body))]
    assert read(s3, bucket, "nested/from-cli.bin") == body
    head = s3.head_object(Bucket=bucket, Key="nested/from-cli.bin")
    assert head["ContentLength"] == len(body)
    folded = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in folded["CommonPrefixes"]] == ["nested/"]


def test_deletes_are_seen_both_ways(s3, swarm, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    swarm.cli("rm", f"{bucket}/a")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="a")

    source = tmp_path / "b"
    source.write_bytes(b"b")
    swarm.cli("put", source, "--name", f"{bucket}/b")
    s3.delete_object(Bucket=bucket, Key="b")
    assert f"{bucket}/b" not in cli_names(swarm, f"{bucket}/")
    assert swarm.cli("get", f"{bucket}/b", "-o", tmp_path / "gone", check=False).returncode != 0


def test_every_endpoint_sees_the_same_objects(target, bucket):
    """Written through one peer, read and listed through each: the S3
    layer keeps no per-peer state that could disagree."""
    clients = [target.client(e) for e in target.endpoints]
    assert len(clients) >= 3
    for i, client in enumerate(clients):
        client.put_object(Bucket=bucket, Key=f"via-{i}", Body=f"written via {i}".encode())
    for client in clients:
        client.head_bucket(Bucket=bucket)
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == [f"via-{i}" for i in range(len(clients))]
        for i in range(len(clients)):
            answer = client.get_object(Bucket=bucket, Key=f"via-{i}")
            assert answer["Body"].read() == f"written via {i}".encode()
            assert answer["ETag"] == md5_etag(f"written via {i}".encode())


def test_buckets_made_through_one_peer_exist_at_all(target):
    first, *others = [target.client(e) for e in target.endpoints]
    name = unique_name("shared")
    first.create_bucket(Bucket=name)
    try:
        for client in others:
            client.head_bucket(Bucket=name)
            assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        others[-1].delete_bucket(Bucket=name)
    for client in [first, *others]:
        with s3_error("404", 404):
            client.head_bucket(Bucket=name)


def test_a_multipart_object_reads_back_through_the_cli(s3, swarm, bucket, tmp_path):
    """A completed upload is a manifest over its parts' chunks, with no
    whole-content hash: the CLI still checks every chunk."""
    body = data(11 * MIB + 7, 42)
    source = tmp_path / "parts.bin"
    source.write_bytes(body)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), bucket, "parts.bin", Config=config)
    assert s3.head_object(Bucket=bucket, Key="parts.bin")["ETag"].endswith('-3"')
    out = tmp_path / "got.bin"
    swarm.cli("get", f"{bucket}/parts.bin", "-o", out)
    assert out.read_bytes() == body


def test_multipart_objects_resume_through_put_r_and_get_r(s3, swarm, bucket, tmp_path):
    """Objects from multipart uploads list a digest of their chunks, not of
    their content: `get -r` checks them against their manifests (one part
    or several), and a second `get -r`, or a `put -r` of what it wrote,
    finds their content unchanged by comparing chunk by chunk. (That
    `put -r` records the files' times, which boto3 did not send, without
    sending their content.)"""
    big = data(11 * MIB + 7, 43)
    small = data(300_000, 44)
    (tmp_path / "big.bin").write_bytes(big)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(tmp_path / "big.bin"), bucket, "tree/big.bin", Config=config)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="tree/one.bin")
    part = s3.upload_part(
        Bucket=bucket, Key="tree/one.bin", UploadId=upload["UploadId"], PartNumber=1, Body=small
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="tree/one.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    out = tmp_path / "out"
    got = swarm.cli_json("get", "-r", f"{bucket}/tree", "-o", out, "--json")
    assert (got["fetched"], got["unchanged"], got["failed"]) == (2, 0, 0)
    assert (out / "big.bin").read_bytes() == big
    assert (out / "one.bin").read_bytes() == small
    again = swarm.cli_json("get", "-r", f"{bucket}/tree", "-o", out, "--json")
    assert (again["fetched"], again["unchanged"]) == (0, 2)
    put = swarm.cli_json("put", "-r", out, "--name", f"{bucket}/tree", "--json")
    assert (put["stored"], put["bytes"], put["failed"]) == (2, 0, 0)
    again = swarm.cli_json("put", "-r", out, "--name", f"{bucket}/tree", "--json")
    assert (again["stored"], again["unchanged"], again["failed"]) == (0, 2, 0)
    head = s3.head_object(Bucket=bucket, Key="tree/big.bin")
    assert head["ETag"].endswith('-3"'), "the multipart ETag stays"
    assert "mtime" in head["Metadata"]


def test_virtual_hosted_style_names_the_bucket_in_the_host(target, bucket, monkeypatch):
    """With --s3-domain, `bucket.DOMAIN` addresses the bucket, while
    requests to the peer's IP address stay path style."""
    port = urlsplit(target.endpoints[0]).port
    real = socket.getaddrinfo

    def loopback(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith("." + S3_DOMAIN):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback)
    virtual = boto3.client(
        "s3",
        endpoint_url=f"http://{S3_DOMAIN}:{port}",
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        config=Config(
            region_name="us-east-1",
            signature_version="s3v4",
            s3={"addressing_style": "virtual"},
            retries={"mode": "standard", "total_max_attempts": 2},
        ),
    )
    virtual.put_object(Bucket=bucket, Key="vhost/key.txt", Body=b"virtual")
    path = target.client()
    assert path.get_object(Bucket=bucket, Key="vhost/key.txt")["Body"].read() == b"virtual"
    listed = virtual.list_objects_v2(Bucket=bucket, Prefix="vhost/")["Contents"]
    assert [o["Key"] for o in listed] == ["vhost/key.txt"]
