"""Serves a MapProxy configuration for scripts/bench-e2e.sh.

    python3 bench_e2e_mapproxy.py mapproxy.yaml PORTFILE PROCESSES [ACCESSLOG]

Run it with the Python that runs mapproxy-util (/usr/bin/python3 for the
Debian package). It is the WSGI runner of source/sourcetest
(the standard library's threaded WSGI server on 127.0.0.1 and a port the
kernel picks), pre-forked into PROCESSES processes that share the listening
socket, as gunicorn's sync workers would: one Python process is held to one
core by the GIL, and a benchmark on a machine with several must not measure
that. Once it listens it writes "port pid1 pid2 ..." to PORTFILE
(atomically). With ACCESSLOG, each request appends a line "status
pixels time query" (pixels of a GetMap, else 0; the Unix time the request
was answered; the query string as sent, or - without one) to that file, so
the caller can count requests and pixels served, time the first GetMap of
a case and see the exact parameters each client sends. SIGTERM or SIGINT stops the children and then
the parent.
"""

import logging
import os
import signal
import sys
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mapproxy.wsgiapp import make_wsgi_app


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


ACCESS = None  # file descriptor of the access log, or None


class Handler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        if ACCESS is None:
            return
        raw = self.path.partition("?")[2]
        q = raw.upper()
        pixels = 0
        if "REQUEST=GETMAP" in q:
            args = dict(kv.partition("=")[::2] for kv in q.split("&"))
            try:
                pixels = int(args.get("WIDTH", 0)) * int(args.get("HEIGHT", 0))
            except ValueError:
                pass
        os.write(ACCESS, ("%s %d %.3f %s\n" % (code, pixels, time.time(), raw or "-")).encode())

    def log_message(self, format, *args):
        pass


def main():
    global ACCESS
    conf, port_file, processes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        ACCESS = os.open(sys.argv[4], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app = make_wsgi_app(conf)
    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Handler)
    children = []
    for _ in range(max(1, processes)):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            try:
                server.serve_forever()
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(port_file + ".tmp", "w") as f:
        f.write(" ".join(str(v) for v in [server.server_port] + children))
    os.rename(port_file + ".tmp", port_file)
    sys.stderr.write("listening on 127.0.0.1:%d, processes %s\n" % (server.server_port, children))
    sys.stderr.flush()
    # A child that dies takes the server's capacity with it: stop all.
    pid, status = os.wait()
    sys.stderr.write("mapproxy process %d exited (status %d); stopping\n" % (pid, status))
    children.remove(pid)
    stop(None, None)


if __name__ == "__main__":
    main()
