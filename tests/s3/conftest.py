"""Fixtures for the S3 client tests: a real three-peer shoal swarm.

The suite checks shoal's S3 endpoint the way users meet it, through real
clients (boto3, the AWS CLI, rclone) and hand-signed requests, against real
`shoal node` processes on loopback. One swarm serves the whole session:
starting peers and waiting for them to agree on membership costs seconds,
and every test makes its own bucket, so they do not see each other's data.

Environment:
  SHOAL_BIN            the shoal binary under test (required, unless
                       SHOAL_TEST_AGAINST is set).
  SHOAL_TEST_AGAINST   the URL of another S3 endpoint (a mock server, say)
                       to run the client tests against instead, to check the
                       tests themselves; tests marked `shoal_only` skip.
  SHOAL_TEST_ACCESS_KEY, SHOAL_TEST_SECRET_KEY
                       the key for that endpoint (default `testing`).
  CI                   when set, a client that cannot be found fails its
                       tests instead of skipping them: CI must not pass by
                       testing nothing.

Peers are started the way tests/common/mod.rs starts them: every address
is `127.0.0.1:0` and the real ones are read from the readiness line, and
every wait polls against a deadline. Logs stay in pytest's temporary
directory; a failing test shows the tail of each.
"""

import importlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

try:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:  # the test modules report it, through need_module
    boto3 = None

PEERS = 3
# The domain virtual-hosted-style requests use; tests resolve its
# subdomains to loopback themselves.
S3_DOMAIN = "s3.shoal.test"
# Generous bounds for a debug build on a small, busy machine: a wait that
# takes longer is a failure worth seeing.
START_TIMEOUT = 60
MEMBERS_TIMEOUT = 60
KEY_TIMEOUT = 30
CLI_TIMEOUT = 120
LOG_TAIL_LINES = 40

READY = re.compile(r"shoal peer (\S+) serving the API on (http://\S+) and S3 on (http://\S+)")

AGAINST = os.environ.get("SHOAL_TEST_AGAINST", "").strip()

# The running swarm, for the failure hook to print its logs.
_SWARM = None


def need(what, found, hint=""):
    """Skips the test when a client is missing, or fails it in CI, where a
    silently skipped client would let a broken endpoint through."""
    if found:
        return
    message = f"{what} is not available{': ' + hint if hint else ''}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this fails rather than skips)")
    pytest.skip(message)


def need_module(name):
    """Imports a client library for a test module, or skips the module
    (fails it in CI) when the library is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        message = f"{e}: pip install -r tests/s3/requirements.txt"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so this fails rather than skips)", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def find_tool(name):
    """A client program: the one installed beside this Python (the venv's
    bin/) first, then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def unique_name(prefix):
    """A bucket name no other test uses: lowercase, within 63 characters."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def poll(what, timeout, check, interval=0.1):
    """Calls `check` until it returns a true value and returns that value;
    fails with `what` once `timeout` seconds pass. The last exception
    `check` raised, if any, is part of the failure."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - kept for the message
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def tail(path, lines=LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Peer:
    """One `shoal node` process and the addresses it announced."""

    def __init__(self, index, binary, root, secret, join=None, extra=()):
        self.index = index
        self.data = root / f"peer{index}"
        self.log = root / f"peer{index}.log"
        self.out = root / f"peer{index}.out"
        command = [
            binary, "node",
            "--data", str(self.data),
            "--api", "127.0.0.1:0",
            "--s3", "127.0.0.1:0",
            # Virtual-hosted style is on, so the tests can check that both
            # styles work at once (see test_namespace.py).
            "--s3-domain", S3_DOMAIN,
            "--listen", "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--secret-file", str(secret),
        ]
        if join:
            command += ["--join", join]
        command += list(extra)
        env = dict(os.environ, SHOAL_LOG="info,shoal=debug")
        env.pop("SHOAL_SECRET", None)  # giving both the file and this is an error
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        self.lines = queue.Queue()
        # Drains stdout for the peer's whole life, so it can never block on
        # a full pipe, and keeps a copy beside the log.
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self.peer_id, self.api, self.s3 = self._await_ready()
        except BaseException:
            self.kill()
            raise

    def _drain(self):
        with open(self.out, "ab") as copy:
            for line in self.proc.stdout:
                copy.write(line)
                copy.flush()
                self.lines.put(line.decode(errors="replace"))

    def _await_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"peer {self.index} exited with {self.proc.returncode} before it was "
                        f"ready\n--- {self.log} ---\n{tail(self.log)}"
                    ) from None
                continue
            found = READY.search(line)
            if found:
                return found.group(1), found.group(2), found.group(3)
            if "serving the API on" in line:
                raise RuntimeError(f"peer {self.index} announced no S3 endpoint: {line.strip()!r}")
        raise RuntimeError(
            f"peer {self.index} did not announce readiness within {START_TIMEOUT}s\n"
            f"--- {self.log} ---\n{tail(self.log)}"
        )

    @property
    def running(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash or a pulled plug would end it; then reap it."""
        if self.running:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM and wait for the orderly shutdown, SIGKILL if it hangs."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Swarm:
    """Three peers, the second and third joined through the first."""

    def __init__(self, binary, root):
        self.binary = binary
        self.root = root
        self.peers = []
        secret = root / "cluster.key"
        self.run([binary, "keygen", "-o", str(secret)])
        try:
            self.peers.append(Peer(0, binary, root, secret))
            join = self.status(self.peers[0])["listen"][0]
            for i in range(1, PEERS):
                self.peers.append(Peer(i, binary, root, secret, join=join))
            poll("every peer to list all three alive", MEMBERS_TIMEOUT, self.all_alive, 0.2)
        except BaseException as e:
            self.stop()
            raise RuntimeError(f"{e}\n{self.log_tails()}") from e

    def run(self, command, api=None, check=True):
        env = dict(os.environ)
        env.pop("SHOAL_LOG", None)
        if api:
            env["SHOAL_API"] = api
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLI_TIMEOUT
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, command))} exited with {done.returncode}\n"
                f"stdout: {done.stdout.decode(errors='replace')}\n"
                f"stderr: {done.stderr.decode(errors='replace')}"
            )
        return done

    def cli(self, *args, peer=0, check=True):
        """Runs `shoal ARGS` against a peer's API (by SHOAL_API, as the Rust
        harness does); returns the finished process."""
        return self.run([self.binary, *map(str, args)], api=self.peers[peer].api, check=check)

    def cli_json(self, *args, peer=0):
        return json.loads(self.cli(*args, peer=peer).stdout)

    def status(self, peer):
        return json.loads(self.run([self.binary, "status", "--json"], api=peer.api).stdout)

    def all_alive(self):
        live = self.live()
        ids = {p.peer_id for p in live}
        for peer in live:
            members = self.status(peer)["members"]
            seen = {m["peer_id"] for m in members if m["state"] == "alive"}
            if len(members) != len(self.peers) or not ids <= seen:
                return False
        return True

    def live(self):
        return [p for p in self.peers if p.running]

    def s3_endpoints(self):
        """The S3 endpoints of the peers still running, the first peer's first."""
        return [p.s3 for p in self.live()]

    def kill_last(self):
        """SIGKILLs the last peer (never the first, whose API `cli` talks
        to) and returns it."""
        victim = self.peers[-1]
        victim.kill()
        return victim

    def stop(self):
        for peer in self.peers:
            peer.stop()

    def log_tails(self):
        return "\n".join(
            f"--- {p.log} (last {LOG_TAIL_LINES} lines) ---\n{tail(p.log)}" for p in self.peers
        )


