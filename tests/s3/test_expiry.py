"""Abandoned multipart uploads expire: an upload left open longer than
`--s3-upload-expiry` is aborted by the peer that owns its record, and its
parts are freed, with no client action.

This needs a peer started with a short expiry, so it runs its own
one-peer swarm (one copy) beside the shared one.
"""

import json
import os
import subprocess

import pytest

from conftest import Peer, Target, poll, unique_name
from s3expect import MIB, data, s3_error

pytestmark = pytest.mark.shoal_only

EXPIRY = "3s"


@pytest.fixture
def lone_peer(tmp_path, target):
    if target.swarm is None:
        pytest.skip("needs a shoal swarm")
    binary = os.environ["SHOAL_BIN"]
    secret = tmp_path / "cluster.key"
    subprocess.run([binary, "keygen", "-o", str(secret)], check=True, capture_output=True)
    flags = ["--replicas", "1", "--write-quorum", "1", "--read-quorum", "1",
             "--s3-upload-expiry", EXPIRY]
    peer = Peer(0, binary, tmp_path, secret, extra=flags)
    try:
        env = dict(os.environ, SHOAL_API=peer.api)
        env.pop("SHOAL_LOG", None)
        made = subprocess.run([binary, "s3", "key", "create", "expiry", "--json"], env=env,
                              check=True, capture_output=True)
        key = json.loads(made.stdout)
        yield Target([peer.s3], key["access_key_id"], key["secret_access_key"])
    finally:
        peer.stop()


def test_an_abandoned_upload_is_aborted_and_its_parts_freed(lone_peer):
    s3 = lone_peer.client()
    bucket = unique_name("expiry")
    s3.create_bucket(Bucket=bucket)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="left-open")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="left-open", UploadId=upload, PartNumber=1,
                   Body=data(MIB, 70))

    def gone():
        return not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

    poll("the abandoned upload to expire", 60, gone, interval=0.5)
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="left-open", UploadId=upload)
