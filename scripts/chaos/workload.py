"""The clients of a chaos run, and what they record.

Each client loops over random operations on a shared pool of names, each
through a random peer (up or not: a client does not know), through the
native HTTP API or S3. Every put writes fresh bytes that name themselves:
the first line says which name and which write (`vid`) they belong to, so
any read can be traced to the write that produced it, and a hash of the
whole body shows whether it is exactly that write's bytes.

Outcomes: `ok`; `fail` when the operation certainly did not happen (the
connection was refused, or the peer answered with a client error); `info`
when it may have happened (a timeout, a cut connection, a 5xx: a put whose
manifest reached some owners can still surface later).
"""

import hashlib
import http.client
import json
import random
import threading
import time
import urllib.parse

import blake3

BUCKET = "chaos"
# The chunk size the run's peers use (see run.py).
CHUNK_SIZE = 256 * 1024
REQUEST_TIMEOUT = 30

# Sizes of the values written: inside the manifest, one chunk, several
# chunks (the run uses 256 KiB chunks).
SIZES = [(0.55, 200, 6000), (0.3, 20_000, 200_000), (0.15, 300_000, 900_000)]


def value_bytes(name, vid, rng):
    weights, ranges = zip(*[(w, (lo, hi)) for w, lo, hi in SIZES])
    lo, hi = rng.choices(ranges, weights)[0]
    head = f"shoal-chaos {name} {vid}\n".encode()
    return head + rng.randbytes(rng.randint(lo, hi))


