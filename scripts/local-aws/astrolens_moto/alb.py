"""Application load balancers that serve HTTP locally, from moto's ELBv2 state.

moto stores load balancers, listeners, rules and target groups faithfully but no
traffic flows. Here every HTTP/HTTPS listener of every *application* load balancer in
moto's ELBv2 backends (all accounts and regions) gets a socket on 127.0.0.1 and
proxies requests the way an ALB routes them:

* Port: the listener's port when it is >= 1024, else listener port +
  ``ASTROLENS_ALB_PORT_OFFSET`` (default 10000; so port 80 is served on 10080),
  because binding below 1024 needs root. If that port is taken (another process,
  or a second load balancer with the same listener port) a free port is used
  instead and a warning logged: ask ``listener_url(listener_arn)`` rather than
  computing the port.
* Listeners are bound as soon as CreateListener/ModifyListener returns (those
  backend methods are wrapped) and released on DeleteListener/DeleteLoadBalancer;
  a background sweep every second catches anything else (``/moto-api/reset``,
  objects changed directly on the backend).
* Each request reads moto's objects afresh, so ModifyRule/ModifyListener (or a
  control plane writing ``rule.actions`` on the backend) take effect on the next
  request.
* Rules are evaluated by ascending priority, the default rule last. Conditions:
  path-pattern, host-header, http-header, http-request-method, query-string and
  source-ip, with AWS's matching (``*``/``?`` wildcards; path case-sensitive; host,
  header values and query strings case-insensitive; values OR'd within a condition,
  conditions AND'd).
* Actions: ``forward`` (TargetGroupArn or ForwardConfig.TargetGroups). A weighted
  forward picks target groups by smooth weighted round robin, so 90/10 is exactly 9
  of every 10 requests (AWS distributes by weight statistically); a weight of 0
  never receives a request. Within a target group, targets are used round robin.
  ``fixed-response`` answers as configured. ``authenticate-*`` actions are skipped.
* Targets are the ``Id`` (an IP address: register ``127.0.0.1``) and ``Port`` passed
  to RegisterTargets. No target, or only unreachable kinds (instance ids, Lambda)
  -> 503 like an ALB; a target refusing the connection -> 502; no answer within 60 s
  (the ALB default idle timeout) -> 504. Our own error pages carry an
  ``X-Astrolens-Alb-Reason`` header saying why.
* Forwarded requests gain X-Forwarded-For/-Proto/-Port and X-Amzn-Trace-Id.
* ``GET /astrolens-api/alb/listeners`` on the server lists every served listener
  (listenerArn, loadBalancerArn, loadBalancerName, listenerPort, url).

Not modelled: TLS (HTTPS listeners are served as plain HTTP), target health checks
(moto reports every target healthy, and every registered target receives traffic),
deregistration delay/connection draining, slow start, stickiness, redirect actions
(501), authentication, network/gateway load balancers, HTTP/2, WebSockets and
streaming (request and response bodies are buffered), security groups, the DNS name
(use ``listener_url``).

moto internals used (5.2.5): ``moto.elbv2.models.elbv2_backends`` (account -> region
-> ELBv2Backend), ``ELBv2Backend.load_balancers``/``.target_groups`` and the methods
create_listener, modify_listener, delete_listener, delete_load_balancer;
``FakeLoadBalancer.listeners``/``.type``/``.name``; ``FakeListener.rules``
(non-default rules then the default), ``.port``/``.protocol``; rules'
``.priority``/``.conditions``/``.actions`` (``FakeAction.type``/``.data``);
``FakeTargetGroup.targets`` (Id -> {Id, Port}) and ``.target_type``.
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from moto.elbv2.models import ELBv2Backend, elbv2_backends

log = logging.getLogger("astrolens_moto.alb")

OFFSET_ENV = "ASTROLENS_ALB_PORT_OFFSET"
DEFAULT_PORT_OFFSET = 10000
SWEEP_INTERVAL = 1.0
UPSTREAM_TIMEOUT = 60.0  # the ALB's default idle timeout
POLL_INTERVAL = 0.2  # how quickly a listener's socket can be released
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}


class ListenerNotServed(LookupError):
    pass


@dataclass
class _Served:
    arn: str
    account: str
    region: str
    lb_arn: str
    lb_name: str
    listener_port: int
    port: int
    server: "_ListenerServer"


_served: dict[str, _Served] = {}
_lock = threading.RLock()
_port_offset = DEFAULT_PORT_OFFSET
_failed: set[tuple[str, int]] = set()  # (arn, port) already warned about
_installed = False


# --------------------------------------------------------------------------
# reconciling sockets with moto's listeners


def _live_listeners() -> dict[str, tuple[str, str, Any, Any]]:
    """arn -> (account, region, load balancer, listener), read without creating backends."""
    out: dict[str, tuple[str, str, Any, Any]] = {}
    # dict.items: BackendDict's own __getitem__ would create accounts/regions on access.
    for account, regions in list(dict.items(elbv2_backends)):
        for region, backend in list(dict.items(regions)):
            for lb in list(backend.load_balancers.values()):
                if lb.type != "application":
                    continue
                for listener in list(lb.listeners.values()):
                    if (listener.protocol or "").upper() in ("HTTP", "HTTPS"):
                        out[listener.arn] = (account, region, lb, listener)
    return out


def reconcile() -> None:
    """Bind sockets for new listeners, release those of vanished or re-ported ones."""
    with _lock:
        live = _live_listeners()
        for arn, s in list(_served.items()):
            cur = live.get(arn)
            if cur is None or int(cur[3].port) != s.listener_port:
                _close(s)
                del _served[arn]
        for arn, (account, region, lb, listener) in live.items():
            if arn not in _served:
                s = _serve(account, region, lb, listener)
                if s is not None:
                    _served[arn] = s


def _serve(account: str, region: str, lb: Any, listener: Any) -> _Served | None:
    listener_port = int(listener.port)
    preferred = listener_port if listener_port >= 1024 else listener_port + _port_offset
    server = None
    why = ""
    if preferred <= 65535:
        try:
            server = _ListenerServer(("127.0.0.1", preferred), _Proxy)
        except OSError as e:
            why = e.strerror or str(e)
    else:
        why = f"beyond 65535 (listener port {listener_port} + {OFFSET_ENV} {_port_offset})"
    if server is None:
        try:
            server = _ListenerServer(("127.0.0.1", 0), _Proxy)
        except OSError as e:
            if (listener.arn, preferred) not in _failed:
                _failed.add((listener.arn, preferred))
                log.error("ALB %s listener %s: cannot bind any port: %s", lb.name, listener_port, e)
            return None
        log.warning(
            "ALB %s listener %s: port %s unavailable (%s); serving on %s instead",
            lb.name, listener_port, preferred, why, server.server_address[1],
        )
    s = _Served(
        arn=listener.arn, account=account, region=region, lb_arn=lb.arn, lb_name=lb.name,
        listener_port=listener_port, port=server.server_address[1], server=server,
    )
    server.served = s
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
        name=f"alb-{lb.name}-{listener_port}", daemon=True,
    ).start()
    tls = " (HTTPS served as plain HTTP: TLS is not modelled)" if listener.protocol.upper() == "HTTPS" else ""
    log.info("ALB %s listener %s/%s serving at http://127.0.0.1:%s%s", lb.name, listener.protocol, listener_port, s.port, tls)
    return s


def _close(s: _Served) -> None:
    s.server.shutdown()  # returns within POLL_INTERVAL
    s.server.server_close()
    log.info("ALB %s listener %s: stopped serving port %s", s.lb_name, s.listener_port, s.port)


def listener_url(listener_arn: str) -> str:
    """``http://127.0.0.1:PORT`` where the listener is served (binding it now if needed)."""
    with _lock:
        if listener_arn not in _served:
            reconcile()
        s = _served.get(listener_arn)
    if s is None:
        raise ListenerNotServed(
            f"listener {listener_arn} is not served locally: it does not exist in moto's ELBv2, is not "
            "HTTP/HTTPS on an application load balancer, or no port could be bound (see the server log)"
        )
    return f"http://127.0.0.1:{s.port}"


