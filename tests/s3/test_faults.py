"""A peer dies: the other peers' S3 endpoints go on serving.

With three copies of everything and quorums of two, losing one peer of
three must not cost a client a request. The peer is SIGKILLed (no
orderly shutdown, as in a crash), and the session's swarm stays that way,
so these tests run after all others (the `peer_kill` marker; see
conftest.py).
"""

import pytest

from conftest import need_module
from s3expect import MIB, data, md5_etag, multipart_etag, read, split

TransferConfig = need_module("boto3.s3.transfer").TransferConfig

pytestmark = [pytest.mark.shoal_only, pytest.mark.peer_kill]


def test_endpoints_keep_serving_after_a_peer_is_killed(target, swarm, s3, bucket, tmp_path):
    before = {
        "before/small": data(1_000, 80),
        "before/chunks": data(3 * MIB + 7, 81),  # several chunks
    }
    for key, body in before.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    victim = swarm.kill_last()
    assert not victim.running
    live = swarm.s3_endpoints()
    assert len(live) == 2 and victim.s3 not in live

    written = dict(before)
    part = 5 * MIB
    for i, endpoint in enumerate(live):
        client = target.client(endpoint)
        # Reads of what was there before.
        for key, body in before.items():
            got = client.get_object(Bucket=bucket, Key=key)
            assert got["Body"].read() == body, key
            assert got["ETag"] == md5_etag(body)
        # New single-part and multipart writes, read back at once.
        small = data(5_000 + i, 82 + i)
        put = client.put_object(Bucket=bucket, Key=f"after/{i}/small", Body=small)
        assert put["ETag"] == md5_etag(small)
        big = data(11 * MIB + i, 84 + i)
        source = tmp_path / f"big-{i}"
        source.write_bytes(big)
        config = TransferConfig(multipart_threshold=part, multipart_chunksize=part)
        client.upload_file(str(source), bucket, f"after/{i}/big", Config=config)
        assert client.head_object(Bucket=bucket, Key=f"after/{i}/big")["ETag"] == multipart_etag(
            split(big, part)
        )
        assert read(client, bucket, f"after/{i}/small") == small
        assert read(client, bucket, f"after/{i}/big") == big
        written.update({f"after/{i}/small": small, f"after/{i}/big": big})

    # Every surviving endpoint lists and reads everything, whichever peer
    # took the write.
    for endpoint in live:
        client = target.client(endpoint)
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        ]
        assert keys == sorted(written)
        for key, body in written.items():
            assert read(client, bucket, key) == body, (endpoint, key)

    # Deletes work too, and the bucket can be removed once empty.
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in written]})
    assert "Contents" not in target.client(live[-1]).list_objects_v2(Bucket=bucket)
