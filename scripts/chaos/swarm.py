"""The peers of a chaos run: start, stop, kill, hang, and what each says.

Every peer runs on loopback with its own swarm port. Peers dial out from
their listening port (libp2p reuses it), so every packet between peers A
and B carries A's port on one end and B's on the other, which is what
the network cuts match on. When the run has a disk per peer (a small
tmpfs, root only), the peer's data lives on it so the disk can be filled;
when libfaketime is installed, each peer reads its clock offset from a
file the nemesis rewrites.
"""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
STATUS_TIMEOUT = 5


def http_json(url, method="GET", timeout=STATUS_TIMEOUT):
    """The JSON answer of a request, or None if there was no good answer."""
    try:
        req = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


class Peer:
    """One `shoal node` on its own data directory, restarted on the same one."""

    def __init__(self, shoal, root, index, flags, env, base_port, disk=None):
        self.shoal = shoal
        self.index = index
        self.home = disk or os.path.join(root, f"p{index}")
        self.data = os.path.join(self.home, "data")
        self.log = os.path.join(root, f"p{index}.log")
        self.clock_file = os.path.join(root, f"p{index}.clock")
        self.disk = disk
        self.flags = flags
        self.env = env
        self.api_port = base_port + 10 * index
        self.s3_port = self.api_port + 1
        self.swarm_port = self.api_port + 2
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.s3 = f"http://127.0.0.1:{self.s3_port}"
        self.proc = None
        self.peer_id = None
        self.lock = threading.Lock()
        # "up", "killed", "stopped"; a fault raises the generation.
        self.state = "killed"
        self.clock_offset = 0
        os.makedirs(self.home, exist_ok=True)
        self.set_clock(0)

    def start(self, join=None):
        args = [
            self.shoal, "node", "--data", self.data,
            "--api", f"127.0.0.1:{self.api_port}",
            "--s3", f"127.0.0.1:{self.s3_port}",
            "--listen", f"/ip4/127.0.0.1/tcp/{self.swarm_port}",
            "--no-mdns", *self.flags,
        ]
        if join:
            args += ["--join", join]
        env = dict(os.environ, **self.env)
        if os.path.exists(FAKETIME_LIB):
            env.update(
                LD_PRELOAD=FAKETIME_LIB,
                FAKETIME_TIMESTAMP_FILE=self.clock_file,
                FAKETIME_CACHE_DURATION="1",
                FAKETIME_DONT_FAKE_MONOTONIC="1",
            )
        with open(self.log, "a") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self.proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=log, env=env
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"peer {self.index} exited at start; see {self.log}")
            status = self.status()
            if status:
                self.peer_id = status["peer_id"]
                self.state = "up"
                return
            time.sleep(0.1)
        raise RuntimeError(f"peer {self.index} did not answer within 60 s; see {self.log}")

    @property
    def multiaddr(self):
        return f"/ip4/127.0.0.1/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    def status(self):
        return http_json(f"{self.api}/v1/status")

    def kill(self):
        self.state = "killed"
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def hang(self):
        self.state = "stopped"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.state = "up"

    def terminate(self):
        """Stops the peer for good at the end of the run."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.state = "killed"

    def set_clock(self, offset_s):
        """Moves this peer's wall clock `offset_s` seconds from the real one
        (libfaketime rereads the file every second)."""
        self.clock_offset = offset_s
        with open(self.clock_file + ".new", "w") as f:
            f.write(f"{offset_s:+d}s\n")
        os.replace(self.clock_file + ".new", self.clock_file)

    def segment_files(self):
        folder = os.path.join(self.data, "segments")
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return []
        return [os.path.join(folder, n) for n in names if n.endswith(".seg")]


class Swarm:
    """N peers joined through the first."""

    def __init__(self, shoal, root, count, flags, env, base_port, disks=None):
        self.peers = [
            Peer(shoal, root, i, flags, env, base_port, disks[i] if disks else None)
            for i in range(count)
        ]
        self.lock = threading.Lock()

    def start(self):
        first = self.peers[0]
        first.start()
        for p in self.peers[1:]:
            p.start(join=first.multiaddr)

    def up(self):
        with self.lock:
            return [p for p in self.peers if p.state == "up"]

    def restart(self, peer):
        others = [q for q in self.up() if q is not peer]
        peer.start(join=others[0].multiaddr if others else None)

    def statuses(self):
        return [(p, p.status()) for p in self.peers]

    def views_agree(self, statuses):
        """Whether every peer answers and sees every peer alive."""
        ids = {p.peer_id for p in self.peers}
        for _, status in statuses:
            if not status:
                return False
            alive = {m["peer_id"] for m in status["members"] if m["state"] == "alive"}
            if not ids <= alive:
                return False
        return True

    def stop(self):
        for p in self.peers:
            p.terminate()
