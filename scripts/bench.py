"""The benchmark behind scripts/bench.sh (see there for what it measures).

Starts its own swarm of release peers in a temporary directory, measures
each figure beside a baseline taken in the same run, prints one table and
stops every peer it started. Usage:

    python3 scripts/bench.py SHOAL_BINARY [SECTION ...]

Sections: big (1 GiB put and gets), small (many 4 KiB files), heal (back
to 3 copies after a peer dies), repair (foreground puts and gets while
repair runs), all (default).
Environment: BENCH_MIB (size of the big file, default 1024), BENCH_FILES
(small files, default 10000), BENCH_PEERS (default 3).
"""

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

READY = re.compile(r"serving the API on (https?://\S+)")
MB = 1_000_000
MIB = 1024 * 1024


class Peer:
    """One `shoal node` process on loopback."""

    def __init__(self, shoal, root, index, secret, join=None, extra=()):
        self.data = os.path.join(root, f"peer{index}")
        args = [shoal, "node", "--data", self.data, "--api", "127.0.0.1:0", "--s3", "off",
                "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--secret-file", secret, *extra]
        if join:
            args += ["--join", join]
        self.log = open(os.path.join(root, f"peer{index}.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            match = READY.search(line)
            if match:
                self.api = match.group(1)
                break
            if time.monotonic() > deadline:
                raise SystemExit("a peer did not start")
        else:
            raise SystemExit(f"a peer exited; see {self.log.name}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

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


class Swarm:
    def __init__(self, shoal, root, count, extra=(), env=None, name=None):
        self.shoal = shoal
        # Variables for the CLI (SHOAL_CA, SHOAL_TOKEN); SHOAL_DATA is each
        # peer's own, so a peer that needs tokens is reached with its own.
        self.env = env or {}
        root = os.path.join(root, name or f"swarm{count}")
        os.makedirs(root)
        secret = os.path.join(root, "secret")
        subprocess.run([shoal, "keygen", "-o", secret], check=True, capture_output=True)
        self.peers = [Peer(shoal, root, 0, secret, extra=extra)]
        join = self.status(0)["listen"][0]
        for i in range(1, count):
            self.peers.append(Peer(shoal, root, i, secret, join, extra))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            views = [self.status(i)["members"] for i in range(count)]
            if all(sum(m["state"] == "alive" for m in v) == count for v in views):
                return
            time.sleep(0.2)
        raise SystemExit("the peers did not all see each other")

    def status(self, index):
        return json.loads(self.cli(index, "status", "--json"))

    def cli(self, index, *args, **kwargs):
        env = {**os.environ, **self.env, "SHOAL_DATA": self.peers[index].data}
        out = subprocess.run([self.shoal, *args, "--api", self.peers[index].api],
                             check=True, capture_output=True, text=True, env=env, **kwargs)
        return out.stdout

    def peak_rss_mib(self):
        return max(p.peak_rss_mib() for p in self.peers)

    def stop(self):
        for peer in self.peers:
            peer.stop()


class Table:
    def __init__(self):
        self.rows = []

    def add(self, work, value, unit, baseline_name="", baseline=None, higher_is_better=True):
        ratio = ""
        if baseline:
            ratio = f"{(value / baseline) if higher_is_better else (baseline / value):.2f}"
        self.rows.append((work, f"{value:,.1f} {unit}", baseline_name,
                          f"{baseline:,.1f} {unit}" if baseline else "", ratio))
        print(f"  {work}: {value:,.1f} {unit}" + (f"  ({baseline_name} {baseline:,.1f}, ratio {ratio})" if baseline else ""),
              flush=True)

    def note(self, work, text):
        self.rows.append((work, text, "", "", ""))
        print(f"  {work}: {text}", flush=True)

    def print(self):
        head = ("work", "shoal", "same-run baseline", "baseline", "ratio")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(5)]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
        print()
        print(line(head))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in self.rows:
            print(line(row))


def timed(command, **kwargs):
    start = time.monotonic()
    subprocess.run(command, check=True, **kwargs)
    return time.monotonic() - start


def timed_rss(command, **kwargs):
    """Seconds and peak RSS (MiB) of a command, through GNU time."""
    with tempfile.NamedTemporaryFile("r") as rss:
        seconds = timed(["/usr/bin/time", "-f", "%M", "-o", rss.name, *command], **kwargs)
        return seconds, int(rss.read().split()[-1]) / 1024


def big(swarm, work, table):
    """A big file: put at the 3-copy disk limit, gets at the disk's and
    MD5's limits, and the peer's own serving rate."""
    mib = int(os.environ.get("BENCH_MIB", "1024"))
    size = mib * MIB
    source = os.path.join(work, "big.in")
    with open(source, "wb") as out:
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=out, check=True)
    print(f"big file: {mib} MiB of random bytes, {len(swarm.peers)} peers", flush=True)

    # Every copy below lands on blocks this run has not freed: the thin
    # disk rewrites freed blocks faster, which would flatter whoever is
    # second. Files are removed only at the end.
    dd = timed(["dd", f"if={source}", f"of={work}/dd.out", "bs=1M", "conv=fsync", "status=none"])
    dd_rate = size / dd / MB
    # Three copies on one disk: a put can go at most a third of dd's rate.
    seconds, put_rss = timed_rss([swarm.shoal, "put", source, "--name", "big",
                                  "--api", swarm.peers[0].api], stdout=subprocess.DEVNULL)
    table.add("put 1 file (3 copies, durable)", size / seconds / MB, "MB/s",
              "dd conv=fsync / 3", dd_rate / 3)

    api = swarm.peers[-1].api
    blake3 = json.loads(swarm.cli(len(swarm.peers) - 1, "stat", "big", "--json"))["blake3"]
    serving = statistics.median(
        size / timed(["curl", "-sf", "-o", "/dev/null", f"{api}/v1/file?name=big"]) / MB
        for _ in range(3))
    md5 = statistics.median(
        size / timed(["md5sum", source], stdout=subprocess.DEVNULL) / MB for _ in range(3))
    to_stdout = []
    get_rss = 0.0
    for _ in range(3):
        seconds, rss = timed_rss([swarm.shoal, "get", "big", "-o", "-", "--api", api],
                                 stdout=subprocess.DEVNULL)
        to_stdout.append(size / seconds / MB)
        get_rss = max(get_rss, rss)
    table.add("get -o - (verified)", statistics.median(to_stdout), "MB/s",
              "md5sum, one core", md5)
    table.add("the peer serving raw bytes (curl)", serving, "MB/s")

    dd2 = timed(["dd", f"if={source}", f"of={work}/dd2.out", "bs=1M", "conv=fsync", "status=none"])
    seconds, rss = timed_rss([swarm.shoal, "get", "big", "-o", f"{work}/big.out", "--api", api],
                             stdout=subprocess.DEVNULL)
    get_rss = max(get_rss, rss)
    table.add("get -o FILE (verified, synced)", size / seconds / MB, "MB/s",
              "dd conv=fsync", size / dd2 / MB)
    subprocess.run(["cmp", source, f"{work}/big.out"], check=True)
    table.note("peak RSS, big file", f"peers {swarm.peak_rss_mib():.0f} MiB, CLI put "
               f"{put_rss:.0f} MiB, CLI get {get_rss:.0f} MiB")
    for name in ("big.in", "dd.out", "dd2.out", "big.out"):
        os.remove(os.path.join(work, name))


def keep_alive_puts(api, count, size):
    """Latencies (s) of `count` single puts of `size` bytes over one kept-alive
    connection."""
    host, port = api.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    latencies = []
    for i in range(count):
        body = os.urandom(size)
        start = time.monotonic()
        connection.request("PUT", f"/v1/file?name=latency/{i}", body=body,
                           headers={"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"a small put failed: {response.status}")
        latencies.append(time.monotonic() - start)
    connection.close()
    return latencies


def small(swarm, work, table):
    """Many small files: a folder put and got in one command each, and one
    small put at a time."""
    count = int(os.environ.get("BENCH_FILES", "10000"))
    tree = os.path.join(work, "tree")
    for i in range(count):
        folder = os.path.join(tree, f"d{i // 100:03}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"f{i:05}"), "wb") as out:
            out.write(os.urandom(4096))
    print(f"small files: {count} of 4 KiB, {len(swarm.peers)} peers", flush=True)

    # Baseline: the same files written and made durable locally, once.
    copy = os.path.join(work, "copy")
    baseline = timed(["sh", "-c", f"cp -r {tree} {copy} && sync -f {copy}"])

    latencies = keep_alive_puts(swarm.peers[0].api, 300, 4096)
    latencies.sort()
    table.add("one 4 KiB put, kept-alive client, p50", latencies[len(latencies) // 2] * 1000,
              "ms")
    table.add("one 4 KiB put, kept-alive client, p99", latencies[int(len(latencies) * 0.99)] * 1000,
              "ms")

    usage = subprocess.run([swarm.shoal, "put", "--help"], capture_output=True, text=True).stdout
    if "--recursive" not in usage:
        table.note("put -r, get -r", "not in this build")
        return
    seconds, put_rss = timed_rss([swarm.shoal, "put", "-r", tree, "--name", "tree",
                                  "--api", swarm.peers[0].api], stdout=subprocess.DEVNULL)
    table.add("put -r (3 copies, durable)", count / seconds, "files/s",
              "cp -r + sync, 1 copy", count / baseline)
    out = os.path.join(work, "out")
    seconds, get_rss = timed_rss([swarm.shoal, "get", "-r", "tree", "-o", out,
                                  "--api", swarm.peers[-1].api], stdout=subprocess.DEVNULL)
    table.add("get -r (verified, synced)", count / seconds, "files/s",
              "cp -r + sync", count / baseline)
    subprocess.run(["diff", "-r", tree, out], check=True)
    # Restoring every file's mode and time costs two calls per file.
    bare = os.path.join(work, "out-bare")
    seconds = timed([swarm.shoal, "get", "-r", "tree", "-o", bare, "--no-preserve",
                     "--api", swarm.peers[-1].api], stdout=subprocess.DEVNULL)
    table.add("get -r --no-preserve (no mode, no time)", count / seconds, "files/s",
              "cp -r + sync", count / baseline)
    table.note("peak RSS, small files", f"peers {swarm.peak_rss_mib():.0f} MiB, CLI put -r "
               f"{put_rss:.0f} MiB, CLI get -r {get_rss:.0f} MiB")


def poll(what, check, timeout=600, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def heal(shoal, work, table):
    """Back to 3 live copies after a peer dies: detection, the
    `--rereplicate-after` wait, the copying, and any wait beyond them."""
    delay = 5
    mib = int(os.environ.get("BENCH_HEAL_MIB", "40"))
    swarm = Swarm(shoal, work, 4, ["--rereplicate-after", f"{delay}s"])
    try:
        source = os.path.join(work, "heal.in")
        with open(source, "wb") as out:
            out.write(os.urandom(mib * MIB))
        swarm.cli(0, "put", source, "--name", "heal")
        print(f"healing: {mib} MiB file, 4 peers, --rereplicate-after {delay}s, "
              "default --repair-interval", flush=True)
        victim = swarm.peers.pop()
        victim_id = json.loads(subprocess.run(
            [shoal, "status", "--json", "--api", victim.api], capture_output=True,
            text=True, check=True).stdout)["peer_id"]
        victim.proc.kill()
        killed = time.monotonic()
        victim.proc.wait()

        def dead_everywhere():
            return all(m["state"] == "dead" for i in range(3)
                       for m in swarm.status(i)["members"] if m["peer_id"] == victim_id)

        def sent():
            return sum(swarm.status(i)["repair"]["bytes_sent"] for i in range(3))

        def replicated():
            stat = json.loads(swarm.cli(0, "stat", "heal", "--json"))
            return (len(stat["manifest_replicas"]) == 3
                    and all(len(c["replicas"]) == 3 for c in stat["chunks"]))

        dead = poll("the peer's death", dead_everywhere, every=0.05) - killed
        copying = poll("repair to start", lambda: sent() > 0, every=0.05)
        done = poll("3 live copies", replicated, every=0.1)
        copy_s = done - copying
        total = done - killed
        target = dead + delay + copy_s + 2
        table.add("back to 3 copies after a SIGKILL", total, "s",
                  "detection + delay + copying + 2 s", target, higher_is_better=False)
        table.note("  of which", f"detection {dead:.1f} s, repair began {copying - killed:.1f} s "
                   f"after the kill, copying {copy_s:.1f} s")
    finally:
        swarm.stop()


def foreground_while_repairing(shoal, work, table):
    """Foreground puts and gets while repair copies a dead peer's share,
    against the same puts and gets before the death."""
    mib = int(os.environ.get("BENCH_REPAIR_MIB", "1024"))
    delay = 5
    extra = os.environ.get("BENCH_NODE_ARGS", "").split()
    swarm = Swarm(shoal, work, 4, ["--rereplicate-after", f"{delay}s", *extra])
    try:
        source = os.path.join(work, "repair.in")
        with open(source, "wb") as out:
            subprocess.run(["head", "-c", str(mib * MIB), "/dev/urandom"], stdout=out, check=True)
        swarm.cli(0, "put", source, "--name", "bulk")
        probe = os.path.join(work, "probe.in")
        probe_size = 128 * MIB
        with open(probe, "wb") as out:
            subprocess.run(["head", "-c", str(probe_size), "/dev/urandom"], stdout=out, check=True)
        api = swarm.peers[0].api

        def foreground(round_):
            put = timed([shoal, "put", probe, "--name", f"probe-{round_}", "--api", api],
                        stdout=subprocess.DEVNULL)
            get = timed([shoal, "get", f"probe-{round_}", "-o", "-", "--api", api],
                        stdout=subprocess.DEVNULL)
            return probe_size / put / MB, probe_size / get / MB

        unloaded_put, unloaded_get = foreground(0)
        print(f"repair under load: {mib} MiB to re-replicate, 4 peers, probes of "
              f"{probe_size // MIB} MiB", flush=True)
        victim = swarm.peers.pop()
        victim.proc.kill()
        victim.proc.wait()

        def sent():
            return sum(swarm.status(i)["repair"]["bytes_sent"] for i in range(3))

        started = poll("repair to start", lambda: sent() > 0, every=0.05)
        loaded_put, loaded_get = foreground(1)
        during = sent()

        def replicated():
            stat = json.loads(swarm.cli(0, "stat", "bulk", "--json"))
            return all(len(c["replicas"]) == 3 for c in stat["chunks"])

        done = poll("3 live copies", replicated, every=0.2)
        moved = sent()
        table.add("put while repair runs", loaded_put, "MB/s", "put before the death",
                  unloaded_put)
        table.add("get while repair runs", loaded_get, "MB/s", "get before the death",
                  unloaded_get)
        table.add("repair copying rate", moved / (done - started) / MB, "MB/s")
        table.note("  of which", f"{during / MB:.0f} MB copied while the probes ran, "
                   f"{moved / MB:.0f} MB in all")
    finally:
        swarm.stop()


def main():
    shoal = sys.argv[1]
    sections = sys.argv[2:] or ["all"]
    peers = int(os.environ.get("BENCH_PEERS", "3"))
    table = Table()
    work = tempfile.mkdtemp(prefix="shoal-bench.", dir=os.environ.get("TMPDIR", "/var/tmp"))
    swarm = None
    wanted = lambda section: section in sections or "all" in sections
    try:
        if wanted("big") or wanted("small"):
            swarm = Swarm(shoal, work, peers)
        if wanted("big"):
            big(swarm, work, table)
        if wanted("small"):
            small(swarm, work, table)
        if swarm:
            swarm.stop()
            swarm = None
        if wanted("heal"):
            heal(shoal, work, table)
        if wanted("repair"):
            foreground_while_repairing(shoal, work, table)
    finally:
        if swarm:
            swarm.stop()
        shutil.rmtree(work, ignore_errors=True)
    table.print()


if __name__ == "__main__":
    main()
