"""The checker finds each kind of anomaly it claims to, and nothing in
histories the model allows. Run by tests/chaos.rs (`python -m pytest`)."""

import pytest

from check import Checker

NAME = "chaos/n000"


class Story:
    """A history written op by op, with made-up times and versions."""

    def __init__(self):
        self.records = [
            {"type": "setup", "names": [NAME], "replicas": 3, "peers": 5},
            {"type": "started", "at": 1.0},
        ]
        self.clock = 10.0
        self.seq = 0

    def tick(self):
        self.clock += 1.0
        return self.clock

    def put(self, version, outcome="ok", vid=None, iface="native"):
        self.seq += 1
        vid = vid or f"c0-{self.seq}"
        invoke, complete = self.tick(), self.tick()
        self.records.append(dict(
            type="op", op="put", client=0, iface=iface, peer=0, name=NAME, invoke=invoke,
            complete=complete, outcome=outcome, version=version if outcome == "ok" else None,
            vid=vid, sha=f"sha-{vid}", blake3=f"b3-{vid}", etag=f"etag-{vid}", size=10))
        return vid

    def delete(self, version, outcome="ok"):
        invoke, complete = self.tick(), self.tick()
        self.records.append(dict(
            type="op", op="delete", client=0, iface="native", peer=0, name=NAME, invoke=invoke,
            complete=complete, outcome=outcome, version=version, noop=False))

    def get(self, vid, version, sha=None):
        invoke, complete = self.tick(), self.tick()
        found = vid is not None
        record = dict(type="op", op="get", client=1, iface="native", peer=1, name=NAME,
                      invoke=invoke, complete=complete, outcome="ok", found=found,
                      version=version if found else None)
        if found:
            record.update(vid=vid, named=NAME, sha=sha or f"sha-{vid}", size=10)
        self.records.append(record)

    def listing(self, vid):
        invoke, complete = self.tick(), self.tick()
        entries = {NAME: f"b3-{vid}"} if vid else {}
        self.records.append(dict(type="op", op="list", client=1, iface="native", peer=1,
                                 name=None, invoke=invoke, complete=complete, outcome="ok",
                                 entries=entries, digest="blake3"))

    def fault(self):
        self.records.append({"type": "fault", "fault": "kill", "start": self.tick()})

    def settled(self):
        self.records.append({"type": "settled", "at": self.tick(), "after": "kill"})

    def final(self, vid, version, peers=3):
        for peer in range(peers):
            record = dict(type="final_get", peer=peer, name=NAME, invoke=self.tick(),
                          complete=self.tick(), ok=True, found=vid is not None)
            if vid:
                record.update(vid=vid, named=NAME, sha=f"sha-{vid}", version=version)
            self.records.append(record)

    def kinds(self):
        checker = Checker(self.records)
        checker.check()
        return sorted({a["kind"] for a in checker.anomalies})


def test_a_clean_history_has_no_anomaly():
    s = Story()
    a = s.put("v1")
    s.get(a, "v1")
    b = s.put("v2")
    s.get(b, "v2")
    s.listing(b)
    s.delete("v3")
    s.get(None, None)
    s.listing(None)
    s.final(None, None)
    assert s.kinds() == []


def test_a_stale_read_while_settled_is_found():
    s = Story()
    a = s.put("v1")
    s.put("v2")
    s.get(a, "v1")
    assert s.kinds() == ["stale read"]


def test_a_stale_read_during_a_fault_is_allowed():
    s = Story()
    a = s.put("v1")
    s.put("v2")
    s.fault()
    s.get(a, "v1")
    s.settled()
    assert s.kinds() == []


def test_a_lost_write_is_found():
    s = Story()
    s.put("v1")
    s.get(None, None)
    assert s.kinds() == ["lost write"]


def test_a_deleted_file_coming_back_is_found():
    s = Story()
    a = s.put("v1")
    s.delete("v2")
    s.final(a, "v1")
    assert s.kinds() == ["deleted file came back"]


def test_a_put_after_a_delete_brings_the_file_back():
    s = Story()
    s.delete("v1")
    a = s.put("v2")
    s.final(a, "v2")
    assert s.kinds() == []


def test_a_later_stamped_write_wins_over_an_earlier_acknowledged_one():
    s = Story()
    s.put("v5")
    b = s.put("v3")  # acknowledged later, stamped earlier: LWW keeps v5
    s.final(b, "v3")
    assert s.kinds() == ["stale read"]


def test_an_unknown_write_may_surface_later():
    s = Story()
    s.put("v1")
    b = s.put(None, outcome="info")
    s.get(b, "v2")
    s.final(b, "v2")
    assert s.kinds() == []


def test_torn_phantom_and_failed_reads_are_found():
    s = Story()
    a = s.put("v1")
    s.get(a, "v1", sha="other bytes")
    assert "torn read" in s.kinds()
    s = Story()
    s.get("c9-9", "v9")
    assert s.kinds() == ["phantom read"]
    s = Story()
    f = s.put(None, outcome="fail")
    s.get(f, "v1")
    assert "failed write read" in s.kinds()


def test_a_listing_is_checked_like_a_read():
    s = Story()
    a = s.put("v1")
    s.put("v2")
    s.listing(a)
    assert s.kinds() == ["stale read"]
    s = Story()
    s.listing("c7-7")
    assert s.kinds() == ["phantom listing"]


def test_peers_that_disagree_at_the_end_are_found():
    s = Story()
    a = s.put("v1")
    b = s.put("v2")
    s.final(b, "v2", peers=2)
    s.final(a, "v1", peers=1)
    assert "did not converge" in s.kinds()


@pytest.mark.parametrize("field", ["hinted", "held_records", "unreferenced_bytes"])
def test_leftovers_and_wrong_copy_counts_are_found(field):
    s = Story()
    leftover = dict(type="peer_final", peer=0, hinted=0, held_records=0, unreferenced_bytes=0)
    leftover[field] = 1
    s.records.append(leftover)
    s.records.append(dict(type="replication", name=NAME, manifest=3, chunks=[3, 2]))
    assert s.kinds() == ["left over", "wrong copy count"]
