"""The S3 benchmark behind scripts/bench-s3.sh (see there for what it
measures). Starts its own swarm in a temporary directory and stops every
peer it started."""

import http.server
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

READY = re.compile(r"serving the API on (http://\S+) and S3 on (http://\S+)")
MIB = 1024 * 1024


class Peer:
    def __init__(self, shoal, root, index, secret, join=None):
        self.data = os.path.join(root, f"peer{index}")
        args = [shoal, "node", "--data", self.data, "--api", "127.0.0.1:0",
                "--s3", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
                "--no-mdns", "--secret-file", secret]
        if join:
            args += ["--join", join]
        self.log = open(os.path.join(root, f"peer{index}.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            match = READY.search(line)
            if match:
                self.api, self.s3 = match.groups()
                break
            if time.monotonic() > deadline:
                raise SystemExit("a peer did not start")
        else:
            raise SystemExit(f"a peer exited; see {self.log.name}")
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cli(shoal, api, *args):
    out = subprocess.run([shoal, *args, "--api", api], check=True, capture_output=True, text=True)
    return out.stdout


def wait_members(shoal, peers):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        views = [json.loads(cli(shoal, p.api, "status", "--json"))["members"] for p in peers]
        if all(sum(m["state"] == "alive" for m in v) == len(peers) for v in views):
            return
        time.sleep(0.2)
    raise SystemExit("the peers did not all see each other")


def timed(action):
    start = time.monotonic()
    action()
    return time.monotonic() - start


class Sink:
    """A file-like object that keeps only the count of bytes written (the
    transfer manager writes ranges at their offsets)."""

    def __init__(self):
        self.size = 0
        self.position = 0

    def seek(self, offset, whence=0):
        self.position = offset

    def tell(self):
        return self.position

    def write(self, data):
        self.position += len(data)
        self.size = max(self.size, self.position)
        return len(data)


class Trivial(http.server.BaseHTTPRequestHandler):
    """Answers S3 requests at once, as cheaply as HTTP allows, storing
    nothing: PUTs (whole objects and parts) are read and acknowledged,
    multipart uploads are created and completed, and GETs of any object
    send `SIZE` zero bytes (ranges too). What boto3 reaches against it is
    what the client itself allows on this machine."""

    protocol_version = "HTTP/1.1"
    SIZE = 0
    ZEROS = bytes(8 * MIB)

    def _answer(self, status=200, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        remaining = int(self.headers.get("Content-Length", 0))
        while remaining:
            remaining -= len(self.rfile.read(min(remaining, MIB)))
        self._answer(headers=[("ETag", '"d41d8cd98f00b204e9800998ecf8427e"')])

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if "uploads" in self.path:
            body = b"<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>"
        else:
            body = b'<CompleteMultipartUploadResult><ETag>"x-1"</ETag></CompleteMultipartUploadResult>'
        self._answer(body=body)

    def _range(self):
        first, last = 0, self.SIZE - 1
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            first = int(match.group(1))
            last = min(int(match.group(2) or last), last)
        return first, last, bool(match)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self.SIZE))
        self.send_header("ETag", '"x-1"')
        self.end_headers()

    def do_GET(self):
        first, last, ranged = self._range()
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("ETag", '"x-1"')
        if ranged:
            self.send_header("Content-Range", f"bytes {first}-{last}/{self.SIZE}")
        self.end_headers()
        remaining = last - first + 1
        while remaining:
            piece = self.ZEROS[: min(remaining, len(self.ZEROS))]
            self.wfile.write(piece)
            remaining -= len(piece)

    def log_message(self, *args):
        pass


def small_puts(client, bucket, count):
    body = os.urandom(4096)
    latencies = []
    for i in range(count):
        start = time.monotonic()
        client.put_object(Bucket=bucket, Key=f"small/{i}", Body=body)
        latencies.append(time.monotonic() - start)
    total = sum(latencies)
    latencies.sort()
    return {
        "per_s": count / total,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def client_for(endpoint, key, secret):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(region_name="us-east-1", s3={"addressing_style": "path"},
                      retries={"mode": "standard", "total_max_attempts": 3},
                      tcp_keepalive=True, read_timeout=600),
    )


def main():
    shoal = sys.argv[1]
    size_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    small = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    root = tempfile.mkdtemp(prefix="shoal-s3-bench-")
    secret = os.path.join(root, "secret")
    subprocess.run([shoal, "keygen", "-o", secret], check=True)
    peers = []
    try:
        peers.append(Peer(shoal, root, 0, secret))
        join = json.loads(cli(shoal, peers[0].api, "status", "--json"))["listen"][0]
        peers += [Peer(shoal, root, i, secret, join) for i in (1, 2)]
        wait_members(shoal, peers)
        key = json.loads(cli(shoal, peers[0].api, "s3", "key", "create", "bench", "--json"))
        s3 = client_for(peers[0].s3, key["access_key_id"], key["secret_access_key"])
        s3.create_bucket(Bucket="bench")

        # Each upload sends bytes of its own: identical content would be
        # deduplicated to claims on chunks already stored.
        sources = {}
        for name in ("native", "boto3", "curl"):
            sources[name] = os.path.join(root, f"source-{name}")
            with open(sources[name], "wb") as out:
                for _ in range(size_mib):
                    out.write(os.urandom(MIB))
        size = size_mib * MIB
        mb = size / 1e6
        figures = {"size_mib": size_mib}

        url = f"{peers[0].api}/v1/files/bench/native"
        put_native = timed(lambda: subprocess.run(
            ["curl", "-sf", "-T", sources["native"], url, "-o", "/dev/null"], check=True))
        figures["native_put_mb_s"] = mb / put_native
        figures["rss_after_native_put_mib"] = peers[0].peak_rss_mib()

        transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB,
                                  max_concurrency=10)
        put_s3 = timed(lambda: s3.upload_file(sources["boto3"], "bench", "s3-object",
                                              Config=transfer))
        figures["s3_put_mb_s"] = mb / put_s3
        figures["rss_after_s3_put_mib"] = peers[0].peak_rss_mib()
        figures["put_ratio"] = figures["s3_put_mb_s"] / figures["native_put_mb_s"]

        # The same transfers as curl makes them to the native API: one
        # stream each way, through presigned URLs, so the client's own cost
        # is the same on both sides.
        put_url = s3.generate_presigned_url(
            "put_object", Params={"Bucket": "bench", "Key": "curl-object"}, ExpiresIn=3600)
        put_curl = timed(lambda: subprocess.run(
            ["curl", "-sf", "-T", sources["curl"], put_url, "-o", "/dev/null"], check=True))
        figures["s3_curl_put_mb_s"] = mb / put_curl
        figures["curl_put_ratio"] = figures["s3_curl_put_mb_s"] / figures["native_put_mb_s"]

        # Reads go to a sink, not a file, so the disk's write-back does not
        # blur them; each is run three times, interleaved, and the median
        # kept.
        get_url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "bench", "Key": "s3-object"}, ExpiresIn=3600)
        reads = {"native": [], "boto3": [], "curl": []}
        for _ in range(3):
            reads["native"].append(timed(lambda: subprocess.run(
                ["curl", "-sf", url, "-o", "/dev/null"], check=True)))
            sink = Sink()
            reads["boto3"].append(timed(lambda: s3.download_fileobj(
                "bench", "s3-object", sink, Config=transfer)))
            if sink.size != size:
                raise SystemExit("the S3 download has the wrong size")
            reads["curl"].append(timed(lambda: subprocess.run(
                ["curl", "-sf", get_url, "-o", "/dev/null"], check=True)))
        figures["native_get_mb_s"] = mb / statistics.median(reads["native"])
        figures["s3_get_mb_s"] = mb / statistics.median(reads["boto3"])
        figures["s3_curl_get_mb_s"] = mb / statistics.median(reads["curl"])
        figures["get_ratio"] = figures["s3_get_mb_s"] / figures["native_get_mb_s"]
        figures["curl_get_ratio"] = figures["s3_curl_get_mb_s"] / figures["native_get_mb_s"]

        figures["small_shoal"] = small_puts(s3, "bench", small)
        Trivial.SIZE = size
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trivial)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        trivial = client_for(f"http://127.0.0.1:{server.server_address[1]}", "k", "s")
        figures["small_trivial"] = small_puts(trivial, "bench", small)
        figures["trivial_put_mb_s"] = mb / timed(lambda: trivial.upload_file(
            sources["boto3"], "bench", "big", Config=transfer))
        sink = Sink()
        figures["trivial_get_mb_s"] = mb / timed(lambda: trivial.download_fileobj(
            "bench", "big", sink, Config=transfer))
        server.shutdown()

        print(f"{size_mib} MiB object, 3 peers, 3 copies:")
        print(f"  native PUT (curl)   {figures['native_put_mb_s']:7.1f} MB/s")
        print(f"  S3 PUT (boto3)      {figures['s3_put_mb_s']:7.1f} MB/s   ratio {figures['put_ratio']:.2f}")
        print(f"  native GET (curl)   {figures['native_get_mb_s']:7.1f} MB/s")
        print(f"  S3 GET (boto3)      {figures['s3_get_mb_s']:7.1f} MB/s   ratio {figures['get_ratio']:.2f}")
        print(f"  S3 PUT (curl, presigned) {figures['s3_curl_put_mb_s']:7.1f} MB/s   ratio {figures['curl_put_ratio']:.2f}")
        print(f"  S3 GET (curl, presigned) {figures['s3_curl_get_mb_s']:7.1f} MB/s   ratio {figures['curl_get_ratio']:.2f}")
        print(f"  boto3 against a trivial endpoint: PUT {figures['trivial_put_mb_s']:.1f} MB/s, "
              f"GET {figures['trivial_get_mb_s']:.1f} MB/s (the client's own limit)")
        print(f"  coordinator peak RSS: {figures['rss_after_native_put_mib']:.0f} MiB after the native put, "
              f"{figures['rss_after_s3_put_mib']:.0f} MiB after the S3 put")
        for name in ("small_shoal", "small_trivial"):
            f = figures[name]
            print(f"{small} x 4 KiB PutObject, one client, {name[6:]}: {f['per_s']:.0f}/s, "
                  f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms")
        print(json.dumps(figures))
    finally:
        for peer in peers:
            peer.stop()
        if not os.environ.get("SHOAL_BENCH_KEEP"):
            subprocess.run(["rm", "-rf", root], check=False)


if __name__ == "__main__":
    main()
