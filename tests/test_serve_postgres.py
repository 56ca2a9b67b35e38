"""The deployment the README documents: two ``ohlog serve`` on one PostgreSQL behind nginx.

nginx (Debian's package) runs from a configuration in a temporary
directory, every path of its own in there, listening on a free loopback
port; it spreads requests over the two servers and, when a connection to one
fails, tries the other.
"""

import http.client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading

import pytest

from .conftest import OHLOG
from .test_cli_serve import DEADLINE, LISTENING, count_actions, wait_for

SAMPLE = json.loads((pathlib.Path(__file__).parent.parent / "examples" / "sample_log.json").read_text())
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_CONF = """
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream ohlog {{
        server 127.0.0.1:{port1};
        server 127.0.0.1:{port2};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ohlog;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(db, log):
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([OHLOG, "serve", "--db", db, "--port", "0"], stdin=subprocess.DEVNULL,
                                stdout=stderr, stderr=stderr)

    def started():
        assert proc.poll() is None, f"ohlog serve exited: {log.read_text()}"
        return LISTENING.search(log.read_text())

    return proc, int(wait_for(started, "ohlog serve did not start").group(1))


def start_nginx(directory, ports):
    """nginx in the foreground, as its own process; ``(process, port)``."""
    for _ in range(5):  # the port is free when chosen; another process may take it first
        port = free_port()
        conf = directory / "nginx.conf"
        user = "user root root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(dir=directory, port=port, port1=ports[0], port2=ports[1],
                                          user=user))
        proc = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(conf),
                                 "-e", str(directory / "error.log")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def listening():
            if proc.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return "listening"
            except OSError:
                return None

        if wait_for(listening, "nginx did not start") == "listening":
            return proc, port
    pytest.fail("nginx could not start: " + (directory / "error.log").read_text())


def post_all(port, sessions, threads=20, after_each=None):
    """POST each session through ``port`` from ``threads`` threads, resending one that gets 502,
    503 or 504 (as a client following Retry-After would); every final response, by sessionId,
    and how many were resent."""
    results, resent = {}, [0]
    lock = threading.Lock()
    per_thread = [sessions[i::threads] for i in range(threads)]

    def client(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for doc in mine:
            for _ in range(20):
                try:
                    conn.request("POST", "/api/log", json.dumps(doc),
                                 {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status = None
                else:
                    status = response.status
                if status not in (None, 502, 503, 504):
                    break
                with lock:
                    resent[0] += 1
            with lock:
                results[doc["sessionId"]] = (status, json.loads(body))
                if after_each:
                    after_each(len(results))
        conn.close()

    workers = [threading.Thread(target=client, args=(mine,)) for mine in per_thread]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(worker.is_alive() for worker in workers), "a client hung"
    return results, resent[0]


def stored_sessions(url):
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT session_id, count(*) FROM actions GROUP BY session_id"))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(NGINX), reason="needs nginx (apt-get install nginx)")
def test_two_servers_behind_nginx_store_every_post_once_even_when_one_is_killed(tmp_path, pg_db_url):
    serves = [start_serve(pg_db_url, tmp_path / f"serve{i}.log") for i in (1, 2)]
    nginx = None
    try:
        nginx, port = start_nginx(tmp_path, [p for _, p in serves])
        # 1,000 concurrent POSTs: each 200 with its own counts, each action stored once
        first = [{**SAMPLE, "sessionId": f"A{i}"} for i in range(1000)]
        results, resent = post_all(port, first)
        assert resent == 0
        assert len(results) == 1000
        assert all(got == (200, {"inserted": 3, "duplicates": 0}) for got in results.values())
        assert count_actions(pg_db_url) == 3000
        both = [(tmp_path / f"serve{i}.log").read_text().count('"POST /api/log') for i in (1, 2)]
        assert min(both) > 0, f"nginx used one server only: {both}"

        # 1,000 more, and kill -9 of one server once 200 have been answered
        killed = threading.Event()

        def kill_one(answered):
            if answered >= 200 and not killed.is_set():
                killed.set()
                serves[0][0].kill()  # SIGKILL, by its pid

        second = [{**SAMPLE, "sessionId": f"B{i}"} for i in range(1000)]
        results, resent = post_all(port, second, after_each=kill_one)
        assert killed.is_set() and serves[0][0].wait(timeout=DEADLINE) == -9
        assert {status for status, _ in results.values()} == {200}
        stored = stored_sessions(pg_db_url)
        for session, (_, counts) in results.items():
            assert stored.get(session) == 3, session  # a POST that got a 200 is in the database
            assert counts["inserted"] + counts["duplicates"] == 3
            # duplicates only where a resent POST's first try had been stored before the kill
            assert counts == {"inserted": 3, "duplicates": 0} or resent, counts
        assert sum(c["duplicates"] for _, c in results.values()) <= 3 * resent
        assert count_actions(pg_db_url) == 6000  # stored exactly once
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=DEADLINE)
        for proc, _ in serves:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=DEADLINE)
