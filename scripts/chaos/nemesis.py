"""The nemesis of a chaos run: one fault at a time, held a few seconds,
healed, and then the wait until the swarm has settled again.

Every fault is recorded with when it began and when it was healed, and
every settling with when it was reached, so the checker knows which reads
happened while every peer saw the same swarm (see check.py).
"""

import os
import random
import shutil
import subprocess
import time

CHAIN = "SHOAL-CHAOS"


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=False)


class Nemesis:
    def __init__(self, swarm, history, stop, seed, tools, settle_timeout=180):
        self.swarm = swarm
        self.history = history
        self.stop = stop
        self.rng = random.Random(seed)
        self.settle_timeout = settle_timeout
        self.snapshots = {}
        self.faults = {"kill": self.kill, "stop": self.hang, "two": self.two_at_once,
                       "stale": self.stale, "flip": self.flip}
        if tools.get("faketime"):
            self.faults["clock"] = self.clock
        if tools.get("disks"):
            self.faults["disk_full"] = self.disk_full
        if tools.get("iptables"):
            run("iptables", "-w", "-N", CHAIN)
            run("iptables", "-w", "-I", "OUTPUT", "-j", CHAIN)
            self.faults["partition"] = self.partition
        self.last_heal = None
        self.counts = {}

    # --- the loop ------------------------------------------------------------

    def loop(self):
        while not self.stop.is_set():
            kind = self.rng.choice(sorted(self.faults))
            if kind == "stale" and not self.snapshots:
                kind = "kill"
            self.counts[kind] = self.counts.get(kind, 0) + 1
            start = self.history.now()
            heal, detail = self.faults[kind]()
            self.history.write(type="fault", fault=kind, start=start, detail=detail)
            self.pause(self.rng.uniform(2, 8))
            heal()
            self.last_heal = self.history.now()
            self.history.write(type="heal", fault=kind, at=self.last_heal)
            self.settle(kind)
            # A quiet spell, in which the register rule is checked.
            self.pause(self.rng.uniform(3, 10))

    def pause(self, seconds):
        self.stop.wait(seconds)

    def settle(self, after, strict=False):
        """Waits until every peer is up, sees every peer alive, has finished
        a repair pass begun after the heal, and nothing is held for another
        peer (see `unsettled_by`); records when, and what was the last
        thing waited for."""
        healed_at = self.history.now()
        passes = {p.index: self.passes(p) for p in self.swarm.peers}
        deadline = time.monotonic() + self.settle_timeout
        waiting_for = None
        while time.monotonic() < deadline:
            blocker = self.unsettled_by(self.swarm.statuses(), passes, strict)
            if blocker is None:
                at = self.history.now()
                self.history.write(type="settled", at=at, after=after, last_wait=waiting_for,
                                   converge_s=round(at - healed_at, 2))
                return True
            waiting_for = blocker
            time.sleep(0.5)
        self.history.write(type="unsettled", at=self.history.now(), after=after,
                           waited_s=self.settle_timeout, why=self.why_unsettled())
        return False

    @staticmethod
    def passes(peer):
        status = peer.status()
        return status["repair"]["passes"] if status else 0

    def unsettled_by(self, statuses, passes_at_heal, strict):
        """What keeps the swarm from being settled, or None. Only a strict
        settling (the end of the run, with no client left) waits for
        nothing to be under-replicated: with writes under way some copy is
        always on its way."""
        if not self.swarm.views_agree(statuses):
            return "membership views"
        for peer, status in statuses:
            repair = status["repair"]
            if repair["passes"] < passes_at_heal[peer.index] + 2:
                return "a repair pass"
            if strict and repair["under_replicated"]:
                return "under-replicated items"
            if repair["held_records"] or status["store"]["hinted_chunks"]:
                return "hinted items"
        return None

    def why_unsettled(self):
        out = {}
        for peer, status in self.swarm.statuses():
            if not status:
                out[peer.index] = "no answer"
                continue
            out[peer.index] = dict(
                not_alive=[m["peer_id"][-6:] for m in status["members"] if m["state"] != "alive"],
                under_replicated=status["repair"]["under_replicated"],
                held_records=status["repair"]["held_records"],
                hinted_chunks=status["store"]["hinted_chunks"],
            )
        return out

    def heal_all(self):
        """Undoes whatever is still in effect (the end of the run)."""
        run("iptables", "-w", "-F", CHAIN)
        for peer in self.swarm.peers:
            peer.set_clock(0)
            self.unfill(peer)
            if peer.state == "stopped":
                peer.resume()
        for peer in self.swarm.peers:
            if peer.state == "killed":
                self.swarm.restart(peer)

    def close(self):
        """Removes the cut rules' chain, whatever state the run ended in."""
        if "partition" in self.faults:
            run("iptables", "-w", "-D", "OUTPUT", "-j", CHAIN)
            run("iptables", "-w", "-F", CHAIN)
            run("iptables", "-w", "-X", CHAIN)

    # --- faults: each applies itself and returns (heal, detail) -------------

    def pick(self, count=1):
        return self.rng.sample(self.swarm.peers, count)

    def kill(self):
        (peer,) = self.pick()
        peer.kill()
        if self.rng.random() < 0.5:
            self.snapshot(peer)
        return (lambda: self.swarm.restart(peer)), {"peers": [peer.index]}

    def hang(self):
        (peer,) = self.pick()
        peer.hang()
        return peer.resume, {"peers": [peer.index]}

    def two_at_once(self):
        """Two peers down together, each killed or hung."""
        pair = self.pick(2)
        ways = []
        for peer in pair:
            if self.rng.random() < 0.5:
                peer.kill()
                ways.append("kill")
            else:
                peer.hang()
                ways.append("stop")

        def heal():
            for peer, way in zip(pair, ways):
                if way == "stop":
                    peer.resume()
                else:
                    self.swarm.restart(peer)

        return heal, {"peers": [p.index for p in pair], "ways": ways}

    def snapshot(self, peer):
        """Copies a killed peer's data directory, to restart it from later."""
        copy = peer.home + ".snapshot"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(peer.data, copy, symlinks=True)
        self.snapshots[peer.index] = (copy, self.history.now())

    def stale(self):
        """Restarts a peer on a copy of its data directory taken earlier:
        it comes back not knowing what was written and deleted since."""
        index = self.rng.choice(sorted(self.snapshots))
        peer = self.swarm.peers[index]
        copy, taken = self.snapshots.pop(index)
        peer.kill()
        shutil.rmtree(peer.data)
        shutil.move(copy, peer.data)
        detail = {"peers": [index], "snapshot_age_s": round(self.history.now() - taken, 1)}
        return (lambda: self.swarm.restart(peer)), detail

    def clock(self):
        """Moves a running peer's wall clock up to two minutes ahead or
        behind; the heal jumps it back. (Grace times run on the wall clock,
        so a clock ahead keeps garbage longer: the end of the run waits for
        the grace time plus the largest jump.)"""
        (peer,) = self.pick()
        offset = self.rng.choice([-1, 1]) * self.rng.randint(5, 120)
        peer.set_clock(offset)
        return (lambda: peer.set_clock(0)), {"peers": [peer.index], "offset_s": offset}

    def disk_full(self):
        """Fills the disk a peer's data is on, to the last block."""
        (peer,) = self.pick()
        filler = os.path.join(peer.disk, "filler")
        free = shutil.disk_usage(peer.disk).free
        run("fallocate", "-l", str(max(free, 4096)), filler)
        return (lambda: self.unfill(peer)), {"peers": [peer.index], "filled": free}

    @staticmethod
    def unfill(peer):
        if peer.disk:
            try:
                os.remove(os.path.join(peer.disk, "filler"))
            except FileNotFoundError:
                pass

    def flip(self):
        """Flips bytes in one of a peer's segment files: damage on disk that
        reads and scrubs must catch."""
        (peer,) = self.pick()
        flipped = []
        files = [f for f in peer.segment_files() if os.path.getsize(f) > 0]
        if files:
            path = self.rng.choice(files)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                for _ in range(self.rng.randint(1, 4)):
                    at = self.rng.randrange(size)
                    f.seek(at)
                    byte = f.read(1)
                    f.seek(at)
                    f.write(bytes([byte[0] ^ 0xFF]))
                    flipped.append(at)
            path = os.path.basename(path)
        else:
            path = None
        return (lambda: None), {"peers": [peer.index], "segment": path, "offsets": flipped}

    def partition(self):
        """Cuts the swarm in two (one or two peers against the rest); one
        time in four, only one direction is cut."""
        minority = self.pick(self.rng.choice([1, 2]))
        rest = [p for p in self.swarm.peers if p not in minority]
        one_way = self.rng.random() < 0.25
        for a in minority:
            for b in rest:
                pairs = [(a, b)] if one_way else [(a, b), (b, a)]
                for src, dst in pairs:
                    run("iptables", "-w", "-A", CHAIN, "-p", "tcp",
                        "--sport", str(src.swarm_port), "--dport", str(dst.swarm_port),
                        "-j", "DROP")
        detail = {"peers": [p.index for p in minority], "rest": [p.index for p in rest],
                  "one_way": one_way}
        return (lambda: run("iptables", "-w", "-F", CHAIN)), detail
