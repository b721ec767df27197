#!/usr/bin/env python3
"""A chaos run: a swarm, clients, a nemesis, then the checks (see
scripts/chaos.sh for how to start one, and check.py for what is checked).

    run.py SHOAL WORK MINUTES PEERS [--seed N] [--clients N] [--names N]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

from check import Checker
from history import History
from history import read as read_history
from nemesis import Nemesis
from swarm import Swarm, http_json
from workload import BUCKET, CHUNK_SIZE, Client, Http, identify, sha

# Short timings, so that a fault is noticed and healed in seconds and the
# end state (grace times passed) is reached within a minute.
FLAGS = [
    "--chunk-size", str(CHUNK_SIZE), "--repair-interval", "3s", "--gc-grace", "20s",
    "--gc-interval", "5s", "--audit-interval", "20s", "--scrub-interval", "2m",
    "--rereplicate-after", "30s", "--tombstone-ttl", "3h",
]
SETTLE_TIMEOUT = 180


def tools_available(root, peers):
    """Which optional faults this machine allows."""
    in_own_netns = os.environ.get("SHOAL_CHAOS_NETNS") == "1"
    iptables = in_own_netns and shutil.which("iptables") is not None and subprocess.run(
        ["iptables", "-w", "-L", "-n"], capture_output=True, check=False).returncode == 0
    disks = None
    if os.geteuid() == 0 and in_own_netns:
        disks = []
        for i in range(peers):
            mount = os.path.join(root, f"disk{i}")
            os.makedirs(mount, exist_ok=True)
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=768m", "tmpfs", mount],
                                  capture_output=True, check=False)
            if done.returncode != 0:
                disks = None
                break
            disks.append(mount)
    faketime = os.path.exists("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
    return {"iptables": iptables, "disks": disks, "faketime": faketime}


def s3_setup(peer):
    """An access key and the bucket every S3 client uses."""
    status, _, body = Http.call(peer.api_port, "POST", "/v1/s3/keys",
                                json.dumps({"name": "chaos"}).encode(),
                                {"content-type": "application/json"})
    if status not in (200, 201):
        raise RuntimeError(f"cannot create an S3 key: {status} {body!r}")
    key = json.loads(body)
    pair = (key["access_key_id"], key["secret_access_key"])
    import boto3

    client = boto3.client("s3", endpoint_url=peer.s3, region_name="us-east-1",
                          aws_access_key_id=pair[0], aws_secret_access_key=pair[1])
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            return pair
        except Exception:  # noqa: BLE001 - the key may not have spread yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def final_checks(swarm, history, names):
    """Reads every name through every peer, lists through every peer, and
    records each file's copy counts and what each peer still holds."""
    for name in names:
        for peer in swarm.peers:
            started = history.now()
            path = "/v1/file?name=" + urllib.parse.quote(name, safe="")
            status, headers, body = Http.call(peer.api_port, "GET", path)
            record = dict(type="final_get", peer=peer.index, name=name, invoke=started,
                          complete=history.now(), ok=status in (200, 404),
                          found=status == 200, status=status)
            if status == 200:
                named, vid = identify(body)
                record.update(vid=vid, named=named, sha=sha(body),
                              version=headers.get("x-shoal-version"))
            history.write(**record)
    for peer in swarm.peers:
        entries, after = {}, ""
        while True:
            query = urllib.parse.urlencode({"prefix": f"{BUCKET}/", "after": after})
            status, _, body = Http.call(peer.api_port, "GET", f"/v1/files?{query}")
            if status != 200:
                entries = {"error": str(status)}
                break
            page = json.loads(body)
            entries.update({f["name"]: f["blake3"] for f in page["files"]})
            if not page.get("next"):
                break
            after = page["next"]
        history.write(type="final_list", peer=peer.index, entries=entries)
    first = swarm.peers[0]
    for name in names:
        stat = http_json(f"{first.api}/v1/manifest?name={urllib.parse.quote(name, safe='')}",
                         timeout=30)
        if stat is None:
            continue
        history.write(type="replication", name=name,
                      manifest=len(set(stat.get("manifest_replicas", []))),
                      chunks=[len(set(c["replicas"])) for c in stat.get("chunks", [])])