class Target:
    """Where the clients point: endpoints and the key they sign with."""

    def __init__(self, endpoints, access_key, secret_key, swarm=None):
        self.endpoints = endpoints
        self.access_key = access_key
        self.secret_key = secret_key
        self.swarm = swarm

    def client(self, endpoint=None, access_key=None, secret_key=None, unsigned=False, **config):
        """A boto3 S3 client as a user would configure one for a
        self-hosted store: path style, us-east-1, SigV4, few retries (a
        retry could hide a server error)."""
        need("boto3", boto3 is not None, "pip install -r tests/s3/requirements.txt")
        settings = dict(
            region_name="us-east-1",
            signature_version=UNSIGNED if unsigned else "s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=10,
            read_timeout=120,
        )
        settings.update(config)
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoints[0],
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(**settings),
        )


def pytest_configure(config):
    if not AGAINST and not os.environ.get("SHOAL_BIN"):
        raise pytest.UsageError(
            "set SHOAL_BIN to the shoal binary to test (cargo test sets it), or "
            "SHOAL_TEST_AGAINST to another S3 endpoint's URL"
        )


def pytest_collection_modifyitems(config, items):
    """Skips the shoal-only tests against another endpoint, and moves the
    tests that kill a peer after all others: the swarm is shared."""
    if AGAINST:
        skip = pytest.mark.skip(reason=f"needs a shoal swarm (SHOAL_TEST_AGAINST={AGAINST})")
        for item in items:
            if item.get_closest_marker("shoal_only"):
                item.add_marker(skip)
    items.sort(key=lambda item: item.get_closest_marker("peer_kill") is not None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _SWARM is not None:
        report.sections.append(("shoal peer logs", _SWARM.log_tails()))
    return report


@pytest.fixture(scope="session")
def target(tmp_path_factory):
    """The S3 endpoints under test and a working key: a fresh three-peer
    swarm with a key made by `shoal s3 key create`, or SHOAL_TEST_AGAINST."""
    global _SWARM
    if AGAINST:
        yield Target(
            [AGAINST],
            os.environ.get("SHOAL_TEST_ACCESS_KEY", "testing"),
            os.environ.get("SHOAL_TEST_SECRET_KEY", "testing"),
        )
        return
    binary = os.environ["SHOAL_BIN"]
    swarm = Swarm(binary, tmp_path_factory.mktemp("swarm"))
    _SWARM = swarm
    try:
        key = swarm.cli_json("s3", "key", "create", "suite", "--json")
        found = Target(swarm.s3_endpoints(), key["access_key_id"], key["secret_access_key"], swarm)
        # The key was made through the first peer; wait until every peer
        # takes it, however keys travel between them.
        for endpoint in found.endpoints:
            client = found.client(endpoint)
            poll(f"the new key to work at {endpoint}", KEY_TIMEOUT, client.list_buckets)
        yield found
    finally:
        swarm.stop()  # its logs stay readable for the failure hook


@pytest.fixture(scope="session")
def swarm(target):
    """The shoal swarm itself (CLI, peers); skips against another endpoint."""
    if target.swarm is None:
        pytest.skip("needs a shoal swarm")
    return target.swarm


@pytest.fixture(scope="session")
def s3(target):
    """A boto3 client on the first endpoint."""
    return target.client()


@pytest.fixture
def bucket(target, s3):
    """A new, empty bucket, emptied and removed after the test (through the
    first peer, which the fault tests never kill)."""
    name = unique_name("t")
    s3.create_bucket(Bucket=name)
    yield name
    try:
        empty_bucket(s3, name)
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass  # a test may have removed it; cleanup is best effort


def empty_bucket(client, name):
    """Deletes every object and aborts every upload in a bucket."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
