"""A real browser for the tests: headless Chromium loading pages from a local web server.

``PageServer`` serves pages (HTML given as text) on 127.0.0.1, which a browser
reaches as two origins: ``http://localhost:PORT`` and ``http://127.0.0.1:PORT``.
A page's script reports what it saw with ``POST /report/NAME`` to its own
server, and the test waits for the reports. ``chromium(url)`` runs the browser
on a page until the block ends. Without Chromium the tests skip, loudly, but
fail under CI=true.
"""

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

CHROMIUM_SKIP = "Chromium tests skipped"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_command():
    """The Chromium program; skips the test without one (fails it under CI=true)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "no chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs Chromium: {message}", pytrace=False)
    pytest.skip(f"{CHROMIUM_SKIP}: {message} (under CI=true this is a failure)")


class PageServer(http.server.ThreadingHTTPServer):
    """Pages by path; the reports their scripts send, by name."""

    daemon_threads = True

    def __init__(self, pages):
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.pages = pages
        self.reports = {}
        self.arrived = threading.Condition()

    @property
    def port(self):
        return self.server_address[1]

    def wait_for(self, names, deadline):
        """The reports named, once all have arrived; AssertionError after ``deadline`` s."""
        end = time.monotonic() + deadline
        with self.arrived:
            while not set(names) <= set(self.reports):
                left = end - time.monotonic()
                assert left > 0, f"the page reported {sorted(self.reports)}, not {sorted(names)}"
                self.arrived.wait(left)
            return {name: self.reports[name] for name in names}


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        page = self.server.pages.get(self.path)
        data = page.encode() if page is not None else b"not found"
        self.send_response(200 if page is not None else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/report/"):
            with self.server.arrived:
                self.server.reports[self.path[len("/report/"):]] = json.loads(data)
                self.server.arrived.notify_all()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass  # quiet


@contextlib.contextmanager
def serving_pages(pages):
    server = PageServer(pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(url):
    """Headless Chromium on ``url`` until the block ends, in a profile of its own."""
    command = chromium_command()
    with tempfile.TemporaryDirectory(prefix="ohlog-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        # A session of its own: its helper processes (renderers, zygote) end with it
        proc = subprocess.Popen([command, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the group of the process we started
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
