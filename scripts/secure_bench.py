"""What access tokens and HTTPS cost: the same work on two fresh swarms of
release peers in one run, one plain (loopback, no token) and one that
needs a token on every request and serves HTTPS (`--require-tokens
--tls-cert --tls-key`), each figure of the second beside the first's.

    python3 scripts/secure_bench.py SHOAL_BINARY

Measured: one 4 KiB put at a time over a kept-alive connection (p50 of
300), `shoal get -o -` of a big file (median of 3), and the peer serving
the file's raw bytes to curl (median of 3). Environment: BENCH_MIB (the big
file, default 512), BENCH_PEERS (default 3), TMPDIR.
"""

import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import MB, MIB, Swarm, Table, timed  # noqa: E402


def put_latencies(api, count, size, headers, cafile):
    """Latencies (s) of `count` puts of `size` bytes over one connection."""
    url = urllib.parse.urlsplit(api)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=cafile)
        connection = http.client.HTTPSConnection(url.hostname, url.port, context=context)
    else:
        connection = http.client.HTTPConnection(url.hostname, url.port)
    latencies = []
    for i in range(count):
        body = os.urandom(size)
        start = time.monotonic()
        connection.request("PUT", f"/v1/file?name=latency/{i}", body=body,
                           headers={"Content-Type": "application/octet-stream", **headers})
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"a small put failed: {response.status}")
        latencies.append(time.monotonic() - start)
    connection.close()
    return latencies


def measure(swarm, source, size, cafile):
    """p50 of small puts (ms), `get -o -` (MB/s) and curl (MB/s)."""
    token = swarm.env.get("SHOAL_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    api = swarm.peers[0].api
    latencies = sorted(put_latencies(api, 300, 4096, headers, cafile))
    p50 = latencies[len(latencies) // 2] * 1000
    env = {**os.environ, **swarm.env}
    subprocess.run([swarm.shoal, "put", source, "--name", "big", "--api", api],
                   check=True, stdout=subprocess.DEVNULL, env=env)
    reader = swarm.peers[-1].api
    get = statistics.median(
        size / timed([swarm.shoal, "get", "big", "-o", "-", "--api", reader],
                     stdout=subprocess.DEVNULL, env=env) / MB
        for _ in range(3))
    curl = ["curl", "-sf", "-o", "/dev/null"]
    if cafile:
        curl += ["--cacert", cafile]
    for name, value in headers.items():
        curl += ["-H", f"{name}: {value}"]
    raw = statistics.median(
        size / timed([*curl, f"{reader}/v1/file?name=big"]) / MB for _ in range(3))
    return p50, get, raw


def main():
    shoal = sys.argv[1]
    peers = int(os.environ.get("BENCH_PEERS", "3"))
    mib = int(os.environ.get("BENCH_MIB", "512"))
    size = mib * MIB
    work = tempfile.mkdtemp(prefix="shoal-secure.", dir=os.environ.get("TMPDIR", "/var/tmp"))
    table = Table()
    swarms = []
    try:
        source = os.path.join(work, "big.in")
        with open(source, "wb") as out:
            subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=out, check=True)
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "basicConstraints=critical,CA:FALSE"],
            check=True, capture_output=True)
        print(f"{peers} peers, {mib} MiB file", flush=True)

        plain = Swarm(shoal, work, peers, name="plain")
        swarms.append(plain)
        base = measure(plain, source, size, None)
        plain.stop()

        secure = Swarm(shoal, work, peers, name="secure",
                       extra=["--require-tokens", "--tls-cert", cert, "--tls-key", key],
                       env={"SHOAL_CA": cert})
        swarms.append(secure)
        made = secure.cli(0, "token", "create", "--name", "bench", "--json")
        secure.env["SHOAL_TOKEN"] = json.loads(made)["token"]
        figures = measure(secure, source, size, cert)
        secure.stop()

        table.add("one 4 KiB put, p50, HTTPS + token", figures[0], "ms",
                  "plain HTTP, no token", base[0], higher_is_better=False)
        table.add("get -o -, HTTPS + token", figures[1], "MB/s", "plain HTTP", base[1])
        table.add("raw bytes to curl, HTTPS + token", figures[2], "MB/s", "plain HTTP", base[2])
    finally:
        for swarm in swarms:
            swarm.stop()
        shutil.rmtree(work, ignore_errors=True)
    table.print()


if __name__ == "__main__":
    main()