def _list_listeners(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    """GET /astrolens-api/alb/listeners: where each listener is served, for clients outside
    this process (the ALB's DNS name does not resolve locally)."""
    reconcile()
    with _lock:
        served = list(_served.values())
    return 200, {
        "listeners": [
            {
                "listenerArn": s.arn,
                "loadBalancerArn": s.lb_arn,
                "loadBalancerName": s.lb_name,
                "listenerPort": s.listener_port,
                "url": f"http://127.0.0.1:{s.port}",
            }
            for s in served
        ]
    }


API_ROUTES = {("GET", "listeners"): _list_listeners}  # served by __main__ under /astrolens-api/alb/


def _after(name: str) -> None:
    original = getattr(ELBv2Backend, name)

    def wrapped(self: ELBv2Backend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        try:
            reconcile()  # before the API answers, so the port is bound when the caller hears back
        except Exception:
            log.exception("ALB reconcile after %s failed; the sweep will retry", name)
        return result

    wrapped.__name__ = name
    setattr(ELBv2Backend, name, wrapped)


def _sweep() -> None:
    while True:
        time.sleep(SWEEP_INTERVAL)
        try:
            reconcile()
        except Exception:  # moto's dicts can change mid-read; next sweep sees them settled
            log.debug("ALB sweep failed", exc_info=True)


def _read_port_offset() -> int:
    raw = os.environ.get(OFFSET_ENV, str(DEFAULT_PORT_OFFSET))
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 64511:
        raise ValueError(f"{OFFSET_ENV} must be an integer from 0 to 64511, got {raw!r}")
    return value


def install() -> None:
    """Wrap moto's ELBv2 backend and start the sweep. Idempotent."""
    global _installed, _port_offset
    _port_offset = _read_port_offset()
    if _installed:
        return
    _installed = True
    for name in ("create_listener", "modify_listener", "delete_listener", "delete_load_balancer"):
        _after(name)
    threading.Thread(target=_sweep, name="alb-sweep", daemon=True).start()


# --------------------------------------------------------------------------
# routing: rules -> action -> target group -> target


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: Any  # http.client.HTTPMessage: case-insensitive
    client_ip: str


def _wildcard(pattern: str, text: str, ignore_case: bool) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _values(condition: dict[str, Any], config_key: str) -> list[Any]:
    return list((condition.get(config_key) or {}).get("Values") or condition.get("Values") or [])


def _matches(condition: dict[str, Any], req: _Request) -> bool:
    field = condition.get("Field")
    if field == "path-pattern":
        return any(_wildcard(v, req.path, False) for v in _values(condition, "PathPatternConfig"))
    if field == "host-header":
        host = re.sub(r":\d+$", "", req.headers.get("Host") or "")  # the rule names a host, not a port
        return any(_wildcard(v, host, True) for v in _values(condition, "HostHeaderConfig"))
    if field == "http-header":
        cfg = condition.get("HttpHeaderConfig") or {}
        got = req.headers.get_all(cfg.get("HttpHeaderName", "")) or []
        return any(_wildcard(v, g, True) for v in cfg.get("Values") or [] for g in got)
    if field == "http-request-method":
        return req.method in ((condition.get("HttpRequestMethodConfig") or {}).get("Values") or [])
    if field == "query-string":
        pairs = parse_qsl(req.query, keep_blank_values=True)
        for want in (condition.get("QueryStringConfig") or {}).get("Values") or []:
            for k, v in pairs:
                if ("Key" not in want or _wildcard(want["Key"], k, True)) and _wildcard(want.get("Value", ""), v, True):
                    return True
        return False
    if field == "source-ip":
        ip = ipaddress.ip_address(req.client_ip)
        cidrs = (condition.get("SourceIpConfig") or {}).get("Values") or []
        return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)
    log.warning("ALB rule condition %r is not modelled; treated as not matching", field)
    return False


def _ordered_rules(listener: Any) -> list[Any]:
    rules = list(listener.rules.values())
    explicit = sorted((r for r in rules if not r.is_default), key=lambda r: int(r.priority))
    return explicit + [r for r in rules if r.is_default]


def _terminal_action(rule: Any) -> Any | None:
    actions = sorted(enumerate(rule.actions), key=lambda ia: (int(ia[1].data.get("Order") or ia[0] + 1), ia[0]))
    for _, a in actions:
        if a.type in ("forward", "fixed-response", "redirect"):
            return a
    return None


_wrr_lock = threading.Lock()
_wrr: dict[str, tuple[tuple[tuple[str, int], ...], dict[str, int]]] = {}
_round_robin: dict[str, itertools.count] = {}


def _pick_group(rule_arn: str, groups: list[tuple[str, int]]) -> str | None:
    """Smooth weighted round robin (nginx's): exact proportions, evenly interleaved."""
    live = tuple((arn, w) for arn, w in groups if w > 0)
    if not live:
        return None
    with _wrr_lock:
        key, current = _wrr.get(rule_arn, ((), {}))
        if key != live:  # weights changed: start afresh so no stale credit leaks through
            current = {arn: 0 for arn, _ in live}
            _wrr[rule_arn] = (live, current)
        total = sum(w for _, w in live)
        for arn, w in live:
            current[arn] += w
        best = max(live, key=lambda aw: current[aw[0]])[0]
        current[best] -= total
        return best


def _forward_groups(action: Any) -> list[tuple[str, int]]:
    data = action.data
    groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups]
    return [(data["TargetGroupArn"], 1)] if data.get("TargetGroupArn") else []


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