def identify(body):
    """The (name, vid) a body says it belongs to, or (None, None)."""
    line = body.split(b"\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"shoal-chaos":
        return None, None
    return parts[1].decode(errors="replace"), parts[2].decode(errors="replace")


def etag(body, whole):
    """The ETag S3 lists for these bytes: the MD5 of the whole body when S3
    wrote it (`whole`), else the MD5 of the one chunk or the multipart form
    over the chunks, as for any file written in chunks."""
    if whole or len(body) <= CHUNK_SIZE:
        return hashlib.md5(body).hexdigest()
    parts = [hashlib.md5(body[i:i + CHUNK_SIZE]).digest()
             for i in range(0, len(body), CHUNK_SIZE)]
    return f"{hashlib.md5(b''.join(parts)).hexdigest()}-{len(parts)}"


def sha(body):
    return hashlib.sha256(body).hexdigest()


class Http:
    """One request at a time over a fresh connection: (status, headers, body)
    or (error kind, None, None) where error kind is "refused" or "lost"."""

    @staticmethod
    def call(port, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        except ConnectionRefusedError:
            return "refused", None, None
        except (OSError, http.client.HTTPException):
            return "lost", None, None
        finally:
            conn.close()


def outcome_of(status, ok_codes):
    if status in ok_codes:
        return "ok"
    if status == "refused" or (isinstance(status, int) and 400 <= status < 500):
        return "fail"
    return "info"


class Client(threading.Thread):
    """One client: random operations until `stop` is set."""

    def __init__(self, number, interface, swarm, names, history, stop, seed, s3_key):
        super().__init__(daemon=True, name=f"client-{number}")
        self.number = number
        self.interface = interface
        self.swarm = swarm
        self.names = names
        self.history = history
        self.stop = stop
        self.rng = random.Random(seed)
        self.seq = 0
        self.s3_clients = {}
        self.s3_key = s3_key

    def run(self):
        while not self.stop.is_set():
            peer = self.rng.choice(self.swarm.peers)
            name = self.rng.choice(self.names)
            roll = self.rng.random()
            if roll < 0.40:
                self.put(peer, name)
            elif roll < 0.80:
                self.get(peer, name)
            elif roll < 0.92:
                self.delete(peer, name)
            else:
                self.list(peer)

    def record(self, op, peer, name, started, **fields):
        self.history.write(
            type="op", op=op, client=self.number, iface=self.interface, peer=peer.index,
            name=name, invoke=started, complete=self.history.now(), **fields,
        )

    # --- native API -------------------------------------------------------

    @staticmethod
    def file_path(name):
        return "/v1/file?name=" + urllib.parse.quote(name, safe="")

    def put(self, peer, name):
        self.seq += 1
        vid = f"c{self.number}-{self.seq}"
        body = value_bytes(name, vid, self.rng)
        fields = dict(vid=vid, sha=sha(body), blake3=blake3.blake3(body).hexdigest(),
                      etag=etag(body, self.interface == "s3"), size=len(body))
        started = self.history.now()
        if self.interface == "s3":
            outcome, version, error = self.s3_put(peer, name, body)
        else:
            status, headers, answer = Http.call(
                peer.api_port, "PUT", self.file_path(name), body,
                {"content-type": "application/octet-stream"},
            )
            outcome = outcome_of(status, (201,))
            version = headers.get("x-shoal-version") if outcome == "ok" else None
            error = None if outcome == "ok" else describe(status, answer)
        self.record("put", peer, name, started, outcome=outcome, version=version,
                    error=error, **fields)

    def get(self, peer, name):
        started = self.history.now()
        if self.interface == "s3":
            outcome, body, version, error = self.s3_get(peer, name)
        else:
            status, headers, body = Http.call(peer.api_port, "GET", self.file_path(name))
            if status == 404:
                outcome, body, error = "ok", None, None
            else:
                outcome = outcome_of(status, (200,))
                error = None if outcome == "ok" else describe(status, body)
            version = headers.get("x-shoal-version") if outcome == "ok" and body else None
        fields = dict(found=body is not None, version=version)
        if outcome == "ok" and body is not None:
            named, vid = identify(body)
            fields.update(vid=vid, sha=sha(body), named=named, size=len(body))
        self.record("get", peer, name, started, outcome=outcome if outcome == "ok" else "fail",
                    error=error, **fields)

    def delete(self, peer, name):
        started = self.history.now()
        if self.interface == "s3":
            outcome, version, error = self.s3_delete(peer, name)
        else:
            status, headers, answer = Http.call(peer.api_port, "DELETE", self.file_path(name))
            outcome = outcome_of(status, (204, 404))
            version = headers.get("x-shoal-version") if status == 204 else None
            error = None if outcome == "ok" else describe(status, answer)
        # Only a delete that found the file writes a deletion, and says its
        # version (S3 answers 204 either way).
        noop = outcome == "ok" and version is None
        self.record("delete", peer, name, started, outcome=outcome, version=version,
                    error=error, noop=noop)

    def list(self, peer):
        if self.interface == "s3":
            self.s3_list(peer)
            return
        started = self.history.now()
        entries, after, error = {}, "", None
        while True:
            query = urllib.parse.urlencode({"prefix": f"{BUCKET}/", "after": after})
            status, _, body = Http.call(peer.api_port, "GET", f"/v1/files?{query}")
            if status != 200:
                error = describe(status, body)
                break
            page = json.loads(body)
            for f in page["files"]:
                entries[f["name"]] = f["blake3"]
            if not page.get("next"):
                break
            after = page["next"]
        self.record("list", peer, None, started, outcome="ok" if error is None else "fail",
                    error=error, entries=entries if error is None else None, digest="blake3")

    # --- S3 ---------------------------------------------------------------

    def s3(self, peer):
        client = self.s3_clients.get(peer.index)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3", endpoint_url=peer.s3, region_name="us-east-1",
                aws_access_key_id=self.s3_key[0], aws_secret_access_key=self.s3_key[1],
                config=Config(retries={"max_attempts": 1, "mode": "standard"},
                              connect_timeout=5, read_timeout=REQUEST_TIMEOUT,
                              s3={"addressing_style": "path"}),
            )
            self.s3_clients[peer.index] = client
        return client

    @staticmethod
    def key(name):
        return name[len(BUCKET) + 1:]

    def s3_call(self, call):
        """(outcome, result, error) of one boto3 call."""
        from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError
        from botocore.exceptions import EndpointConnectionError

        try:
            return "ok", call(), None
        except ClientError as e:
            code = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            error = f"{code} {e.response.get('Error', {}).get('Code')}"
            return ("fail" if 400 <= code < 500 else "info"), e, error
        except EndpointConnectionError as e:
            return "fail", None, f"refused: {e}"
        except (BotoConnectionError, OSError) as e:
            return "info", None, f"lost: {type(e).__name__}"
        except Exception as e:  # noqa: BLE001 - any other client failure is unknown
            return "info", None, f"{type(e).__name__}: {e}"

    def s3_put(self, peer, name, body):
        outcome, answer, error = self.s3_call(
            lambda: self.s3(peer).put_object(Bucket=BUCKET, Key=self.key(name), Body=body))
        return outcome, version_in(answer) if outcome == "ok" else None, error

    def s3_get(self, peer, name):
        """(outcome, body or None, version, error)."""
        client = self.s3(peer)

        def read():
            answer = client.get_object(Bucket=BUCKET, Key=self.key(name))
            return answer["Body"].read(), version_in(answer)

        outcome, result, error = self.s3_call(read)
        if outcome == "fail" and error and error.startswith("404"):
            return "ok", None, None, None
        if outcome != "ok":
            return outcome, None, None, error
        return "ok", result[0], result[1], None

    def s3_delete(self, peer, name):
        outcome, answer, error = self.s3_call(
            lambda: self.s3(peer).delete_object(Bucket=BUCKET, Key=self.key(name)))
        return outcome, version_in(answer) if outcome == "ok" else None, error

    def s3_list(self, peer):
        """ListObjectsV2 of the whole bucket, recorded with each key's ETag."""
        started = self.history.now()
        client = self.s3(peer)

        def walk():
            entries, token = {}, None
            while True:
                args = {"Bucket": BUCKET}
                if token:
                    args["ContinuationToken"] = token
                page = client.list_objects_v2(**args)
                for item in page.get("Contents", []):
                    entries[f"{BUCKET}/{item['Key']}"] = item["ETag"].strip('"')
                if not page.get("IsTruncated"):
                    return entries
                token = page["NextContinuationToken"]

        outcome, entries, error = self.s3_call(walk)
        ok = outcome == "ok"
        self.record("list", peer, None, started, outcome="ok" if ok else "fail",
                    error=error, entries=entries if ok else None, digest="etag")


def version_in(answer):
    """The x-shoal-version header of a boto3 answer, if any."""
    if not isinstance(answer, dict):
        return None
    return answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-shoal-version")


def describe(status, body):
    text = (body or b"")[:200].decode(errors="replace").strip()
    return f"{status} {text}".strip()
