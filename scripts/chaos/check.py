#!/usr/bin/env python3
"""Checks the history of a chaos run and prints its report.

    python3 scripts/chaos/check.py WORK/history.jsonl [--report FILE]

Exits non-zero when an anomaly is found.

The model checked is the one docs/architecture.md promises:

- **Integrity, always.** Every read that found a file returned exactly the
  bytes of one put of that name (the bytes name their write, and their hash
  must match it), a put that did not certainly fail, invoked before the read
  ended. Listings likewise list only contents some put wrote to that name.
- **Regular register per name, while the swarm is settled.** A read (or a
  listing, for each name) that began after the swarm settled from the last
  fault, and ended before the next fault began, returns a version no older
  than the newest version acknowledged before it began, or a version written
  concurrently; not-found only if a delete not known to be older follows
  every put acknowledged before the read. Versions are the text each
  acknowledged native write returned (`x-shoal-version`) or a read reported
  with the bytes; S3 writes return none, so an S3 write orders only once a
  native read has shown its version.
  Linearizability is not promised and not checked: with last-writer-wins
  over sloppy quorums, a read concurrent with a write may see it while a
  later read does not. While a fault is in effect (or not yet settled) the
  views of who is usable differ and a read may miss a newer version; those
  reads are checked for integrity only.
- **Convergence at the end.** With every fault healed: every name reads the
  same through every peer; the winner is no older than any acknowledged
  write (an acknowledged write is lost only to a later-stamped one, and a
  deleted name comes back only through a later put); every listing agrees;
  every file's manifest and chunks are on exactly N peers; nothing is held
  for another peer, and no unreferenced chunk is left after the grace time.
"""

import argparse
import bisect
import collections
import json
import sys

import history

INF = float("inf")


class NameIndex:
    """The writes of one name, arranged so that each read is checked in
    logarithmic time: acknowledged writes by completion with the newest
    version so far, and deletions by invocation with the newest so far."""

    def __init__(self, writes, version_of):
        acked = sorted((w for w in writes if w["outcome"] == "ok"), key=lambda w: w["complete"])
        self.acked_at = [w["complete"] for w in acked]
        self.newest = []  # newest (version, write) among the first i+1
        self.newest_put = []  # newest (version, put) with a known version
        self.latest_unversioned_put = []  # the acknowledged put of unknown version invoked last
        best = best_put = unversioned = None
        for w in acked:
            v = version_of(w)
            if v is not None and (best is None or v > best[0]):
                best = (v, w)
            if w["op"] == "put":
                if v is None:
                    if unversioned is None or w["invoke"] > unversioned["invoke"]:
                        unversioned = w
                elif best_put is None or v > best_put[0]:
                    best_put = (v, w)
            self.newest.append(best)
            self.newest_put.append(best_put)
            self.latest_unversioned_put.append(unversioned)
        deletes = sorted((w for w in writes if w["op"] == "delete"), key=lambda w: w["invoke"])
        self.delete_invoked = [d["invoke"] for d in deletes]
        self.newest_delete = []  # newest version among the first i+1 deletions
        self.last_unversioned_delete_end = []  # latest completion of one of unknown version
        self.last_delete_end = []  # latest completion of any
        top, end, any_end = None, -INF, -INF
        for d in deletes:
            if d.get("version"):
                top = d["version"] if top is None else max(top, d["version"])
            else:
                end = max(end, d["complete"])
            any_end = max(any_end, d["complete"])
            self.newest_delete.append(top)
            self.last_unversioned_delete_end.append(end)
            self.last_delete_end.append(any_end)

    def newest_acknowledged(self, before):
        """(version, write) of the newest write acknowledged before `before`."""
        i = bisect.bisect_left(self.acked_at, before)
        return self.newest[i - 1] if i else None

    def undeleted_put(self, before, read_end):
        """A put acknowledged before `before` that no deletion begun before
        `read_end` can have followed, or None."""
        i = bisect.bisect_left(self.acked_at, before)
        if not i:
            return None
        j = bisect.bisect_left(self.delete_invoked, read_end)
        top = self.newest_delete[j - 1] if j else None
        unversioned_end = self.last_unversioned_delete_end[j - 1] if j else -INF
        best_put = self.newest_put[i - 1]
        if best_put is not None:
            version, put = best_put
            if not ((top is not None and top > version) or unversioned_end > put["invoke"]):
                return put
        # A put of unknown version is followed by any deletion that did not
        # end before it began.
        put = self.latest_unversioned_put[i - 1]
        any_end = self.last_delete_end[j - 1] if j else -INF
        if put is not None and not any_end > put["invoke"]:
            return put
        return None


