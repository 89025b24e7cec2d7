#!/usr/bin/env python3
"""A misbehaving front for a real smimpd, for the relay's fault suite:
HTTPS on 127.0.0.1:PORT with cert.pem and key.pem of the current
directory, each request passed on to the smimpd at 127.0.0.1:UPSTREAM
and its answer passed back, but for deliveries (POST .../v1/deliver
and .../v1/deliver-batch), each of which gets the next action of the
file PLAN (one a line, round and round; the place in it is kept in
PLAN.pos, so that a proxy started again goes on where the last one
stopped; the proxy's pid goes to PLAN.pid):

    pass        passed on, answered as the server answered
    drop        the connection closed before anything is passed on
    503         answered 503 at once, nothing passed on
    drop-after  passed on (the server stores it), then the connection
                closed without an answer
    500-after   passed on, then answered 500 whatever the server said
    cut         half of the body passed on, then both connections closed
    kill        passed on, then the proxy kills itself (SIGKILL) before
                it answers: a peer killed in the middle of a request
    slow        passed on as it comes, but the body in 16 pieces over
                about a second (FLAKYPROXY_SLOW seconds, when set),
                "begin PATH" on stdout before the first: a test can
                kill the server while it reads
    hang-after  passed on (the server stores it), then no answer for a
                minute: a test can kill the client while it waits

    flakyproxy.py PORT UPSTREAM PLAN [PATHS]

PATHS, comma-separated, names the POST requests (by the end of their
path) that follow the plan instead of the deliveries, for instance
/v1/messages for submissions.

A misdeed that needs the server to take the delivery first (drop-after,
500-after, kill, hang-after) is done again on the next delivery while
the server does not take it (answers 503, say): the plan moves on only
once it was done.

One line per delivery on stdout: "ACTION PATH STATUS", STATUS the
server's answer or "-" when it was not asked or did not answer.  When
the server cannot be reached (killed, say), the client's connection is
closed without an answer, as a dead server's would be.
"""
import http.client
import http.server
import os
import signal
import socket
import ssl
import sys
import threading
import time

PORT, UPSTREAM, PLAN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SLOW = float(os.environ.get("FLAKYPROXY_SLOW", "1"))
PLANNED = tuple(sys.argv[4].split(",")) if len(sys.argv) > 4 else \
    ("/v1/deliver", "/v1/deliver-batch")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
       "proxy-connection", "te", "trailer", "upgrade"}
lock = threading.Lock()
# Deliveries between taking their action and printing it: a kill waits
# for them, or their lines would die with the proxy untold.
told = threading.Condition()
untold = 0
# One line at a time: print() writes its words and its newline apart,
# and two threads' lines would run into each other.
said = threading.Lock()


def say(*words):
    """One line on standard output, whole."""
    with said:
        sys.stdout.write(" ".join(str(w) for w in words) + "\n")
        sys.stdout.flush()


def read_pos():
    """The plan's place now (the caller holds lock)."""
    try:
        with open(PLAN + ".pos") as f:
            return int(f.read() or "0")
    except FileNotFoundError:
        return 0


def current_action():
    """The action of the plan at its place now, and that place."""
    with open(PLAN) as f:
        plan = [line.strip() for line in f if line.strip()]
    with lock:
        pos = read_pos()
    return plan[pos % len(plan)], pos


def advance(pos):
    """The plan moves on from pos, unless another delivery moved it."""
    with lock:
        if read_pos() != pos:
            return
        with open(PLAN + ".pos.tmp", "w") as f:
            f.write(str(pos + 1))
        os.replace(PLAN + ".pos.tmp", PLAN + ".pos")


# Misdeeds done to a delivery the server took: one the server did not
# take (it answered 503, say) did not happen, and is done again.
TAKEN_FIRST = ("drop-after", "500-after", "kill", "hang-after")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer is two writes (the headers, the body): with Nagle's
    # algorithm the second waits for the client's delayed ACK of the
    # first, 40 ms a request on a reused connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def drop(self):
        """Close the client's connection without a word."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
        except OSError:
            pass

    def upstream(self, data, cut=False, slow=False):
        """Pass the request on: (status, headers, body), or None."""
        ctx = ssl.create_default_context(cafile="cert.pem")
        conn = http.client.HTTPSConnection("127.0.0.1", UPSTREAM,
                                           context=ctx, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            if cut:
                conn.send(data[:len(data) // 2])
                return None
            if slow:
                say("begin", self.path)
                step = len(data) // 16 + 1
                for i in range(0, len(data), step):
                    conn.send(data[i:i + step])
                    time.sleep(SLOW / 16)
            else:
                conn.send(data)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP and name.lower() != "date" and \
                    name.lower() != "server":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        global untold
        data = self.body()
        delivery = self.command == "POST" and \
            self.path.split("?")[0].endswith(PLANNED)
        if delivery:
            with told:
                untold += 1
        action, pos = current_action() if delivery else ("pass", None)
        got = None
        if action in ("pass", "drop-after", "500-after", "kill", "cut",
                      "slow", "hang-after"):
            got = self.upstream(data, cut=action == "cut",
                                slow=action == "slow")
        if delivery:
            if action not in TAKEN_FIRST or \
                    (got is not None and 200 <= got[0] < 300):
                advance(pos)
            say(action, self.path, got[0] if got else "-")
            with told:
                untold -= 1
                told.notify_all()
        if action == "kill":
            with told:
                told.wait_for(lambda: untold == 0, timeout=5)
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "hang-after":
            time.sleep(60)
        if action == "503":
            self.answer(503, [("Content-Type", "application/json")],
                        b'{"error":"flaky"}')
        elif action == "500-after" and got is not None:
            self.answer(500, [("Content-Type", "application/json")],
                        b'{"error":"flaky"}')
        elif action in ("pass", "slow") and got is not None:
            self.answer(*got)
        else:
            self.drop()

    do_GET = do_POST = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    with open(PLAN + ".pid", "w") as f:
        f.write(str(os.getpid()))
    srv = Server(("127.0.0.1", PORT), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain("cert.pem", "key.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
