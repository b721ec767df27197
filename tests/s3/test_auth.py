"""Authentication: presigned URLs, refused credentials, and access keys
managed with `shoal s3 key`.

The S3 port is the one shoal interface meant to face other machines, so
every request must carry a valid SigV4 signature from a key the swarm
knows, and removing a key must lock it out promptly everywhere.
"""

import uuid

import pytest

from conftest import KEY_TIMEOUT, need_module, poll
from s3expect import ClientError, code_of, data, read, s3_error
from sigv4 import error_code

requests = need_module("requests")


def test_presigned_get(s3, bucket):
    body = data(70_000, 30)
    s3.put_object(Bucket=bucket, Key="shared file.bin", Body=body)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared file.bin"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url  # SigV4 query signing, not the legacy form
    answer = requests.get(url, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.content == body


def test_presigned_get_with_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain")
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": "k",
            "ResponseContentDisposition": 'attachment; filename="dl.txt"',
        },
        ExpiresIn=300,
    )
    answer = requests.get(url, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Disposition"] == 'attachment; filename="dl.txt"'


def test_presigned_put(s3, bucket):
    body = data(40_000, 31)
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300
    )
    answer = requests.put(url, data=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert read(s3, bucket, "uploaded") == body


@pytest.mark.shoal_only  # the mock server does not check signatures
def test_a_tampered_presigned_url_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    # Another key name under the same signature.
    answer = requests.get(url.replace("/k?", "/other?"), timeout=60)
    assert answer.status_code == 403
    assert error_code(answer.content) == "SignatureDoesNotMatch"


@pytest.mark.shoal_only
def test_an_expired_presigned_url_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1
    )

    def refused():
        # A list, because a refused `Response` is false in a boolean test.
        answer = requests.get(url, timeout=60)
        return [answer] if answer.status_code != 200 else None

    [answer] = poll("the presigned URL to expire", 10, refused, interval=0.5)
    assert answer.status_code == 403
    assert error_code(answer.content) == "AccessDenied"


@pytest.mark.shoal_only
def test_a_wrong_secret_is_refused(target, bucket):
    secret = target.secret_key
    client = target.client(secret_key=secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with s3_error("SignatureDoesNotMatch", 403):
        client.list_buckets()
    with s3_error("SignatureDoesNotMatch", 403):
        client.put_object(Bucket=bucket, Key="k", Body=b"x")


@pytest.mark.shoal_only
def test_an_unknown_key_is_refused(target, bucket):
    client = target.client(access_key="AKIANOSUCHKEY0000000", secret_key="not-a-secret")
    with s3_error("InvalidAccessKeyId", 403):
        client.list_buckets()
    with s3_error("InvalidAccessKeyId", 403):
        client.get_object(Bucket=bucket, Key="k")


@pytest.mark.shoal_only
def test_anonymous_requests_are_refused(target, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    anonymous = target.client(unsigned=True)
    with s3_error("AccessDenied", 403):
        anonymous.list_buckets()
    with s3_error("AccessDenied", 403):
        anonymous.get_object(Bucket=bucket, Key="k")
    with s3_error("AccessDenied", 403):
        anonymous.put_object(Bucket=bucket, Key="k2", Body=b"x")
    with s3_error("AccessDenied", 403):
        anonymous.list_objects_v2(Bucket=bucket)
    assert requests.get(f"{target.endpoints[0]}/{bucket}/k", timeout=60).status_code == 403


def key_works(client):
    """True if the key is accepted, False if refused as unknown; any other
    answer is an error worth seeing."""
    try:
        client.list_buckets()
        return True
    except ClientError as e:
        if code_of(e) == "InvalidAccessKeyId":
            return False
        raise


@pytest.mark.shoal_only
def test_a_removed_key_stops_working_everywhere(target, swarm):
    made = swarm.cli_json("s3", "key", "create", f"doomed-{uuid.uuid4().hex[:6]}", "--json")
    assert set(made) >= {"name", "access_key_id", "secret_access_key"}
    clients = [
        target.client(e, made["access_key_id"], made["secret_access_key"]) for e in target.endpoints
    ]
    for client in clients:
        poll("the new key to work", KEY_TIMEOUT, lambda c=client: key_works(c))
    assert made["access_key_id"] in swarm.cli("s3", "key", "ls", "--json").stdout.decode()

    swarm.cli("s3", "key", "rm", made["access_key_id"])
    for client in clients:
        poll("the removed key to be refused", KEY_TIMEOUT, lambda c=client: not key_works(c))
    assert made["access_key_id"] not in swarm.cli("s3", "key", "ls", "--json").stdout.decode()
    # The suite's own key is untouched.
    target.client().list_buckets()


@pytest.mark.shoal_only
def test_an_imported_key_works(target, swarm, bucket):
    """`s3 key import` takes a key made elsewhere (moving from another
    store without reconfiguring every client)."""
    key_id = "AKIA" + uuid.uuid4().hex[:16].upper()
    secret = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    swarm.cli("s3", "key", "import", key_id, secret, "--name", "imported")
    client = target.client(access_key=key_id, secret_key=secret)
    poll("the imported key to work", KEY_TIMEOUT, lambda: key_works(client))
    client.put_object(Bucket=bucket, Key="by-import", Body=b"imported")
    assert read(target.client(), bucket, "by-import") == b"imported"
    listed = swarm.cli("s3", "key", "ls", "--json").stdout.decode()
    assert key_id in listed
    swarm.cli("s3", "key", "rm", key_id)


@pytest.mark.shoal_only
def test_a_malformed_authorization_header_is_refused(target):
    answer = requests.get(
        target.endpoints[0] + "/",
        headers={"Authorization": "AWS4-HMAC-SHA256 this is not a signature"},
        timeout=60,
    )
    assert answer.status_code in (400, 403), answer.text
