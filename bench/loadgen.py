"""A small, cheap HTTP/1.1 load generator for loopback benchmarks.

The load generator shares the machine's cores with the server it measures,
so it is written to cost as little CPU per request as Python allows: raw
non-blocking sockets, keep-alive connections, one ``selectors`` loop per
process, requests pre-built as bytes, and responses parsed only as far as
the status line and Content-Length. Each process runs ``connections``
connections; several processes are used when one would be the bottleneck.

Only loopback addresses are accepted: benchmarks never send traffic anywhere
else. Every run is bounded in time.
"""

import multiprocessing
import re
import selectors
import socket
import time
from dataclasses import dataclass, field

_LENGTH_RE = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE_RE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)
_COOKIE_RE = re.compile(rb"\r\nset-cookie:\s*([^=;\s]+=[^;\r\n]*)", re.IGNORECASE)
_CSRF_RE = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')


def _check_loopback(host):
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        raise ValueError(f"benchmarks only talk to loopback, not {host!r}")


def get(path, host="127.0.0.1"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def post_form(path, body, cookie, host="127.0.0.1"):
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Response:
    __slots__ = ("status", "head", "body")

    def __init__(self, status, head, body):
        self.status, self.head, self.body = status, head, body


def read_response(sock, buffer=b""):
    """Read one response from a blocking socket; return (Response, leftover bytes, closed)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = buffer[:end]
    match = _LENGTH_RE.search(head)
    length = int(match.group(1)) if match else 0
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        buffer += chunk
    response = Response(int(head[9:12]), head, buffer[end : end + length])
    return response, buffer[end + length :], bool(_CLOSE_RE.search(head))


def fetch(port, request, host="127.0.0.1", timeout=30):
    """One request on a fresh connection (setup steps: forms, cookies)."""
    _check_loopback(host)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock)[0]


def session_and_token(port, form_path):
    """GET a form: its session cookie and CSRF token, reusable for many posts."""
    response = fetch(port, get(form_path))
    if response.status != 200:
        raise RuntimeError(f"GET {form_path}: HTTP {response.status}")
    cookie = _COOKIE_RE.search(response.head).group(1).decode()
    token = _CSRF_RE.search(response.body).group(1).decode()
    return cookie, token


@dataclass
class Result:
    completed: int = 0  # responses finished inside the measured window
    errors: int = 0  # non-2xx or broken connections, inside the window
    seconds: float = 0.0
    latencies_ms: list = field(default_factory=list)

    @property
    def per_second(self):
        return self.completed / self.seconds if self.seconds else 0.0

    def merge(self, other):
        self.completed += other.completed
        self.errors += other.errors
        self.seconds = max(self.seconds, other.seconds)
        self.latencies_ms += other.latencies_ms


class _Connection:
    __slots__ = ("sock", "buffer", "sent_at", "number")

    def __init__(self, sock, number):
        self.sock, self.buffer, self.sent_at, self.number = sock, b"", 0.0, number


def run_loop(port, make_request, connections, warmup, seconds, host="127.0.0.1", keep_latencies=True):
    """Keep ``connections`` requests in flight for warmup + seconds; count the last ``seconds``.

    ``make_request(connection_number, sequence)`` returns the request bytes.
    """
    _check_loopback(host)
    selector = selectors.DefaultSelector()
    result = Result()
    sequence = 0
    started = time.perf_counter()
    window_start = started + warmup
    window_end = window_start + seconds

    def open_connection(number):
        sock = socket.create_connection((host, port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return _Connection(sock, number)

    def send(conn):
        nonlocal sequence
        sequence += 1
        conn.sent_at = time.perf_counter()
        conn.sock.setblocking(True)
        conn.sock.sendall(make_request(conn.number, sequence))
        conn.sock.setblocking(False)

    def restart(conn):
        selector.unregister(conn.sock)
        conn.sock.close()
        fresh = open_connection(conn.number)
        selector.register(fresh.sock, selectors.EVENT_READ, fresh)
        send(fresh)

    for number in range(connections):
        conn = open_connection(number)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        send(conn)

    recv = socket.socket.recv
    while True:
        now = time.perf_counter()
        if now >= window_end:
            break
        for key, _ in selector.select(timeout=window_end - now):
            conn = key.data
            try:
                chunk = recv(conn.sock, 262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                if window_start <= time.perf_counter() < window_end:
                    result.errors += 1
                restart(conn)
                continue
            conn.buffer += chunk
            buffer = conn.buffer
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                continue
            end += 4
            match = _LENGTH_RE.search(buffer, 0, end)
            length = int(match.group(1)) if match else 0
            if len(buffer) < end + length:
                continue
            done = time.perf_counter()
            status = buffer[9:12]
            closing = _CLOSE_RE.search(buffer, 0, end) is not None
            conn.buffer = buffer[end + length :]
            if window_start <= done < window_end:
                # A signature answers 303 (to the receipt page): done, like any 2xx.
                if status[:1] == b"2" or status == b"303":
                    result.completed += 1
                    if keep_latencies:
                        result.latencies_ms.append((done - conn.sent_at) * 1000)
                else:
                    result.errors += 1
            if closing:
                restart(conn)
            else:
                send(conn)
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    selector.close()
    result.seconds = seconds
    return result


def _worker(args):
    port, factory, factory_args, connections, warmup, seconds, keep_latencies = args
    make_request = factory(*factory_args)
    return run_loop(port, make_request, connections, warmup, seconds, keep_latencies=keep_latencies)


def run(port, factory, factory_args_per_process, connections, warmup, seconds, keep_latencies=True):
    """Run ``run_loop`` in one process per entry of ``factory_args_per_process``.

    ``factory(*args)`` is called inside each process and returns its
    ``make_request``; it must be a module-level function (it is pickled).
    """
    jobs = [(port, factory, args, connections, warmup, seconds, keep_latencies) for args in factory_args_per_process]
    total = Result()
    if len(jobs) == 1:
        total.merge(_worker(jobs[0]))
        return total
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        for part in pool.map(_worker, jobs):
            total.merge(part)
    return total


def fixed_request(request):
    """A factory for a storm of one request."""
    return lambda _connection, _sequence: request