class Checker:
    def __init__(self, records):
        self.records = records
        self.anomalies = []
        self.setup = next((r for r in records if r["type"] == "setup"), {})
        self.ops = [r for r in records if r["type"] == "op"]
        self.puts = {r["vid"]: r for r in self.ops if r["op"] == "put"}
        self.writes = collections.defaultdict(list)
        for r in self.ops:
            if r["op"] in ("put", "delete") and r["outcome"] != "fail" and not r.get("noop"):
                self.writes[r["name"]].append(r)
        self.versions = self.learn_versions()
        self.windows = self.fault_windows()
        self.fault_starts = [start for start, _ in self.windows]
        # Reads (and names in listings) checked against the register rule,
        # and those among them whose version no record shows.
        self.checked = collections.Counter()
        self.unordered = 0
        self.indexes = {}
        self.by_digest = {}

    # --- what the history says ---------------------------------------------

    def learn_versions(self):
        """vid -> the versions the history shows it written with."""
        versions = collections.defaultdict(set)
        for r in self.records:
            if r["type"] in ("op", "final_get") and r.get("vid") and r.get("version"):
                if r.get("op", "get") in ("put", "get"):
                    versions[r["vid"]].add(r["version"])
        return versions

    def version_of(self, write):
        """The version a write is known to have, or None."""
        if write.get("version"):
            return write["version"]
        if write["op"] == "put":
            known = self.versions.get(write["vid"])
            if known:
                return max(known)
        return None

    def fault_windows(self):
        """[(start, settled_at)] for every fault; settled_at is INF if the
        swarm never settled after it."""
        windows, current = [], None
        for r in self.records:
            if r["type"] == "fault":
                current = [r["start"], INF]
                windows.append(current)
            elif r["type"] == "settled" and current is not None and current[1] == INF:
                current[1] = r["at"]
        initial = next((r["at"] for r in self.records if r["type"] == "started"), 0)
        return [(0, initial)] + [tuple(w) for w in windows]

    def settled_throughout(self, start, end):
        """Whether [start, end] lies wholly in a settled period: the last
        fault begun before `end` had settled by `start`. (Faults never
        overlap: each is healed and settled before the next.)"""
        i = bisect.bisect_right(self.fault_starts, end)
        return i == 0 or self.windows[i - 1][1] <= start

    def anomaly(self, kind, text, *records):
        self.anomalies.append({"kind": kind, "text": text, "records": list(records)})

    # --- the checks -----------------------------------------------------------

    def check(self):
        for r in self.ops:
            if r["op"] == "get" and r["outcome"] == "ok":
                self.check_read(r, r["name"], r.get("vid") if r["found"] else None,
                                r.get("version"), r["invoke"], r["complete"])
            elif r["op"] == "list" and r["outcome"] == "ok":
                self.check_list(r)
        self.check_final()
        for r in self.records:
            if r["type"] == "unsettled":
                self.anomaly("did not settle",
                             f"the swarm had not settled {r['waited_s']} s after healing "
                             f"{r['after']}", r)
        return self.anomalies

    def check_integrity(self, read, name, vid, digest_field, digest):
        put = self.puts.get(vid)
        if put is None or put["name"] != name:
            self.anomaly("phantom read", f"{name} returned bytes no put of it wrote", read)
            return None
        if put["outcome"] == "fail":
            self.anomaly("failed write read", f"{name} returned a put that failed", read, put)
        if put[digest_field] != digest:
            self.anomaly("torn read", f"{name} returned bytes that differ from put {vid}",
                         read, put)
        if put["invoke"] > read["complete"]:
            self.anomaly("read from the future", f"{name} returned put {vid} before it began",
                         read, put)
        return put

    def check_read(self, read, name, vid, version, invoke, complete, final=False):
        if vid is not None:
            if read.get("named") not in (None, name):
                self.anomaly("phantom read", f"{name} returned bytes of {read.get('named')}",
                             read)
                return
            if self.check_integrity(read, name, vid, "sha", read["sha"]) is None:
                return
        if not final and not self.settled_throughout(invoke, complete):
            return
        self.checked["final read" if final else "read"] += 1
        self.check_order(read, name, vid, version, invoke)

    def check_order(self, read, name, vid, version, invoke):
        index = self.index(name)
        if vid is None:
            late = index.undeleted_put(invoke, read["complete"])
            if late is not None:
                self.anomaly("lost write",
                             f"{name} read as not found, though put {late['vid']} was "
                             "acknowledged before the read began and no delete followed it",
                             late, read)
            return
        read_version = version or self.version_of(self.puts[vid])
        if read_version is None:
            self.unordered += 1
            return
        newest = index.newest_acknowledged(invoke)
        if newest is not None and read_version < newest[0]:
            what = "deleted file came back" if newest[1]["op"] == "delete" else "stale read"
            self.anomaly(what, f"{name} read version {read_version} after "
                         f"{newest[1]['op']} {newest[0]} was acknowledged", newest[1], read)

    def index(self, name):
        if name not in self.indexes:
            self.indexes[name] = NameIndex(self.writes[name], self.version_of)
        return self.indexes[name]

    def check_list(self, listing):
        """A listing is, for each name, a read of it: present with some
        content, or not found."""
        entries = listing["entries"]
        field = listing.get("digest", "blake3")
        if field not in self.by_digest:
            self.by_digest[field] = {(p["name"], p[field]): p for p in self.puts.values()}
        by_digest = self.by_digest[field]
        names = set(self.setup.get("names", []))
        settled = self.settled_throughout(listing["invoke"], listing["complete"])
        for name in entries:
            if name not in names:
                self.anomaly("phantom listing", f"{name} listed but never written", listing)
        for name in sorted(names):
            put = None
            if name in entries:
                put = by_digest.get((name, entries[name]))
                if put is None or put["outcome"] == "fail":
                    self.anomaly("phantom listing", f"{name} listed with content no put "
                                 "that may have applied wrote", listing)
                    continue
            if settled:
                self.checked["name in a listing"] += 1
                self.check_order(listing, name, put["vid"] if put else None, None,
                                 listing["invoke"])

    def check_final(self):
        finals = collections.defaultdict(list)
        for r in self.records:
            if r["type"] == "final_get":
                finals[r["name"]].append(r)
        for name, reads in finals.items():
            seen = {(r["found"], r.get("vid"), r.get("version")) for r in reads}
            if any(not r["ok"] for r in reads):
                self.anomaly("unreadable at the end", f"{name} failed to read at the end",
                             *[r for r in reads if not r["ok"]])
                continue
            if len(seen) > 1:
                self.anomaly("did not converge", f"{name} reads differently through the peers",
                             *reads)
                continue
            r = reads[0]
            self.check_read(r, name, r.get("vid") if r["found"] else None, r.get("version"),
                            INF, INF, final=True)
        live = {name: reads[0] for name, reads in finals.items() if reads[0]["found"]}
        for r in self.records:
            if r["type"] == "final_list":
                listed = set(r["entries"])
                if listed != set(live):
                    self.anomaly("listing disagrees", f"peer {r['peer']} lists "
                                 f"{len(listed - set(live))} names no read finds and misses "
                                 f"{len(set(live) - listed)}", r)
            elif r["type"] == "replication":
                copies = self.setup.get("replicas", 3)
                counts = [r["manifest"]] + r["chunks"]
                if any(c != copies for c in counts):
                    self.anomaly("wrong copy count", f"{r['name']} has copies {counts}, "
                                 f"not {copies} of each", r)
            elif r["type"] == "peer_final":
                if r["hinted"] or r["held_records"] or r["unreferenced_bytes"]:
                    self.anomaly("left over", f"peer {r['peer']} still holds hinted or "
                                 "unreferenced data after the grace time", r)

    # --- the report -------------------------------------------------------------

    def report(self):
        lines = ["# Chaos run report", ""]
        end = next((r for r in self.records if r["type"] == "end"), {})
        setup = self.setup
        lines.append(f"- peers: {setup.get('peers')}, copies: {setup.get('replicas')}, "
                     f"names: {len(setup.get('names', []))}, clients: {setup.get('clients')}, "
                     f"planned: {setup.get('minutes')} min, seed: {setup.get('seed')}")
        lines.append(f"- fault kinds available: {', '.join(setup.get('faults', []))}")
        if end:
            lines.append(f"- workload ran {end.get('workload_s')} s; converged "
                         f"{end.get('converge_s')} s after the last heal")
        lines += ["", "## Operations", "", "| operation | interface | ok | fail | info |",
                  "|---|---|---|---|---|"]
        table = collections.Counter((r["op"], r["iface"], r["outcome"]) for r in self.ops)
        for op, iface in sorted({(k[0], k[1]) for k in table}):
            lines.append(f"| {op} | {iface} | {table[(op, iface, 'ok')]} | "
                         f"{table[(op, iface, 'fail')]} | {table[(op, iface, 'info')]} |")
        checked = ", ".join(f"{n} {k}s" for k, n in sorted(self.checked.items()))
        lines.append(f"\nChecked against the register rule, in settled periods: {checked}; "
                     f"{self.unordered} of them returned a write whose version nothing showed.")
        faults = collections.Counter(r["fault"] for r in self.records if r["type"] == "fault")
        settles = [r["converge_s"] for r in self.records if r["type"] == "settled"]
        lines += ["", "## Faults", "", "| fault | times |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(faults.items())]
        if settles:
            settles.sort()
            lines.append(f"\nSettled after each heal in {settles[len(settles) // 2]} s "
                         f"(median), {settles[-1]} s (longest), over {len(settles)} heals.")
        lines += ["", f"## Anomalies: {len(self.anomalies)}", ""]
        for a in self.anomalies[:50]:
            lines.append(f"- **{a['kind']}**: {a['text']}")
            for rec in a["records"][:6]:
                lines.append(f"    - `{json.dumps(rec, sort_keys=True)[:600]}`")
        if len(self.anomalies) > 50:
            lines.append(f"- ... and {len(self.anomalies) - 50} more")
        return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("history")
    parser.add_argument("--report", help="also write the report to this file")
    args = parser.parse_args()
    checker = Checker(history.read(args.history))
    checker.check()
    text = checker.report()
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    sys.exit(1 if checker.anomalies else 0)


if __name__ == "__main__":
    main()
