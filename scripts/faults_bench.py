"""Driver for scripts/bench-faults.sh (see there for what it measures)."""

import collections
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SHOAL = sys.argv[1]
MIB = 1 << 20
# Generous on purpose: a request that takes longer is a failure worth seeing,
# not a slow success.
REQUEST_TIMEOUT = 60
STATUS_TIMEOUT = 10

# Every peer started, so they can all be stopped by pid whatever happens.
STARTED = []
STARTED_LOCK = threading.Lock()
closing = False


def request(method, url, body=None, timeout=REQUEST_TIMEOUT):
    """One HTTP request: (status, body). The status is the HTTP code, or
    "timeout" or "connection" when no answer came."""
    headers = {"content-type": "application/octet-stream"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.read()
        except OSError:
            return e.code, b""
    except urllib.error.URLError as e:
        return ("timeout" if isinstance(e.reason, TimeoutError) else "connection"), b""
    except TimeoutError:
        return "timeout", b""
    except (OSError, http.client.HTTPException):  # reset, closed mid-answer
        return "connection", b""


def file_url(api, name):
    return f"{api}/v1/file?name={urllib.parse.quote(name, safe='')}"


def put(api, name, body):
    """(status, seconds, answer as JSON or None)."""
    started = time.monotonic()
    status, answer = request("PUT", file_url(api, name), body)
    took = time.monotonic() - started
    try:
        parsed = json.loads(answer) if status == 201 else None
    except ValueError:
        parsed = None
    return status, took, parsed


def get(api, name):
    return request("GET", file_url(api, name))


def digest(data):
    return hashlib.sha256(data).hexdigest()


class Peer:
    """One `shoal node` process on its own data directory; restarted on the
    same directory, so it keeps its identity and what it stored."""

    def __init__(self, work, index, flags):
        self.index = index
        self.data = os.path.join(work, f"p{index}")
        self.log = self.data + ".log"
        self.flags = flags
        self.proc = None
        self.api = None
        self.addr = None
        self.peer_id = None
        # "up", "starting", "killed" or "stopped"; changed under Swarm.lock.
        self.state = "starting"
        # Raised by every fault, so a request can tell whether its peer
        # stayed up from start to end.
        self.generation = 0

    def start(self, join=None):
        args = [SHOAL, "node", "--data", self.data, "--api", "127.0.0.1:0", "--s3", "off",
                "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", *self.flags]
        if join:
            args += ["--join", join]
        with STARTED_LOCK:
            if closing:
                raise RuntimeError("shutting down")
            with open(self.log, "a") as log:
                self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
            STARTED.append(self.proc)
        ready = threading.Event()
        threading.Thread(target=self._read_stdout, args=(self.proc, ready), daemon=True).start()
        if not ready.wait(60) or self.proc.poll() is not None:
            raise RuntimeError(f"peer {self.index} failed to start; see {self.log}")
        status = self.status()
        if not status:
            raise RuntimeError(f"peer {self.index} does not answer on {self.api}; see {self.log}")
        self.peer_id = status["peer_id"]
        self.addr = status["listen"][0]

    def _read_stdout(self, proc, ready):
        # Keep reading after the start-up line so the pipe never fills.
        for line in proc.stdout:
            if "serving the API on " in line and not ready.is_set():
                self.api = line.split("serving the API on ")[1].strip()
                ready.set()
        ready.set()

    def status(self):
        code, body = request("GET", f"{self.api}/v1/status", timeout=STATUS_TIMEOUT)
        if code != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def hang(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


class Swarm:
    """N peers joined through the first, and the faults done to them."""

    def __init__(self, work, n, flags):
        self.lock = threading.Lock()
        self.peers = [Peer(work, i, flags) for i in range(n)]
        self.peers[0].start()
        for p in self.peers[1:]:
            p.start(join=self.peers[0].addr)
        for p in self.peers:
            p.state = "up"
        wait("the swarm to converge", self.converged, timeout=120)

    def up(self):
        with self.lock:
            return [p for p in self.peers if p.state == "up"]

    def converged(self):
        """Whether every peer is up and sees every peer alive."""
        ids = {p.peer_id for p in self.peers}
        for p in self.peers:
            if p.state != "up":
                return False
            status = p.status()
            if not status:
                return False
            alive = {m["peer_id"] for m in status["members"] if m["state"] == "alive"}
            if not ids <= alive:
                return False
        return True

    def kill(self, p):
        with self.lock:
            p.state = "killed"
            p.generation += 1
        p.kill9()

    def hang(self, p):
        with self.lock:
            p.state = "stopped"
            p.generation += 1
        p.hang()

    def resume(self, p):
        p.resume()
        with self.lock:
            p.state = "up"

    def restart(self, p):
        """Start a killed peer again on its data, joining through a peer that is up."""
        others = [q for q in self.up() if q is not p]
        with self.lock:
            p.state = "starting"
        p.start(join=random.choice(others).addr if others else None)
        with self.lock:
            p.state = "up"

    def statuses(self):
        """The status of every peer that is up (None where it did not answer)."""
        return [(p, p.status()) for p in self.up()]


def wait(what, check, timeout=60, every=0.2):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def stop_all():
    """Stop every peer started, by pid: resumed first, since a stopped
    process does not act on SIGTERM; killed if it does not stop in time."""
    global closing
    with STARTED_LOCK:
        closing = True
        procs = [p for p in STARTED if p.poll() is None]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


LOG_LINE = re.compile(r"^\S+\s+(WARN|ERROR)\s+(\S+?):\s+(.*)$")
FIELDS = re.compile(r"\s\w[\w.]*=.*$")
ERROR_FIELD = re.compile(r"\serror=(.*)$")
# Parts of a message that differ from one occurrence to the next.
VARYING = [(re.compile(r"12D3Koo\w+"), "<peer>"), (re.compile(r"\b[0-9a-f]{16,}\b"), "<hash>"),
           (re.compile(r"\d+"), "N")]


def log_key(level, target, text):
    """A log line without what varies, so alike lines count together: the
    message, and the error field if there is one."""
    key = f"{level} {target}: {FIELDS.sub('', text)}"
    error = ERROR_FIELD.search(text)
    if error:
        key += f": {error[1]}"
    for pattern, replacement in VARYING:
        key = pattern.sub(replacement, key)
    return key[:240]


def log_summary(swarm, top=8):
    """Counts of the warnings and errors in the peers' logs, alike lines
    together (see log_key), printed most frequent first."""
    counts = collections.Counter()
    for p in swarm.peers:
        try:
            with open(p.log, errors="replace") as f:
                for line in f:
                    m = LOG_LINE.match(line.strip())
                    if m:
                        counts[log_key(*m.groups())] += 1
        except OSError:
            continue
    warnings = sum(c for k, c in counts.items() if k.startswith("WARN"))
    errors = sum(c for k, c in counts.items() if k.startswith("ERROR"))
    print(f"peer logs: {warnings} warnings, {errors} errors")
    for message, count in counts.most_common(top):
        print(f"  {count:6d}  {message}")
    return {"log_warnings": warnings, "log_errors": errors}


def figure(values, key):
    return sum(v.get(key, 0) for v in values)


def space(work, n, seconds):
    flags = ["--gc-grace", "60s", "--gc-interval", "10s",
             "--audit-interval", "60s", "--repair-interval", "5s"]
    swarm = Swarm(work, n, flags)
    names = [f"space/{i}" for i in range(20)]
    sizes = {}
    outcomes = collections.Counter()
    puts = kills = 0
    fault = None
    deadline = time.monotonic() + seconds
    broken = []

    def kill_and_restart(p):
        try:
            swarm.kill(p)
            swarm.restart(p)
        except Exception as e:  # reported by the load loop
            broken.append(e)

    while time.monotonic() < deadline:
        up = swarm.up()
        name = names[puts % len(names)]
        status, _, answer = put(up[puts % len(up)].api, name, os.urandom(MIB))
        outcomes[status] += 1
        if status == 201:
            sizes[name] = answer["size"] if answer else MIB
        puts += 1
        if puts % 100 == 0:
            if fault:
                fault.join()
            if broken:
                raise SystemExit(f"restarting a peer failed: {broken[0]}")
            # In turn, so never the same peer twice in a row; the restart
            # runs beside the load, so puts meet the peer down and joining.
            victim = swarm.peers[kills % n]
            kills += 1
            fault = threading.Thread(target=kill_and_restart, args=(victim,), daemon=True)
            fault.start()
    load_end = time.monotonic()
    if fault:
        fault.join()
    if broken:
        raise SystemExit(f"restarting a peer failed: {broken[0]}")
    ok = outcomes.pop(201, 0)
    failed = sum(outcomes.values())
    live = sum(sizes.values()) * 3
    print(f"{n} peers, {seconds} s of overwrites: {puts} puts, {ok} ok, {failed} failed "
          f"{dict(outcomes)}, {kills} kills; live data {live / MIB:.0f} MiB "
          f"({len(sizes)} files x 3 copies)", flush=True)

    series = []
    store_keys = set()
    for k in range(31):
        time.sleep(max(0.0, load_end + 10 * k - time.monotonic()))
        statuses = swarm.statuses()
        stores = [s["store"] for _, s in statuses if s]
        repairs = [s.get("repair", {}) for _, s in statuses if s]
        if not store_keys and stores:
            store_keys = set(stores[0])
            print(f"store figures reported: {', '.join(sorted(store_keys))}")
        sample = {"t": 10 * k, "peers": len(stores),
                  "disk_bytes": figure(stores, "disk_bytes"),
                  "held_chunks": figure(repairs, "held_chunks"),
                  "held_records": figure(repairs, "held_records")}
        for key in ("bytes", "chunk_bytes", "referenced_bytes", "unreferenced_bytes", "references"):
            if key in store_keys:
                sample[key] = figure(stores, key)
        sample["ratio"] = round(sample["disk_bytes"] / live, 2) if live else None
        series.append(sample)
        extra = "".join(f", {label} {sample[key] / MIB:.0f} MiB"
                        for key, label in (("bytes", "chunk data"),
                                           ("referenced_bytes", "referenced"),
                                           ("unreferenced_bytes", "unreferenced"))
                        if key in sample)
        print(f"  +{10 * k:3d} s: held {sample['disk_bytes'] / MIB:7.0f} MiB = "
              f"{sample['ratio']} x live{extra}; held copies {sample['held_chunks']} chunks, "
              f"{sample['held_records']} records"
              f"{'' if len(stores) == n else f' ({len(stores)} of {n} peers answered)'}",
              flush=True)
    at = {s["t"]: s["ratio"] for s in series}
    print("held / live after the load: " + ", ".join(f"{t} s {at[t]}" for t in (60, 120, 180, 300)))
    logs = log_summary(swarm)
    print(json.dumps({"mode": "space", "peers": n, "load_seconds": seconds, "puts": puts,
                      "puts_ok": ok, "puts_failed": failed,
                      "failures": {str(k): v for k, v in outcomes.items()}, "kills": kills,
                      "live_bytes": live,
                      "ratio": {str(t): at[t] for t in (60, 120, 180, 300)},
                      "series": series, **logs}))


def held_everywhere(statuses):
    """Sums of repair.held_chunks and repair.held_records."""
    repairs = [s.get("repair", {}) for _, s in statuses if s]
    return figure(repairs, "held_chunks"), figure(repairs, "held_records")


def hung(work, n, count):
    if n < 3:
        raise SystemExit("hung needs at least 3 peers")
    swarm = Swarm(work, n, ["--repair-interval", "1s"])
    stopped, killed = swarm.peers[1], swarm.peers[2]
    swarm.hang(stopped)
    swarm.kill(killed)
    up = swarm.up()
    print(f"{n} peers: peer {stopped.index} stopped, peer {killed.index} killed; "
          f"{count} puts through the other {len(up)}", flush=True)
    written = {}
    times = []
    outcomes = collections.Counter()
    for i in range(count):
        name, body = f"hung/{i}", os.urandom((i % 5 + 1) * MIB)
        status, took, _ = put(up[i % len(up)].api, name, body)
        times.append(took * 1000)
        outcomes[status] += 1
        if status == 201:
            written[name] = digest(body)
        print(f"  put {name} {len(body) // MIB} MiB: {status} in {took * 1000:.0f} ms", flush=True)
    ok = outcomes.pop(201, 0)
    p50, worst = statistics.median(times), max(times)
    print(f"puts: {ok} of {count} ok{f', failed {dict(outcomes)}' if outcomes else ''}; "
          f"latency over all puts: median {p50:.0f} ms, worst {worst:.0f} ms")

    reads = collections.Counter()
    for name, expected in written.items():
        for p in up:
            status, body = get(p.api, name)
            reads["same" if status == 200 and digest(body) == expected
                  else "different bytes" if status == 200 else status] += 1
    same = reads.pop("same", 0)
    mismatches = sum(reads.values())
    print(f"read back through the {len(up)} up peers: {same} identical, {mismatches} not"
          f"{f' {dict(reads)}' if reads else ''}")

    before = held_everywhere(swarm.statuses())
    passes = {p.peer_id: (s or {}).get("repair", {}).get("passes", 0) for p, s in swarm.statuses()}
    healed = time.monotonic()
    swarm.resume(stopped)
    swarm.restart(killed)
    passes[killed.peer_id] = 0
    passes.setdefault(stopped.peer_id, (stopped.status() or {}).get("repair", {}).get("passes", 0))
    print(f"held copies before healing: {before[0]} chunks, {before[1]} records; "
          f"healing (resumed peer {stopped.index}, restarted peer {killed.index} in "
          f"{time.monotonic() - healed:.1f} s)", flush=True)

    converged_after = drained_after = None
    last = before
    deadline = healed + 600
    while time.monotonic() < deadline:
        statuses = swarm.statuses()
        if converged_after is None and swarm.converged():
            converged_after = time.monotonic() - healed
        # A peer's held figures are those of its last repair pass, so each
        # must have finished a pass since the healing began.
        fresh = all(s and s.get("repair", {}).get("passes", 0) > passes.get(p.peer_id, 0)
                    for p, s in statuses)
        last = held_everywhere(statuses)
        if len(statuses) == n and fresh and last == (0, 0):
            drained_after = time.monotonic() - healed
            break
        time.sleep(0.5)
    if drained_after is None:
        print(f"hinted copies not drained after 600 s: still {last[0]} chunks, {last[1]} records held")
    else:
        print(f"all peers alive everywhere after {converged_after:.1f} s; "
              f"hinted copies drained after {drained_after:.1f} s")
    logs = log_summary(swarm)
    print(json.dumps({"mode": "hung", "peers": n, "puts": count, "puts_ok": ok,
                      "failures": {str(k): v for k, v in outcomes.items()},
                      "latency_ms": {"p50": round(p50), "worst": round(worst),
                                     "all": [round(t) for t in times]},
                      "reads_identical": same, "read_mismatches": mismatches,
                      "mismatch_kinds": {str(k): v for k, v in reads.items()},
                      "held_before_heal": {"chunks": before[0], "records": before[1]},
                      "converged_s": converged_after and round(converged_after, 1),
                      "drained_s": drained_after and round(drained_after, 1),
                      "held_at_end": {"chunks": last[0], "records": last[1]}, **logs}))


class Ledger:
    """What the random workload sent, for the final check: every put of a
    name with its content hash and outcome, registered before it is sent so
    a concurrent get can recognise its bytes."""

    def __init__(self):
        self.lock = threading.Lock()
        self.puts = collections.defaultdict(list)
        self.written = []  # names with a successful put, for gets to pick from
        self.counts = {(op, whole): collections.Counter()
                       for op in ("put", "get") for whole in (True, False)}

    def begin(self, name, body_digest):
        entry = {"digest": body_digest, "started": time.monotonic(), "ended": None,
                 "outcome": "pending", "version": None}
        with self.lock:
            self.puts[name].append(entry)
        return entry

    def end(self, entry, name, status, answer):
        with self.lock:
            entry["ended"] = time.monotonic()
            if status == 201:
                entry["outcome"] = "ok"
                entry["version"] = (answer or {}).get("version")
                if name not in self.written:
                    self.written.append(name)
            elif isinstance(status, int) and status < 500:
                entry["outcome"] = "failed"  # refused outright: nothing written
            else:
                # A put refused for want of a quorum may still have left copies
                # that repair spreads; no answer at all says nothing either way.
                entry["outcome"] = "unacknowledged" if isinstance(status, int) else "unknown"

    def known(self, name, body_digest):
        with self.lock:
            return any(e["digest"] == body_digest for e in self.puts[name])

    def count(self, op, whole, status):
        with self.lock:
            self.counts[(op, whole)][status] += 1

    def expected(self, name):
        """The digest the name must read back as, the digests also allowed
        (puts after it whose outcome is not known), and the older digests."""
        entries = self.puts[name]
        ok = [e for e in entries if e["outcome"] == "ok"]
        if not ok:
            return None
        # Versions sort as text in write order; concurrent puts may finish
        # in another order than the versions they won.
        latest = max(ok, key=lambda e: (e["version"] or "", e["ended"]))
        later = {e["digest"]: e["outcome"] for e in entries
                 if e["outcome"] in ("unacknowledged", "unknown", "pending")
                 and (e["ended"] is None or e["ended"] >= latest["started"])}
        older = {e["digest"] for e in ok if e is not latest}
        return latest["digest"], later, older


def random_faults(work, n, seconds):
    if n < 3:
        raise SystemExit("random needs at least 3 peers")
    swarm = Swarm(work, n, ["--repair-interval", "5s"])
    names = [f"random/{i}" for i in range(50)]
    ledger = Ledger()
    done = threading.Event()
    broken = []
    faults = collections.Counter()
    recoveries = []  # (when, what, peer)

    def client(seed):
        rng = random.Random(seed)
        while not done.is_set():
            with swarm.lock:
                up = [p for p in swarm.peers if p.state == "up"]
                if up:
                    p = rng.choice(up)
                    generation, api = p.generation, p.api
            if not up:
                time.sleep(0.1)
                continue
            with ledger.lock:
                written = list(ledger.written)
            if not written or rng.random() < 0.5:
                op, name, body = "put", rng.choice(names), os.urandom(MIB)
                entry = ledger.begin(name, digest(body))
                status, _, answer = put(api, name, body)
                ledger.end(entry, name, status, answer)
            else:
                op, name = "get", rng.choice(written)
                status, body = get(api, name)
                if status == 200 and not ledger.known(name, digest(body)):
                    status = "wrong bytes"
            with swarm.lock:
                whole = p.generation == generation and p.state == "up"
            ledger.count(op, whole, status)

    def nemesis():
        rng = random.Random(0)
        next_fault = time.monotonic() + rng.uniform(5, 10)
        try:
            while not done.is_set():
                now = time.monotonic()
                for item in [r for r in recoveries if r[0] <= now]:
                    recoveries.remove(item)
                    recover(item)
                if now >= next_fault:
                    up = swarm.up()
                    if n - len(up) < 2:
                        victim = rng.choice(up)
                        what = rng.choice(["kill", "hang"])
                        (swarm.kill if what == "kill" else swarm.hang)(victim)
                        faults[what] += 1
                        recoveries.append((time.monotonic() + rng.uniform(5, 15), what, victim))
                    next_fault = time.monotonic() + rng.uniform(5, 10)
                time.sleep(0.1)
        except Exception as e:  # reported by the main thread
            broken.append(e)
            done.set()

    def recover(item):
        _, what, p = item
        if what == "kill":
            swarm.restart(p)
        else:
            swarm.resume(p)

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    faulter = threading.Thread(target=nemesis, daemon=True)
    for t in clients + [faulter]:
        t.start()
    done.wait(seconds)
    done.set()
    faulter.join()
    if broken:
        raise SystemExit(f"the nemesis failed: {broken[0]}")
    # Heal before waiting for the clients, so none waits out its timeout on a
    # peer that would otherwise stay stopped.
    for item in sorted(recoveries, key=lambda r: r[0]):
        recover(item)
    for t in clients:
        t.join()
    wait("the healed swarm to converge", swarm.converged, timeout=120)
    print(f"{n} peers, {seconds} s, 4 clients; {faults['kill']} kills and "
          f"{faults['hang']} hangs", flush=True)

    shares = {}
    for op in ("put", "get"):
        whole = ledger.counts[(op, True)]
        partial = ledger.counts[(op, False)]
        good = 201 if op == "put" else 200
        total = sum(whole.values())
        share = whole[good] / total if total else None
        failures = {str(k): v for k, v in whole.items() if k != good}
        meanwhile = {str(k): v for k, v in partial.items()}
        shares[op] = {"sent": total, "ok": whole[good], "share": share and round(share, 4),
                      "failures": failures, "peer_failed_meanwhile": meanwhile}
        print(f"{op}s to peers up throughout: {whole[good]} of {total} ok"
              f"{f' ({100 * share:.1f} %)' if total else ''}"
              f"{f', failed {failures}' if failures else ''}; "
              f"to peers that failed meanwhile: {meanwhile or 'none'}")

    def verdict(status, body, latest, later, older):
        found = digest(body) if status == 200 else None
        if found == latest:
            return "latest"
        if found in later:
            return f"later {later[found]} put"
        if found in older:
            return "older put (mismatch)"
        return "other bytes (mismatch)" if status == 200 else f"{status} (mismatch)"

    expected = {name: ledger.expected(name) for name in names}
    expected = {name: e for name, e in expected.items() if e}
    results = {}
    for name, e in expected.items():
        for p in swarm.peers:
            results[(name, p.index)] = verdict(*get(p.api, name), *e)
    # A peer just healed may not be reachable from every other at once: a
    # read that failed is retried for 30 s, and both outcomes are reported.
    def unanswered(v):
        return v.endswith("(mismatch)") and not v.startswith(("older", "other"))

    first_errors = collections.Counter(v.split()[0] for v in results.values() if unanswered(v))
    retry_until = time.monotonic() + 30
    while time.monotonic() < retry_until:
        failing = [k for k, v in results.items() if unanswered(v)]
        if not failing:
            break
        time.sleep(1)
        for name, index in failing:
            results[(name, index)] = verdict(*get(swarm.peers[index].api, name), *expected[name])
    checks = collections.Counter(results.values())
    mismatches = sum(v for k, v in checks.items() if "mismatch" in k)
    print(f"after healing, {len(expected)} files read through all {n} peers: "
          f"{mismatches} mismatches {dict(checks)}"
          f"{f'; failed at first, then retried for up to 30 s: {dict(first_errors)}' if first_errors else ''}")
    logs = log_summary(swarm)
    print(json.dumps({"mode": "random", "peers": n, "seconds": seconds, "kills": faults["kill"],
                      "hangs": faults["hang"], "puts": shares["put"], "gets": shares["get"],
                      "files_checked": len(expected), "read_mismatches": mismatches,
                      "reads": dict(checks), "failed_first": dict(first_errors), **logs}))


def interrupted(signum, frame):
    """SIGTERM stops the peers as Ctrl-C does."""
    raise KeyboardInterrupt


def main():
    mode = sys.argv[2] if len(sys.argv) > 2 else None
    if mode not in ("space", "hung", "random"):
        raise SystemExit("usage: scripts/bench-faults.sh space|hung|random [N] [SECONDS|PUTS]")
    arg = lambda i, default: int(sys.argv[i]) if len(sys.argv) > i else default
    signal.signal(signal.SIGTERM, interrupted)
    work = tempfile.mkdtemp(prefix="shoal-bench-faults.")
    try:
        if mode == "space":
            space(work, arg(3, 5), arg(4, 120))
        elif mode == "hung":
            hung(work, arg(3, 5), arg(4, 30))
        else:
            random_faults(work, arg(3, 5), arg(4, 300))
    except KeyboardInterrupt:
        print("interrupted: stopping the peers", file=sys.stderr)
        raise SystemExit(130)
    finally:
        stop_all()
        if os.environ.get("SHOAL_BENCH_KEEP"):
            print(f"data and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


main()
