"""Client-side deadlines for PostgreSQL calls: give up on a server that acks but never answers.

Model: libpq has no client-side query timeout. `statement_timeout` is enforced by the
server (a frozen one enforces nothing), keepalive probes and unacknowledged data are
answered by the server's kernel (which still runs when PostgreSQL is frozen), so a call
to a frozen server waits for as long as it stays frozen. The only way out is the
client's own clock:

  query_within(conn, sql, params, deadline_s)  runs the query; at the deadline a timer
                        shuts the connection's socket down (SHUT_RDWR on a duplicate of
                        its descriptor), so the waiting call fails at once with
                        psycopg.OperationalError; the connection is then broken and
                        closed, and DeadlineExceeded is raised.
  connect_within(url, deadline_s, **kw)  connects in a helper thread and stops waiting
                        at the deadline (DeadlineExceeded); the abandoned attempt ends on
                        its own connect_timeout (psycopg's minimum is 2 s), and a
                        connection that arrives late is closed.

The harness's probes use these; the blackhole_replica fixtures carry their own copy
(a configuration under test is self-contained).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any


class DeadlineExceeded(TimeoutError):
    """The server did not answer within the deadline (the call was abandoned)."""


def query_within(conn: Any, sql: str, params: Sequence[Any] = (), *,
                 deadline_s: float) -> Any:
    """The first row of `sql`, or DeadlineExceeded after `deadline_s` (conn is then closed)."""
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    fired = threading.Event()

    def abandon() -> None:
        fired.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline_s, abandon)
    timer.daemon = True
    timer.start()
    try:
        row = conn.execute(sql, params).fetchone()
    except Exception as exc:
        if fired.is_set():
            _close(conn)
            raise DeadlineExceeded(f"no answer within {deadline_s:g} s") from exc
        raise
    finally:
        timer.cancel()
        sock.close()  # the duplicate only
    if fired.is_set():  # answered just as the timer fired: the socket is gone anyway
        _close(conn)
    return row


def connect_within(url: str, *, deadline_s: float, connect_timeout_s: int = 2,
                   **kwargs: Any) -> Any:
    """A psycopg connection, or DeadlineExceeded when it is not made within `deadline_s`."""
    import psycopg

    box: dict[str, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def attempt() -> None:
        try:
            conn = psycopg.connect(url, connect_timeout=connect_timeout_s, **kwargs)
        except Exception as exc:
            box["error"] = exc
        else:
            with lock:
                if box.get("abandoned"):
                    _close(conn)
                    return
                box["conn"] = conn
        finally:
            done.set()

    threading.Thread(target=attempt, name="connect-within", daemon=True).start()
    done.wait(deadline_s)
    with lock:
        if "conn" in box:
            return box["conn"]
        if "error" in box:
            raise box["error"]
        box["abandoned"] = True
    raise DeadlineExceeded(f"not connected within {deadline_s:g} s")


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection may complain; it is gone
        conn.close()
