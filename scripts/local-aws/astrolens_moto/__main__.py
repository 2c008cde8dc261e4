"""python -m astrolens_moto --host 127.0.0.1 --port 4566 --registry-url http://127.0.0.1:5000 [--state-dir .local]

Runs moto's server (all services on one port, as ``moto_server`` does) with the
astrolens extensions installed, in the foreground until SIGTERM or SIGINT
(both exit 0). Prints ``astrolens-moto listening on http://HOST:PORT`` on stdout
once the socket accepts connections. A port in use exits 1 at once.

Besides moto's own ``/moto-api/``, ``/astrolens-api/<module>/<route>`` serves the
extensions' test and rehearsal controls: an extension module may define
``API_ROUTES = {(METHOD, route): handler}``, ``handler(body: dict, query: dict) ->
(status, JSON-able)``; a ValueError becomes a 400 with its message. Example:
``POST /astrolens-api/sagemaker/fail-next-update {"endpoint": "x"}``.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

DEFAULT_REGISTRY_URL = "http://127.0.0.1:5000"  # docker-registry's default port


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m astrolens_moto", description=__doc__.split("\n\n")[1])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4566)
    p.add_argument(
        "--registry-url",
        default=os.environ.get("ASTROLENS_REGISTRY_URL", DEFAULT_REGISTRY_URL),
        help="OCI registry standing in for ECR's data plane (env ASTROLENS_REGISTRY_URL; "
        f"default {DEFAULT_REGISTRY_URL})",
    )
    p.add_argument(
        "--state-dir",
        default=os.environ.get("ASTROLENS_STATE_DIR") or os.path.join(os.getcwd(), ".local"),
        help="where extracted images, instance logs and other runtime state live, under "
        "<state-dir>/runtime (env ASTROLENS_STATE_DIR; default .local under the current directory)",
    )
    return p.parse_args(argv)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before importing moto's server so a busy port fails fast and clearly.

    (werkzeug would also notice, but prints its own text and calls sys.exit.)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Allows a restart while old connections sit in TIME_WAIT; on Linux it does
    # not allow two listeners on one port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror
        print(f"astrolens-moto: cannot listen on {host}:{port}: {why}", file=sys.stderr)
        sys.exit(1)
    return sock


API_PREFIX = "/astrolens-api/"


def _with_extension_api(app: Any) -> Any:
    """WSGI: /astrolens-api/<module>/<route> to that extension's API_ROUTES, the rest to moto."""
    from werkzeug.exceptions import BadRequest
    from werkzeug.wrappers import Request, Response

    def reply(status: int, body: Any) -> Response:
        return Response(json.dumps(body, default=str), status=status, mimetype="application/json")

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(API_PREFIX):
            return app(environ, start_response)
        request = Request(environ)
        module_name, _, route = path[len(API_PREFIX) :].partition("/")
        # Only modules already installed: a URL never imports code.
        module = sys.modules.get(f"astrolens_moto.{module_name}") if module_name.isidentifier() else None
        handler = getattr(module, "API_ROUTES", {}).get((request.method, route))
        if handler is None:
            response = reply(404, {"message": f"no route {request.method} {path}"})
            return response(environ, start_response)
        try:
            body = request.get_json(force=True) if request.get_data() else {}
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            status, result = handler(body, request.args.to_dict())
            response = reply(status, result)
        except (BadRequest, ValueError) as e:
            response = reply(400, {"message": getattr(e, "description", None) or str(e)})
        return response(environ, start_response)

    return wsgi


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("astrolens-moto %(levelname)s %(name)s: %(message)s"))
    ext_log = logging.getLogger("astrolens_moto")
    ext_log.addHandler(handler)
    ext_log.setLevel(logging.INFO)
    ext_log.propagate = False

    sock = _listen(args.host, args.port)
    # moto builds some URLs (S3, SQS queue URLs, ...) from MOTO_PORT, as moto_server sets it.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    import astrolens_moto
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # Extensions that read ASTROLENS_STATE_DIR themselves see the same directory.
    state_dir = os.path.abspath(args.state_dir)
    os.environ["ASTROLENS_STATE_DIR"] = state_dir
    astrolens_moto.install(registry_url=args.registry_url, state_dir=state_dir)
    ext_log.info("registry %s, state %s", args.registry_url, state_dir)

    app = _with_extension_api(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler, fd=sock.fileno()
    )
    sock.close()  # werkzeug dup()ed the descriptor

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    # The socket has been listening since _listen(); connections queue until
    # serve_forever accepts them, so this line is true when printed.
    print(f"astrolens-moto listening on http://{args.host}:{args.port}", flush=True)

    while not stop.wait(0.5):
        pass
    server.shutdown()  # waits for serve_forever to return
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