class _Reply(Exception):
    """An answer from the load balancer itself (no target involved)."""

    def __init__(self, status: int, reason: str, body: bytes | None = None, content_type: str = "text/html"):
        self.status, self.reason, self.content_type = status, reason, content_type
        self.body = body if body is not None else _error_page(status)


def _error_page(status: int) -> bytes:
    title = f"{status} {_REASONS.get(status, http.client.responses.get(status, ''))}"
    # The page an ALB itself serves for these codes.
    return f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n".encode()


_REASONS = {503: "Service Temporarily Unavailable"}


def _route(served: _Served, req: _Request) -> tuple[str, int]:
    """The target (ip, port) for a request, or raises _Reply."""
    backend = dict.get(dict.get(elbv2_backends, served.account) or {}, served.region)
    lb = backend.load_balancers.get(served.lb_arn) if backend else None
    listener = lb.listeners.get(served.arn) if lb else None
    if listener is None:
        raise _Reply(503, "the listener no longer exists")
    for rule in _ordered_rules(listener):
        if all(_matches(c, req) for c in rule.conditions or []):
            action = _terminal_action(rule)
            if action is None:
                raise _Reply(500, f"rule {rule.arn} has no forward or fixed-response action")
            if action.type == "fixed-response":
                cfg = action.data.get("FixedResponseConfig") or {}
                raise _Reply(
                    int(cfg.get("StatusCode", 200)), "fixed-response",
                    (cfg.get("MessageBody") or "").encode(), cfg.get("ContentType") or "text/plain",
                )
            if action.type == "redirect":
                raise _Reply(501, "redirect actions are not modelled locally")
            tg_arn = _pick_group(rule.arn, _forward_groups(action))
            if tg_arn is None:
                raise _Reply(503, f"every target group of rule {rule.arn} has weight 0")
            tg = backend.target_groups.get(tg_arn)
            if tg is None:
                raise _Reply(503, f"target group {tg_arn} does not exist")
            targets = list(tg.targets.values())
            reachable = [t for t in targets if _is_ip(str(t["Id"]))]
            if not reachable:
                why = (
                    f"target group {tg.name} has no registered targets" if not targets
                    else f"target group {tg.name} has only non-IP targets ({targets[0]['Id']}, ...), "
                    "which cannot be reached locally: register ip targets"
                )
                raise _Reply(503, why)
            n = next(_round_robin.setdefault(tg_arn, itertools.count()))
            t = reachable[n % len(reachable)]
            return str(t["Id"]), int(t["Port"])
    raise _Reply(503, "no rule matched (a listener always has a default rule; moto state is inconsistent)")


