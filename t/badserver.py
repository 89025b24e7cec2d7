#!/usr/bin/env python3
"""A smimp server that misbehaves, for the tests of what clients put up
with.  Plain HTTP on 127.0.0.1 (clients reach it through the resolve map
and allow-http), a free port written to PORTFILE once it listens, one
"METHOD PATH" line per request on stdout, and after it the lines
"Smimp-Introduction: VALUE" and "Expect: VALUE" for a request that has
that header.

    badserver.py PORTFILE MODE [ARG]

MODE says what goes wrong (none: nothing); everything else answers as a
server would that has no users.  The base URL it names is
http://127.0.0.1:PORT/smimp unless MODE is base: then it is what the
file ARG holds, read afresh for each request.  MODE files answers a GET
of PATH with the file ARG/PATH where there is one, so a test lays out
what a lying peer serves (its /v1/meta, the logs it hands out for whom;
while a file ARG/drop-logs exists, a request for a log is answered by
closing the connection);
a PATH that is a directory there is answered with its file .list (a
mailbox listing beside the messages it lists).
MODE receipt serves GETs as files does, and answers each POST
/v1/deliver with 201 and the receipt in the file ARG/receipt, read
afresh each time (none when there is no such file): a peer whose
receipts the test writes (t/1620-receipts.bats); a batch gets 404.
MODE status answers each POST /v1/deliver with the status that the file
ARG gives its message id on a line "ID STATUS" (503 for an id it does
not list) and the error "status N ESC[2J"; a batch gets 404, as from a
peer without batches.  MODE
discovery answers discovery with the status the file ARG holds.  MODE
words answers every request but discovery with 400 and the error whose
bytes the file ARG holds, as they are (JSON or not): a server whose
words are hostile.  MODE
requires plays a directory whose users have consent policies: the file
ARG/ADDRESS holds ADDRESS's requirements, one a line, as they change (a
line "-": no Smimp-Requires header).  The n-th lookup of ADDRESS (GET
.../users/ADDRESS/log) is answered 200 with line n (the last once they
run out), or 404 when there is no file; a submission is judged by the
line after the last one looked up (the policy changed meanwhile): 404
when it is pow:N and Smimp-Work names no proof for that recipient, else
201.  A submission's Smimp-Work goes to stdout after its request line.
Whatever the mode, a lookup (GET of a users/ADDRESS/log) without a
Smimp-Signature header gets 401, as from a real directory; a signature
is not checked.

With BADSERVER_TLS set to a TLS version (1, 1.1, 1.2, 1.3), it speaks
HTTPS with cert.pem and key.pem of the current directory, that version
only, at OpenSSL's security level 0 (which lets TLS 1.0 and 1.1 be
offered at all); the base URL it names is then https.  With
BADSERVER_SKEW set to a number of seconds, the Date of its answers is
that far from its clock (a peer whose clock is wrong).  With
BADSERVER_DELAY set to a number of seconds, it answers a POST of a
delivery that much later (a peer that reads slowly).
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time
import warnings

PORTFILE, MODE = sys.argv[1], sys.argv[2]
ARG = sys.argv[3] if len(sys.argv) > 3 else None
SKEW = int(os.environ.get("BADSERVER_SKEW", "0"))


# One line at a time: print() writes its words and its newline apart,
# and two threads' lines would run into each other.
said = threading.Lock()


def say(*words):
    """One line on standard output, whole."""
    with said:
        sys.stdout.write(" ".join(str(w) for w in words) + "\n")
        sys.stdout.flush()


def listing(ids):
    return json.dumps([{"id": i, "from": "a@example.org",
                        "message_id": "m%d@example.org" % i, "size": 20,
                        "received": "2026-11-24T22:00:00Z"} for i in ids])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer is two writes (the headers, the body): with Nagle's
    # algorithm the second waits for the client's delayed ACK of the
    # first, 40 ms a request on a reused connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):
        """The Date header's value: SKEW seconds off."""
        return super().date_time_string(
            (time.time() if timestamp is None else timestamp) + SKEW)

    def answer(self, status, body, ctype="application/json", length=True,
               headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            # Delimited by the end of the connection: no size up front.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def base(self):
        port = self.server.server_address[1]
        if MODE == "base":
            with open(ARG) as f:
                return f.read().strip()
        scheme = "https" if TLS else "http"
        return "%s://127.0.0.1:%d/smimp" % (scheme, port)

    def do_POST(self):
        self.do_GET()

    def do_DELETE(self):
        self.do_GET()

    def do_GET(self):
        say(self.command, self.path)
        for h in ("Smimp-Introduction", "Expect"):
            if self.headers.get(h) is not None:
                say(h + ":", self.headers.get(h))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path
        if self.command == "POST" and path.startswith("/smimp/v1/deliver"):
            time.sleep(float(os.environ.get("BADSERVER_DELAY", "0")))
        if MODE == "words" and path != "/.well-known/smimp.txt":
            with open(ARG, "rb") as f:
                return self.answer(400, b'{"error":"' + f.read() + b'"}')
        if path.startswith("/smimp/v1/users/") and path.endswith("/log") \
                and self.command == "GET" and \
                not self.headers.get("Smimp-Signature"):
            # As a real directory: lookups are signed (not checked here).
            return self.answer(401, '{"error":"missing signature"}')
        if MODE == "requires" and path.startswith("/smimp/v1/"):
            return self.requires(path)
        if MODE == "files" and path.endswith("/log") and \
                os.path.isfile(ARG + "/drop-logs"):
            # A peer whose users' logs never come: the connection ends
            # without an answer.
            self.close_connection = True
            return None
        if MODE in ("files", "receipt") and self.command == "GET":
            name = os.path.normpath(ARG + "/" + path.split("?")[0])
            if os.path.isdir(name):
                name += "/.list"
            if name.startswith(os.path.normpath(ARG) + "/") and \
                    os.path.isfile(name):
                with open(name, "rb") as f:
                    return self.answer(200, f.read(),
                                       "application/octet-stream")
        if MODE == "receipt" and self.command == "POST" and \
                path == "/smimp/v1/deliver":
            answer = {"message_id": self.headers.get("Smimp-Message-Id")}
            if os.path.isfile(ARG + "/receipt"):
                with open(ARG + "/receipt") as f:
                    answer["receipt"] = f.read()
            return self.answer(201, json.dumps(answer))
        if MODE == "status" and self.command == "POST" and \
                path == "/smimp/v1/deliver":
            # ARG: lines of "MESSAGE-ID STATUS"; 503 for any other id.
            mid, status = self.headers.get("Smimp-Message-Id", ""), 503
            with open(ARG) as f:
                for line in f:
                    if line.split()[:1] == [mid]:
                        status = int(line.split()[1])
            # Its words carry a terminal escape, raw.
            return self.answer(status, '{"error":"status %d \x1b[2J"}' %
                               status)
        if path == "/.well-known/smimp.txt":
            if MODE == "discovery":
                # ARG holds the status to answer now.
                with open(ARG) as f:
                    status = int(f.read().split()[0])
                if status != 200:
                    return self.answer(status, '{"error":"status %d"}' %
                                       status)
            if MODE == "dead":
                return self.answer(404, '{"error":"no such thing"}')
            if MODE == "big-discovery":
                return self.answer(200, self.base() + "/" * 600 + "\n",
                                   "text/plain", length=False)
            if MODE == "redirect":
                self.send_response(302)
                self.send_header("Location", self.base() + "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if MODE == "trickle":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"h")
                    self.wfile.flush()
                    time.sleep(1)
                return None
            return self.answer(200, self.base() + "\n", "text/plain")
        if path == "/smimp/v1/meta" and MODE == "big-meta":
            return self.answer(200, json.dumps(
                {"domain": "example.org", "pad": "x" * 9000}))
        if path.startswith("/smimp/v1/users/") and path.endswith("/log"):
            if MODE == "big-log":
                return self.answer(200, b"x" * (1024 * 1024 + 1),
                                   "application/octet-stream", length=False)
            if MODE == "wrong-log":
                with open(ARG, "rb") as f:
                    return self.answer(200, f.read(),
                                       "application/octet-stream")
        if path == "/smimp/v1/mailbox":
            if MODE == "big-listing":
                entry = {"id": 1, "from": "a@example.org",
                         "message_id": "m" * 200, "size": 1,
                         "received": "2026-11-24T22:00:00Z"}
                return self.answer(200, json.dumps([entry] * 4000),
                                   length=False)
            if MODE == "stuck-mailbox":
                # A full page, the same every time: acknowledgements
                # are taken and ignored.
                return self.answer(200, listing(range(1, 1001)))
            if MODE == "lagging-mailbox":
                # As a replica behind would: the second full page starts
                # with half of the first, the third is short.
                self.server.listings += 1
                first = {1: 1, 2: 501}.get(self.server.listings, 1501)
                last = 1510 if first == 1501 else first + 999
                return self.answer(200, listing(range(first, last + 1)))
            return self.answer(200, "[]")
        if path.startswith("/smimp/v1/mailbox/") and MODE.endswith("-mailbox"):
            if path == "/smimp/v1/mailbox/ack":
                return self.answer(200, '{"acknowledged":64}')
            return self.answer(200, "not a message, number %s\n" %
                               path.rsplit("/", 1)[1],
                               "application/octet-stream")
        return self.answer(404, '{"error":"no such thing"}')

    def policy(self, addr):
        """ADDRESS's requirement now: the line after those looked up."""
        name = os.path.join(ARG, addr)
        if "/" in addr or addr.startswith(".") or not os.path.isfile(name):
            return "-"
        with open(name) as f:
            lines = f.read().split() or ["-"]
        n = self.server.lookups.get(addr, 0)
        return lines[min(n, len(lines) - 1)]

    def requires(self, path):
        """MODE requires: lookups and submissions (see the top)."""
        prefix, suffix = "/smimp/v1/users/", "/log"
        if self.command == "GET" and path.startswith(prefix) and \
                path.endswith(suffix):
            addr = path[len(prefix):-len(suffix)]
            name = os.path.join(ARG, addr)
            if "/" in addr or addr.startswith(".") or \
                    not os.path.isfile(name):
                return self.answer(404, '{"error":"no such user"}')
            now = self.policy(addr)
            self.server.lookups[addr] = self.server.lookups.get(addr, 0) + 1
            return self.answer(200, b"a log\n", "application/octet-stream",
                               headers={} if now == "-" else
                               {"Smimp-Requires": now})
        if self.command == "POST" and path == "/smimp/v1/messages":
            work = self.headers.get("Smimp-Work") or ""
            say("Smimp-Work:", work or "-")
            proofs = [p.split("=")[0] for p in work.split(",") if p]
            for rcpt in self.headers.get("Smimp-To", "").split(","):
                rcpt = rcpt.strip()
                if self.policy(rcpt).startswith("pow:") and \
                        rcpt not in proofs:
                    return self.answer(404, '{"error":"unknown recipient"}')
            return self.answer(201, json.dumps(
                {"message_id": self.headers.get("Smimp-Message-Id"),
                 "recipients": 1}))
        return self.answer(404, '{"error":"no such thing"}')


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that refuses the handshake is what some tests want.
        pass


TLS = os.environ.get("BADSERVER_TLS")
server = Server(("127.0.0.1", 0), Handler)
if TLS:
    # Python warns that TLS 1.0 and 1.1 are old: that is the point.
    warnings.simplefilter("ignore", DeprecationWarning)
    version = {"1": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
               "1.2": ssl.TLSVersion.TLSv1_2,
               "1.3": ssl.TLSVersion.TLSv1_3}[TLS]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain("cert.pem", "key.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
server.listings = 0
server.lookups = {}
with open(PORTFILE + ".tmp", "w") as f:
    f.write("%d\n" % server.server_address[1])
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
