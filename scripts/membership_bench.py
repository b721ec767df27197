"""Driver for scripts/bench-membership.sh (see there for what it measures)."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SHOAL = sys.argv[1]
# Extra flags for every peer, to compare failure-detector timings without
# rebuilding, e.g. SHOAL_NODE_ARGS="--probe-interval 500ms".
NODE_ARGS = os.environ.get("SHOAL_NODE_ARGS", "").split()


class Peer:
    def __init__(self, work, index, netns=None, join=None):
        self.data = os.path.join(work, f"p{index}")
        self.log = self.data + ".log"
        self.netns = netns
        self.join = join
        self.proc = None
        self.api = None
        self.start()

    def prefix(self):
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def start(self, join=True):
        args = self.prefix() + [SHOAL, "node", "--data", self.data, "--api", "127.0.0.1:0", "--s3", "off",
                                "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", *NODE_ARGS]
        if join and self.join:
            args += ["--join", self.join]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        for line in self.proc.stdout:
            if "serving the API on " in line:
                self.api = line.split("serving the API on ")[1].strip()
                return
        raise SystemExit(f"peer failed to start; see {self.log}")

    def status(self):
        out = subprocess.run(self.prefix() + [SHOAL, "status", "--json", "--api", self.api],
                             capture_output=True, text=True)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def states(self):
        status = self.status()
        return {m["peer_id"]: m["state"] for m in status["members"]} if status else {}

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def swarm(work, n, netns=None):
    first = Peer(work, 0, netns)
    addr = first.status()["listen"][0]
    peers = [first] + [Peer(work, i, netns, join=addr) for i in range(1, n)]
    ids = [p.status()["peer_id"] for p in peers]
    wait(f"{n} peers to converge", lambda: all(
        len(s) == n and all(v == "alive" for v in s.values())
        for s in (p.states() for p in peers)), timeout=120)
    return peers, ids


def detect(work, n, rounds):
    peers, ids = swarm(work, n)
    times = []
    for r in range(rounds):
        victim = 1 + r % (n - 1)
        survivors = [p for i, p in enumerate(peers) if i != victim]
        peers[victim].kill9()
        killed = time.monotonic()
        wait("the kill to be detected", lambda: all(
            s.states().get(ids[victim]) == "dead" for s in survivors))
        times.append(time.monotonic() - killed)
        print(f"round {r + 1}: dead everywhere after {times[-1]:.2f} s", flush=True)
        peers[victim].start(join=False)
        wait("the restarted peer to be alive everywhere", lambda: all(
            len(s) == n and all(v == "alive" for v in s.values())
            for s in (p.states() for p in peers)))
    print(f"detection over {rounds} kills with {n} peers: median {statistics.median(times):.2f} s, "
          f"worst {max(times):.2f} s, best {min(times):.2f} s")
    for p in peers:
        p.stop()


def hang(work, n, rounds):
    """SIGSTOP a peer (a hung process keeps its connections open), time its
    death everywhere, then SIGCONT it and time its return."""
    peers, ids = swarm(work, n)
    dead_times, back_times = [], []
    for r in range(rounds):
        victim = 1 + r % (n - 1)
        survivors = [p for i, p in enumerate(peers) if i != victim]
        peers[victim].proc.send_signal(19)  # SIGSTOP
        stopped = time.monotonic()
        wait("the hung peer to be declared dead", lambda: all(
            s.states().get(ids[victim]) == "dead" for s in survivors))
        dead_times.append(time.monotonic() - stopped)
        peers[victim].proc.send_signal(18)  # SIGCONT
        resumed = time.monotonic()
        wait("the resumed peer to refute and be alive everywhere", lambda: all(
            len(s) == n and all(v == "alive" for v in s.values())
            for s in (p.states() for p in peers)))
        back_times.append(time.monotonic() - resumed)
        print(f"round {r + 1}: hung peer dead everywhere after {dead_times[-1]:.2f} s, "
              f"alive again {back_times[-1]:.2f} s after resuming", flush=True)
    print(f"hung peer over {rounds} rounds with {n} peers: dead after median "
          f"{statistics.median(dead_times):.2f} s (worst {max(dead_times):.2f} s); back after median "
          f"{statistics.median(back_times):.2f} s (worst {max(back_times):.2f} s)")
    for p in peers:
        p.stop()


def lo_tx_bytes(netns):
    out = subprocess.run(["ip", "netns", "exec", netns, "cat",
                          "/sys/class/net/lo/statistics/tx_bytes"], capture_output=True, text=True)
    return int(out.stdout)


def traffic(work, sizes, seconds):
    for n in sizes:
        netns = f"shoal-bench-{os.getpid()}-{n}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
            sub = os.path.join(work, f"n{n}")
            os.makedirs(sub)
            peers, _ = swarm(sub, n, netns)
            time.sleep(10)  # let joins, first announcements and mesh building pass
            before = lo_tx_bytes(netns)
            time.sleep(seconds)
            sent = lo_tx_bytes(netns) - before
            per_peer = sent / n / seconds
            print(f"{n} peers: {per_peer:,.0f} bytes/s sent per peer "
                  f"(and as much received), over {seconds} s", flush=True)
            for p in peers:
                p.stop()
        finally:
            subprocess.run(["ip", "netns", "del", netns])


def load(work, n, seconds):
    peers, ids = swarm(work, n)
    deadline = time.monotonic() + seconds
    uploads = []
    count = 0
    while time.monotonic() < deadline:
        uploads = [u for u in uploads if u.poll() is None]
        while len(uploads) < 2 * n:
            p = peers[count % n]
            # Fresh random bytes each time, so every upload is written to disk
            # rather than deduplicated.
            uploads.append(subprocess.Popen(
                f"head -c 64M /dev/urandom | {SHOAL} put - --name load/{count} --api {p.api}",
                shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            count += 1
        time.sleep(0.05)
    for u in uploads:
        u.wait()
    suspected = dead = 0
    for p in peers:
        with open(p.log) as f:
            text = f.read()
        suspected += text.count("member suspected")
        dead += text.count("declaring member dead")
    states = [p.states() for p in peers]
    alive = all(len(s) == n and all(v == "alive" for v in s.values()) for s in states)
    load1 = os.getloadavg()[0]
    stored = sum((p.status() or {}).get("store", {}).get("bytes", 0) for p in peers)
    print(f"{n} peers, {count} uploads of 64 MiB started over {seconds} s, "
          f"{stored / 2**30:.1f} GiB stored (load average {load1:.1f} on "
          f"{os.cpu_count()} cores): {suspected} suspicions, {dead} deaths declared; "
          f"all alive at the end: {alive}")
    for p in peers:
        p.stop()


def main():
    mode = sys.argv[2] if len(sys.argv) > 2 else "detect"
    work = tempfile.mkdtemp(prefix="shoal-bench-membership.")
    try:
        if mode == "detect":
            detect(work, int(sys.argv[3]) if len(sys.argv) > 3 else 5,
                   int(sys.argv[4]) if len(sys.argv) > 4 else 10)
        elif mode == "hang":
            hang(work, int(sys.argv[3]) if len(sys.argv) > 3 else 5,
                 int(sys.argv[4]) if len(sys.argv) > 4 else 5)
        elif mode == "traffic":
            sizes = [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else "5 20 50").split()]
            traffic(work, sizes, int(sys.argv[4]) if len(sys.argv) > 4 else 30)
        elif mode == "load":
            load(work, int(sys.argv[3]) if len(sys.argv) > 3 else 5,
                 int(sys.argv[4]) if len(sys.argv) > 4 else 60)
        else:
            raise SystemExit(f"unknown mode {mode!r}: detect, hang, traffic or load")
    finally:
        subprocess.run(["pkill", "-f", f"shoal node --data {work}"])
        shutil.rmtree(work, ignore_errors=True)


main()