# --------------------------------------------------------------------------
# the HTTP side


class _ListenerServer(ThreadingHTTPServer):
    daemon_threads = True
    served: _Served


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of an ALB expect
    server: _ListenerServer

    def version_string(self) -> str:
        return "awselb/2.0"  # the Server header of an ALB's own answers

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ALB %s: " + format, self.server.served.lb_name, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        served = self.server.served
        try:
            body = self._read_body()
        except ValueError:
            self._answer(_Reply(400, "malformed request body framing"))
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        req = _Request(self.command, unquote(parts.path) or "/", parts.query, self.headers, self.client_address[0])
        try:
            host, port = _route(served, req)
        except _Reply as r:
            self._answer(r)
            return
        self._forward(host, port, body)

    def _forward(self, host: str, port: int, body: bytes) -> None:
        connection_tokens = {t.strip().lower() for t in (self.headers.get("Connection") or "").split(",")}
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | connection_tokens
                   and k.lower() not in ("content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port")]
        xff = self.headers.get("X-Forwarded-For")
        headers += [
            ("X-Forwarded-For", f"{xff}, {self.client_address[0]}" if xff else self.client_address[0]),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", str(self.server.served.listener_port)),
            ("Content-Length", str(len(body))),
        ]
        if not self.headers.get("X-Amzn-Trace-Id"):
            headers.append(("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"))
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, garbled
            timed_out = isinstance(e, (socket.timeout, TimeoutError))
            self._answer(_Reply(504 if timed_out else 502, f"target {host}:{port}: {e}"))
            return
        finally:
            conn.close()
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if self.command == "HEAD":
            if resp.getheader("Content-Length") is not None:
                self.send_header("Content-Length", resp.getheader("Content-Length"))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, r: _Reply) -> None:
        if r.status >= 500 or r.status == 400:
            log.info("ALB %s: %s %s -> %s: %s", self.server.served.lb_name, self.command, self.path, r.status, r.reason)
        self.send_response(r.status, _REASONS.get(r.status))
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        if r.reason != "fixed-response":
            self.send_header("X-Astrolens-Alb-Reason", r.reason.encode("ascii", "replace").decode())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(r.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle
