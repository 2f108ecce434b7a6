"""A TCP proxy a test can "stop" and "start": a broker that goes away and comes back.

Between the service (app, workers, beat) and a server it cannot stop itself (this machine's
RabbitMQ, shared by every test), the proxy listens on a port of its own and relays each
connection to the server. ``kill()`` closes its listener and every relayed connection (both
sides: RabbitMQ requeues what the dropped consumers held, as it would on an outage), so the
service sees a broker that refuses connections; ``start(restart=True)`` listens again on the
same port. Threads only: one accepting, two per relayed connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from .redis_procs import free_port


class TcpProxy:
    """Relays 127.0.0.1:``port`` to ``target_host``:``target_port`` while started."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._acceptor: threading.Thread | None = None

    def start(self, timeout: float = 30.0, restart: bool = False) -> TcpProxy:
        """Listen (again: ``restart``) on the proxy's port; the port may take a moment to be
        free after ``kill``."""
        del restart  # the same either way: the port is the proxy's own
        deadline = time.monotonic() + timeout
        while True:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                listener.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._stopped = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, args=(listener, self._stopped),
                                          name=f"proxy-accept-{self.port}", daemon=True)
        self._acceptor.start()
        return self

    def kill(self) -> None:
        """The broker is gone: no listener, and every relayed connection is closed."""
        self._stopped.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=10)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            _close(sock)

    def _accept(self, listener: socket.socket, stopped: threading.Event) -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if stopped.is_set():
                    _close(client)
                    _close(upstream)
                    return
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True,
                                 name=f"proxy-pump-{self.port}").start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class AmqpBroker:
    """The test's RabbitMQ vhost behind a ``TcpProxy``: ``url`` (the same vhost, through the
    proxy), ``kill()`` and ``start(restart=True)`` as a broker process of the test's own has."""

    def __init__(self, broker_url: str) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(broker_url)
        self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.proxy.port}" if auth else f"127.0.0.1:{self.proxy.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def start(self, timeout: float = 30.0, restart: bool = False) -> AmqpBroker:
        self.proxy.start(timeout, restart)
        return self

    def kill(self) -> None:
        self.proxy.kill()
