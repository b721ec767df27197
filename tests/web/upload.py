"""Uploads a file through shoal's web page in headless Chromium, driven
over the DevTools protocol: opens /files, hands the page's file input a
local file (as a user choosing it would), and waits until the page, once
the upload is done and it has reloaded, lists the file.

    upload.py CHROMIUM PAGE_URL FILE [TOKEN]

With TOKEN, it first signs in through the page's form, as a person would
on a peer that needs a token. Prints the listing's text and exits 0 once the file is listed; exits 1 with
the reason otherwise.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

DEADLINE = 60


class Page:
    """One browser tab, spoken to over its DevTools socket."""

    def __init__(self, socket_url):
        self.socket = websocket.create_connection(
            socket_url, timeout=DEADLINE, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, what, expression):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except (RuntimeError, websocket.WebSocketException):
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {what}")


def start_browser(chromium, profile):
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.monotonic() + DEADLINE
    for line in browser.stderr:
        if "DevTools listening on ws://" in line:
            port = line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
            return browser, int(port)
        if time.monotonic() > deadline:
            break
    stop_browser(browser)
    raise SystemExit("chromium did not open its DevTools port")


def stop_browser(browser):
    """Stops Chromium and every process it started (they share its
    session)."""
    try:
        os.killpg(browser.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    browser.wait()


def sign_in(page, page_url, token):
    """Signs in through the page's form, as a person pasting a token."""
    page.call("Page.navigate", url=page_url + "/login")
    page.wait_for("the sign-in form", "document.readyState === 'complete' && "
                  "!!document.getElementById('token')")
    page.evaluate(f"document.getElementById('token').value = {json.dumps(token)}; "
                  "document.querySelector('form[action=\"/login\"]').submit(); true")
    page.wait_for("the overview after signing in", "document.readyState === 'complete' && "
                  "location.pathname === '/' && !!document.querySelector('.verdict')")


def main():
    chromium, page_url, path = sys.argv[1:4]
    token = sys.argv[4] if len(sys.argv) > 4 else None
    name = os.path.basename(path)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser, port = start_browser(chromium, profile)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = json.load(answer)
            tab = next(t for t in targets if t["type"] == "page")
            page = Page(tab["webSocketDebuggerUrl"])
            page.call("Page.enable")
            if token:
                sign_in(page, page_url, token)
            page.call("Page.navigate", url=page_url + "/files")
            page.wait_for("the upload form", "document.readyState === 'complete' && "
                          "!!document.getElementById('pick-files') && "
                          "!document.getElementById('upload').hidden")
            root = page.call("DOM.getDocument")["root"]["nodeId"]
            picker = page.call("DOM.querySelector", nodeId=root, selector="#pick-files")["nodeId"]
            page.call("DOM.setFileInputFiles", nodeId=picker, files=[os.path.abspath(path)])
            listing = page.wait_for(
                f"{name} in the listing",
                f"(() => {{ const t = document.getElementById('listing'); "
                f"return t && t.innerText.includes({json.dumps(name)}) ? t.innerText : null; }})()")
            print(listing)
        finally:
            stop_browser(browser)


if __name__ == "__main__":
    main()
