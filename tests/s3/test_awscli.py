"""The AWS CLI (v1, from the venv) against the endpoint, as an operator
would script it: `aws s3 cp`, `sync`, `ls`, and some `aws s3api` calls.

aws-cli is the client most scripts use, and it drives the multipart path
on its own terms (8 MiB parts above 8 MiB, parallel part uploads, ranged
parallel downloads) and decides what to re-copy on `sync` from sizes and
LastModified, so each of those must be right.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import find_tool, need, unique_name
from s3expect import MIB, data, md5_etag, multipart_etag, split

TIMEOUT = 300


@pytest.fixture(scope="module")
def aws(target, tmp_path_factory):
    """Runs `aws ARGS --endpoint-url ...` with the suite's key, from the
    environment only (a private config file keeps the user's own out, and
    sets path-style addressing); returns the finished process."""
    program = find_tool("aws")
    need("the AWS CLI (aws)", program, "pip install -r tests/s3/requirements.txt")
    home = tmp_path_factory.mktemp("aws")
    config = home / "config"
    config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=target.access_key,
        AWS_SECRET_ACCESS_KEY=target.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        AWS_MAX_ATTEMPTS="2",
        AWS_PAGER="",
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)

    def run(*args, check=True):
        done = subprocess.run(
            [program, *map(str, args), "--endpoint-url", target.endpoints[0]],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if check:
            assert done.returncode == 0, (
                f"aws {' '.join(map(str, args))} exited with {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done

    return run


def make_tree(root, seed):
    """A small tree of files, nested, with mtimes an hour old: `aws s3
    sync` re-uploads a file whose local mtime is newer than the object's
    LastModified, and listings give LastModified in whole seconds."""
    files = {
        "top.txt": b"top level\n",
        "empty": b"",
        "a/one.bin": data(10_000, seed),
        "a/b/two.bin": data(200_000, seed + 1),
        "a/b/c/three with space.txt": b"three\n",
        "z/last.dat": data(1_000, seed + 2),
    }
    old = time.time() - 3600
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (old, old))
    return files


def read_tree(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_cp_a_large_file_both_ways(aws, s3, bucket, tmp_path):
    """20 MiB: aws-cli splits it into 8 MiB parts (8 + 8 + 4)."""
    content = data(20 * MIB + 1, 60)
    source = tmp_path / "big.bin"
    source.write_bytes(content)
    aws("s3", "cp", source, f"s3://{bucket}/large/big.bin")

    head = json.loads(
        aws("s3api", "head-object", "--bucket", bucket, "--key", "large/big.bin").stdout
    )
    assert head["ContentLength"] == len(content)
    assert head["ETag"] == multipart_etag(split(content, 8 * MIB))

    target = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{bucket}/large/big.bin", target)
    assert target.read_bytes() == content


def test_cp_a_small_file_keeps_the_md5_etag(aws, s3, bucket, tmp_path):
    source = tmp_path / "small.txt"
    source.write_bytes(b"small file\n")
    aws("s3", "cp", source, f"s3://{bucket}/small.txt", "--content-type", "text/plain")
    head = s3.head_object(Bucket=bucket, Key="small.txt")
    assert head["ETag"] == md5_etag(b"small file\n")
    assert head["ContentType"] == "text/plain"


def test_sync_both_ways(aws, s3, bucket, tmp_path):
    source = tmp_path / "src"
    files = make_tree(source, 61)
    aws("s3", "sync", source, f"s3://{bucket}/tree")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="tree/")["Contents"]]
    assert sorted(keys) == sorted(f"tree/{name}" for name in files)

    # Nothing changed, so a second sync copies nothing.
    again = aws("s3", "sync", source, f"s3://{bucket}/tree")
    assert again.stdout.strip() == "", again.stdout

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/tree", down)
    assert read_tree(down) == files

    # A changed file and a deleted one travel with --delete.
    (source / "a" / "one.bin").write_bytes(b"changed and shorter")
    (source / "z" / "last.dat").unlink()
    aws("s3", "sync", source, f"s3://{bucket}/tree", "--delete")
    aws("s3", "sync", f"s3://{bucket}/tree", down, "--delete")
    assert read_tree(down) == read_tree(source)


def test_ls(aws, s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/inner.txt", Body=b"12345")
    s3.put_object(Bucket=bucket, Key="top.txt", Body=b"1")
    assert bucket in aws("s3", "ls").stdout.split()
    listing = aws("s3", "ls", f"s3://{bucket}/").stdout
    assert "PRE dir/" in listing and "top.txt" in listing and "inner.txt" not in listing
    recursive = aws("s3", "ls", f"s3://{bucket}/", "--recursive").stdout
    assert "dir/inner.txt" in recursive and " 5 dir/inner.txt" in recursive


def test_mb_and_rb(aws, s3):
    name = unique_name("cli")
    aws("s3", "mb", f"s3://{name}")
    s3.head_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="x", Body=b"x")
    aws("s3", "rb", f"s3://{name}", "--force")  # empties it first
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3api_put_object_with_metadata_and_list(aws, bucket, tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(b'{"hello": "world"}')
    put = aws(
        "s3api", "put-object",
        "--bucket", bucket,
        "--key", "docs/hello.json",
        "--body", body,
        "--content-type", "application/json",
        "--metadata", "author=shoal,purpose=test",
        "--cache-control", "no-store",
    )
    assert json.loads(put.stdout)["ETag"] == md5_etag(body.read_bytes())
    head = json.loads(
        aws("s3api", "head-object", "--bucket", bucket, "--key", "docs/hello.json").stdout
    )
    assert head["Metadata"] == {"author": "shoal", "purpose": "test"}
    assert head["ContentType"] == "application/json"
    assert head["CacheControl"] == "no-store"

    listed = json.loads(
        aws(
            "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "docs/", "--no-paginate"
        ).stdout
    )
    assert [o["Key"] for o in listed["Contents"]] == ["docs/hello.json"]
    assert listed["KeyCount"] == 1

    missing = aws("s3api", "head-object", "--bucket", bucket, "--key", "nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
