"""The history of a chaos run: one JSON object per line, times in seconds
from the start of the run on one monotonic clock."""

import json
import threading
import time


class History:
    def __init__(self, path):
        self.path = path
        self.file = open(path, "w")
        self.lock = threading.Lock()
        self.origin = time.monotonic()

    def now(self):
        return round(time.monotonic() - self.origin, 4)

    def write(self, **record):
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self):
        self.file.close()


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