def wait_for_leftovers(swarm, history, timeout):
    """Waits until no peer holds hinted or unreferenced data, then records
    what each peer holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = swarm.statuses()
        if all(s and not (s["store"]["hinted_chunks"] or s["repair"]["held_records"]
                          or s["store"]["unreferenced_bytes"]) for _, s in statuses):
            break
        time.sleep(1)
    for peer, s in swarm.statuses():
        history.write(type="peer_final", peer=peer.index,
                      hinted=s["store"]["hinted_chunks"] if s else None,
                      held_records=s["repair"]["held_records"] if s else None,
                      unreferenced_bytes=s["store"]["unreferenced_bytes"] if s else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("shoal")
    parser.add_argument("work")
    parser.add_argument("minutes", type=float)
    parser.add_argument("peers", type=int)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--base-port", type=int, default=21000)
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    secret = os.path.join(args.work, "secret")
    subprocess.run([args.shoal, "keygen", "-o", secret], check=True, capture_output=True)
    tools = tools_available(args.work, args.peers)
    history = History(os.path.join(args.work, "history.jsonl"))
    names = [f"{BUCKET}/n{i:03d}" for i in range(args.names)]
    swarm = Swarm(args.shoal, args.work, args.peers, FLAGS + ["--secret-file", secret],
                  {"RUST_LOG": "info"}, args.base_port, tools["disks"])
    stop_workload, stop_nemesis = threading.Event(), threading.Event()
    nemesis = None
    try:
        swarm.start()
        s3_key = s3_setup(swarm.peers[0])
        nemesis = Nemesis(swarm, history, stop_nemesis, args.seed + 1, tools, SETTLE_TIMEOUT)
        history.write(type="setup", peers=args.peers, replicas=3, names=names,
                      clients=args.clients, minutes=args.minutes, seed=args.seed,
                      faults=sorted(nemesis.faults))
        if not nemesis.settle("start"):
            raise RuntimeError("the swarm did not settle after starting")
        history.write(type="started", at=history.now())
        print(f"chaos: {args.peers} peers, faults: {', '.join(sorted(nemesis.faults))}; "
              f"seed {args.seed}; history in {history.path}", flush=True)
        clients = [
            Client(i, "s3" if i % 3 == 2 else "native", swarm, names, history, stop_workload,
                   args.seed * 100 + i, s3_key)
            for i in range(args.clients)
        ]
        began = time.monotonic()
        for c in clients:
            c.start()
        fault_thread = threading.Thread(target=nemesis.loop, daemon=True)
        fault_thread.start()
        stop_nemesis.wait(args.minutes * 60)
        stop_nemesis.set()
        fault_thread.join()
        stop_workload.set()
        for c in clients:
            c.join()
        workload_s = round(time.monotonic() - began)
        nemesis.heal_all()
        last_heal = history.now()
        history.write(type="heal", fault="all", at=last_heal)
        settled = nemesis.settle("the end", strict=True)
        converge_s = round(history.now() - last_heal, 1)
        for peer in swarm.peers:
            http_json(f"{peer.api}/v1/scrub", method="POST", timeout=300)
        nemesis.settle("the final scrub", strict=True)
        wait_for_leftovers(swarm, history, timeout=240)
        final_checks(swarm, history, names)
        history.write(type="end", workload_s=workload_s,
                      converge_s=converge_s if settled else None)
    finally:
        stop_nemesis.set()
        stop_workload.set()
        if nemesis:
            nemesis.close()
        swarm.stop()
        for disk in tools["disks"] or []:
            subprocess.run(["umount", "-l", disk], capture_output=True, check=False)
        history.close()

    checker = Checker(read_history(history.path))
    checker.check()
    report = checker.report()
    with open(os.path.join(args.work, "report.md"), "w") as f:
        f.write(report)
    print(report)
    sys.exit(1 if checker.anomalies else 0)


if __name__ == "__main__":
    main()
