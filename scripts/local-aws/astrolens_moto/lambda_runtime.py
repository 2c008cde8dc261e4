"""Lambda: Node.js functions executed for real, as subprocesses of the host's ``node``.

moto runs Invoke in Docker, and without a Docker engine answers every call with
``FunctionError: Handled`` ("error running docker"). Here functions whose
``Runtime`` starts with ``nodejs`` (PackageType Zip) run on the host instead:

* The code (ZipFile upload, or the S3 object in moto's S3 backend) is unpacked
  once per code SHA-256 into ``<state>/runtime/lambda/code/<sha256>/``, where
  ``<state>`` is ``ASTROLENS_STATE_DIR`` (default ``.local``).
* A small bootstrap (``BOOTSTRAP_SOURCE``, written once to
  ``<state>/runtime/lambda/bootstrap-<hash>.mjs``) imports the
  handler module named by ``Handler`` (``dir/file.export``; ``.js``, ``.mjs`` or
  ``.cjs``, ESM or CommonJS), calls the handler (async, or callback-style) with
  the event and a context (``functionName``, ``functionVersion``,
  ``invokedFunctionArn``, ``memoryLimitInMB``, ``awsRequestId``,
  ``logGroupName``, ``logStreamName``, ``getRemainingTimeInMillis()``), and
  returns the JSON result.
* Environment: ``Environment.Variables`` plus what AWS sets (``AWS_REGION``,
  ``AWS_LAMBDA_FUNCTION_*``, ``_HANDLER``, ``LAMBDA_TASK_ROOT``, dummy
  credentials) and ``AWS_ENDPOINT_URL`` pointing at this moto server, so the
  AWS SDK inside the function talks to the local AWS.
* ``Timeout`` is honoured in real seconds (not scaled: it guards real work); on
  expiry the process group is killed and the answer is AWS's
  ``{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: … Error: Task
  timed out after N.NN seconds"}`` with ``X-Amz-Function-Error: Unhandled``.
* A thrown error, a rejected promise or an error passed to the callback gives
  ``X-Amz-Function-Error: Unhandled`` and ``{errorType, errorMessage, trace}``;
  a missing module/handler gives ``Runtime.ImportModuleError`` /
  ``Runtime.HandlerNotFound``; a process that exits without answering gives
  ``Runtime.ExitError``.
* Logs look like AWS's (START / console lines with time, request id and level /
  END / REPORT), go to moto's CloudWatch Logs group ``/aws/lambda/<name>``, are
  appended to ``<state>/runtime/lambda/logs/<name>.log``, and with
  ``LogType: Tail`` the last 4 KB come back base64 in ``X-Amz-Log-Result``.
* ``InvocationType``: ``RequestResponse`` runs and answers; ``Event`` answers 202
  and runs in the background; ``DryRun`` answers 204 without running.

Other runtimes and image functions keep moto's behaviour.

Python interface (the ECS extension calls it for lifecycle hooks)::

    from astrolens_moto.lambda_runtime import invoke
    result = invoke("arn:aws:lambda:us-east-1:123456789012:function:hook",
                    {"executionId": "..."}, account_id="123456789012", region="us-east-1")
    result.payload          # the parsed JSON answer, or None if it was not JSON
    result.function_error   # "Unhandled" (or moto's "Handled" for other runtimes), else None
    result.logs             # the invocation's log text

It blocks until the function answers or times out (run it in your own thread),
raises moto's ``UnknownFunctionException`` for an unknown function, and
takes the account and region from the ARN when given one.

Environment knobs:
  ASTROLENS_STATE_DIR            where code is unpacked and logs are kept (default .local)
  ASTROLENS_NODE                 the node binary (default: ``node`` on PATH)
  ASTROLENS_LAMBDA_ENDPOINT_URL  AWS_ENDPOINT_URL given to functions
                                 (default http://127.0.0.1:$MOTO_PORT)

Not modelled: warm sandboxes (every invocation is a cold process), layers,
memory limits and "Max Memory Used", concurrency limits and throttling, async
retries and destinations, the AWS SDK that AWS's runtime ships (bundle your
dependencies), the exact Node.js version of the runtime (the host's node runs
every ``nodejs*`` runtime), response streaming, payload size limits beyond moto's.

moto internals used (moto 5.2.5): ``moto.awslambda.responses.LambdaResponse.invoke``
(patched), ``moto.awslambda.utils.get_backend``, ``LambdaBackend.get_function``
and ``.invoke``, ``LambdaFunction`` attributes (``run_time``, ``package_type``,
``handler``, ``timeout``, ``memory_size``, ``environment_vars``, ``code``,
``code_bytes``, ``version``, ``function_arn``, ``logs_backend``,
``logs_group_name``) and moto's S3 backend for code that lives in S3.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend
from moto.core.exceptions import JsonRESTError

log = logging.getLogger("astrolens_moto.lambda_runtime")

LOG_TAIL_BYTES = 4096  # what AWS returns in X-Amz-Log-Result
DEFAULT_TIMEOUT = 3  # AWS's default Timeout, seconds

_unpack_lock = threading.Lock()


@dataclass
class InvokeResult:
    payload: Any  # the parsed JSON answer; None when it is not JSON (or is JSON null)
    function_error: str | None  # "Unhandled" / "Handled", or None on success
    logs: str
    raw_payload: bytes = b""
    request_id: str = ""
    executed_version: str = "$LATEST"


class _ServiceException(JsonRESTError):
    """Lambda's ServiceException (HTTP 500): the local runtime itself failed."""

    code = 500

    def __init__(self, message: str):
        super().__init__("ServiceException", message)


# --------------------------------------------------------------------------
# configuration


def state_dir() -> Path:
    return Path(os.environ.get("ASTROLENS_STATE_DIR") or ".local").resolve()


def _runtime_dir() -> Path:
    return state_dir() / "runtime" / "lambda"


def _node() -> str:
    node = os.environ.get("ASTROLENS_NODE") or shutil.which("node")
    if not node:
        raise _ServiceException("local AWS: no `node` on PATH to run Node.js functions (set ASTROLENS_NODE)")
    return node


def _endpoint_url() -> str:
    return os.environ.get("ASTROLENS_LAMBDA_ENDPOINT_URL") or (
        f"http://127.0.0.1:{os.environ.get('MOTO_PORT') or '5000'}"
    )


def runs_locally(fn: LambdaFunction) -> bool:
    """True for the functions this module executes (Node.js, zip packages)."""
    return (fn.run_time or "").startswith("nodejs") and getattr(fn, "package_type", "Zip") != "Image"


# --------------------------------------------------------------------------
# code


def _code_bytes(fn: LambdaFunction) -> bytes:
    data = getattr(fn, "code_bytes", b"") or b""
    if not data and fn.code.get("S3Bucket") and fn.code.get("S3Key"):
        # moto reads S3 at create time; it leaves the bytes empty when S3
        # validation was off and the object came later.
        from moto.s3.models import s3_backends

        data = s3_backends[fn.account_id][fn.partition].get_object(fn.code["S3Bucket"], fn.code["S3Key"]).value
    return data


def _unpack(code: bytes) -> Path:
    """The code's directory, unpacked once per content hash (shared by invocations)."""
    digest = hashlib.sha256(code).hexdigest()
    target = _runtime_dir() / "code" / digest
    if target.is_dir():
        return target
    with _unpack_lock:
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
        try:
            with zipfile.ZipFile(io.BytesIO(code)) as z:
                z.extractall(tmp)  # zipfile drops absolute paths and ".." components
            os.rename(tmp, target)  # readers never see a half-unpacked tree
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not target.is_dir():  # else another server on this state dir won the race
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


BOOTSTRAP_SOURCE = r'''
// One Lambda invocation, the way AWS's Node.js runtime runs it, as a plain subprocess.
// Started by lambda_runtime.py: node lambda_bootstrap.mjs <invocation.json> <result.json>
// stdout/stderr are the function's log (a file); the outcome goes to result.json.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";

const [invocationPath, resultPath] = process.argv.slice(2);
const inv = JSON.parse(readFileSync(invocationPath, "utf8"));

// AWS's runtime prefixes every console line with time, request id and level.
for (const [method, level] of [
  ["log", "INFO"], ["info", "INFO"], ["warn", "WARN"], ["error", "ERROR"], ["debug", "DEBUG"], ["trace", "TRACE"],
]) {
  console[method] = (...args) =>
    process.stdout.write(`${new Date().toISOString()}\t${inv.requestId}\t${level}\t${format(...args)}\n`);
}

let finished = false;
function finish(outcome) {
  if (finished) return;
  finished = true;
  writeFileSync(resultPath, JSON.stringify(outcome));
  // AWS freezes the sandbox once the handler answers; here the process ends.
  process.exit(0);
}

// The shape AWS's Node.js runtime gives errors (errorType/errorMessage/trace).
function errorPayload(err, typeOverride) {
  if (err instanceof Error || (err && typeof err === "object" && "message" in err && "name" in err)) {
    return {
      errorType: typeOverride ?? err.name ?? "Error",
      errorMessage: String(err.message),
      trace: typeof err.stack === "string" ? err.stack.split("\n") : [],
    };
  }
  return { errorType: typeOverride ?? typeof err, errorMessage: String(err), trace: [] };
}

function fail(payload) {
  console.error("Invoke Error", JSON.stringify(payload));
  finish({ ok: false, error: payload });
}

process.on("uncaughtException", (err) => fail(errorPayload(err)));
process.on("unhandledRejection", (reason) =>
  fail({
    errorType: "Runtime.UnhandledPromiseRejection",
    errorMessage: `${reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason)}`,
    trace: reason instanceof Error && reason.stack ? reason.stack.split("\n") : [],
  }),
);

async function loadHandler() {
  // "dir/file.export.path": the module is up to the first dot of the last path segment.
  const spec = inv.handler ?? "";
  const slash = spec.lastIndexOf("/");
  const match = /^([^.]+)\.(.+)$/.exec(spec.slice(slash + 1));
  if (!match) {
    throw Object.assign(new Error(`Bad handler ${spec}`), { name: "Runtime.MalformedHandlerName" });
  }
  const [, moduleName, exportPath] = match;
  const base = resolve(inv.taskRoot, spec.slice(0, slash + 1), moduleName);
  const file = [".js", ".mjs", ".cjs"].map((ext) => base + ext).find((f) => existsSync(f));
  if (!file) {
    throw Object.assign(new Error(`Error: Cannot find module '${moduleName}'`), { name: "Runtime.ImportModuleError" });
  }
  let mod;
  try {
    // import() takes ESM and CJS alike (package.json "type" decides for .js); for CJS
    // the whole module.exports is the default export.
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw Object.assign(new Error(`${err.name}: ${err.message}`), { name: "Runtime.ImportModuleError", stack: err.stack });
  }
  const walk = (root) => exportPath.split(".").reduce((o, k) => (o == null ? undefined : o[k]), root);
  const handler = walk(mod) ?? walk(mod.default);
  if (handler === undefined) {
    throw Object.assign(new Error(`${moduleName}.${exportPath} is undefined or not exported`), {
      name: "Runtime.HandlerNotFound",
    });
  }
  if (typeof handler !== "function") {
    throw Object.assign(new Error(`${moduleName}.${exportPath} is not a function`), { name: "Runtime.HandlerNotFound" });
  }
  return handler;
}

let handler;
try {
  handler = await loadHandler();
} catch (err) {
  fail(errorPayload(err));
}

const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: inv.functionName,
  functionVersion: inv.functionVersion,
  invokedFunctionArn: inv.invokedFunctionArn,
  memoryLimitInMB: String(inv.memoryLimitInMB),
  awsRequestId: inv.requestId,
  logGroupName: inv.logGroupName,
  logStreamName: inv.logStreamName,
  getRemainingTimeInMillis: () => Math.max(0, inv.deadlineMs - Date.now()),
};

if (!finished) {
  try {
    const result = await new Promise((resolvePromise, reject) => {
      const callback = (err, value) => (err ? reject(err) : resolvePromise(value));
      Object.assign(context, {
        done: callback,
        succeed: (value) => resolvePromise(value),
        fail: (err) => reject(err),
      });
      const returned = handler(inv.event, context, callback);
      if (returned && typeof returned.then === "function") returned.then(resolvePromise, reject);
      else if (handler.length < 3) resolvePromise(returned); // sync handler without callback
    });
    // undefined serialises as null, as on AWS
    finish({ ok: true, payload: JSON.stringify(result === undefined ? null : result) });
  } catch (err) {
    fail(errorPayload(err));
  }
}
'''


def _bootstrap() -> Path:
    name = f"bootstrap-{hashlib.sha256(BOOTSTRAP_SOURCE.encode()).hexdigest()[:12]}.mjs"
    path = _runtime_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(BOOTSTRAP_SOURCE)
        os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------
# one invocation


def _environment(fn: LambdaFunction, task_root: Path, tmp: Path, log_stream: str) -> dict[str, str]:
    node_dir = str(Path(_node()).parent)
    env = {
        # defaults a function may override (AWS does not reserve these)
        "PATH": os.pathsep.join([node_dir, "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "NODE_PATH": str(task_root),
        "AWS_ENDPOINT_URL": _endpoint_url(),
    }
    env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
    env.update(
        {
            # reserved on AWS (CreateFunction refuses them in Environment)
            "_HANDLER": fn.handler or "",
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(_runtime_dir()),
            "TMPDIR": str(tmp),
        }
    )
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _iso_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _run(fn: LambdaFunction, event: Any, qualifier: str | None = None) -> InvokeResult:
    request_id = str(uuid.uuid4())
    version = str(fn.version)
    now = datetime.now(timezone.utc)
    log_stream = f"{now:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
    timeout = float(fn.timeout or DEFAULT_TIMEOUT)
    error: dict[str, Any] | None = None
    payload_bytes = b""
    output = ""
    started = time.monotonic()

    try:
        task_root = _unpack(_code_bytes(fn))
    except (zipfile.BadZipFile, OSError, KeyError) as e:
        task_root = None
        error = {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Error: the function's code could not be unpacked: {e}",
            "trace": [],
        }

    if task_root is not None:
        invocations = _runtime_dir() / "invocations"
        invocations.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{request_id}-", dir=invocations))
        try:
            (work / "tmp").mkdir()
            deadline_ms = int(time.time() * 1000 + timeout * 1000)
            invoked_arn = fn.function_arn + (f":{qualifier}" if qualifier and qualifier != "$LATEST" else "")
            (work / "invocation.json").write_text(
                json.dumps(
                    {
                        "taskRoot": str(task_root),
                        "handler": fn.handler,
                        "requestId": request_id,
                        "deadlineMs": deadline_ms,
                        "functionName": fn.function_name,
                        "functionVersion": version,
                        "invokedFunctionArn": invoked_arn,
                        "memoryLimitInMB": fn.memory_size,
                        "logGroupName": fn.logs_group_name,
                        "logStreamName": log_stream,
                        "event": event,
                    }
                )
            )
            result_path = work / "result.json"
            with open(work / "output.log", "wb") as out:
                proc = subprocess.Popen(
                    [_node(), str(_bootstrap()), str(work / "invocation.json"), str(result_path)],
                    cwd=task_root,
                    env=_environment(fn, task_root, work / "tmp", log_stream),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # one process group: a timeout kills the children too
                )
                try:
                    proc.wait(timeout=timeout)
                    timed_out = False
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    # AWS freezes the sandbox after the answer; nothing the
                    # function left running may go on here either.
                    _kill_group(proc)
                    proc.wait()
            output = (work / "output.log").read_text(errors="replace")
            if timed_out:
                error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                }
            elif result_path.exists():
                outcome = json.loads(result_path.read_text())
                if outcome.get("ok"):
                    payload_bytes = outcome["payload"].encode()
                else:
                    error = outcome["error"]
            else:
                code = proc.returncode
                # Go's wording, as AWS's runtime reports it: "exit status 1", "signal: killed"
                how = f"exit status {code}" if code >= 0 else f"signal: {(signal.strsignal(-code) or str(-code)).lower()}"
                error = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {how}",
                }
        finally:
            shutil.rmtree(work, ignore_errors=True)

    duration_ms = (time.monotonic() - started) * 1000
    if error is not None:
        payload_bytes = json.dumps(error, separators=(",", ":")).encode()
    lines = [f"START RequestId: {request_id} Version: {version}"]
    if output:
        lines.append(output.rstrip("\n"))
    if error is not None and error.get("errorType") == "Sandbox.Timedout":
        lines.append(f"{_iso_now()} {request_id} Task timed out after {timeout:.2f} seconds")
    lines.append(f"END RequestId: {request_id}")
    lines.append(
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {fn.memory_size} MB\t"
    )
    logs = "\n".join(lines) + "\n"
    _keep_logs(fn, log_stream, logs)

    try:
        parsed = json.loads(payload_bytes) if payload_bytes else None
    except ValueError:
        parsed = None
    return InvokeResult(
        payload=parsed,
        function_error="Unhandled" if error is not None else None,
        logs=logs,
        raw_payload=payload_bytes,
        request_id=request_id,
        executed_version=version,
    )


def _keep_logs(fn: LambdaFunction, stream: str, logs: str) -> None:
    # Best effort: losing a log line must not turn a good invocation into an error.
    try:
        path = _runtime_dir() / "logs" / f"{fn.function_name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(logs)
    except OSError as e:
        log.warning("could not append to the log file of %s: %s", fn.function_name, e)
    try:
        backend = fn.logs_backend
        backend.ensure_log_group(fn.logs_group_name)
        backend.create_log_stream(fn.logs_group_name, stream)
        stamp = int(time.time() * 1000)
        backend.put_log_events(
            fn.logs_group_name, stream, [{"timestamp": stamp, "message": line} for line in logs.splitlines()]
        )
    except Exception as e:  # moto's logs backend raises its own service errors
        log.warning("could not write CloudWatch Logs for %s: %s", fn.function_name, e)


def log_tail(logs: str) -> str:
    """X-Amz-Log-Result: base64 of the last 4 KB of the log."""
    return base64.b64encode(logs.encode()[-LOG_TAIL_BYTES:]).decode()


# --------------------------------------------------------------------------
# public Python interface


def _split_arn(function_arn_or_name: str, account_id: str, region: str) -> tuple[str, str]:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    parts = function_arn_or_name.split(":")
    if function_arn_or_name.startswith("arn:") and len(parts) >= 7:
        return parts[4], parts[3]
    return account_id, region


def invoke(function_arn_or_name: str, payload: dict, *, account_id: str, region: str) -> InvokeResult:
    """Invoke a function synchronously (RequestResponse), as Lambda's Invoke would.

    Node.js functions run here; other runtimes get moto's answer, wrapped alike.
    """
    account_id, region = _split_arn(function_arn_or_name, account_id, region)
    backend = get_backend(account_id, region)
    fn = backend.get_function(function_arn_or_name)
    if runs_locally(fn):
        return _run(fn, payload)
    headers: dict[str, str] = {}
    raw = backend.invoke(function_arn_or_name, None, json.dumps(payload), {}, headers) or b""
    raw = raw.encode() if isinstance(raw, str) else raw
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    moto_logs = base64.b64decode(headers.get("x-amz-log-result", "")).decode(errors="replace")
    return InvokeResult(
        payload=parsed,
        function_error=headers.get("x-amz-function-error"),
        logs=moto_logs,
        raw_payload=raw,
    )


# --------------------------------------------------------------------------
# the Invoke API


def _invoke_action(original: Callable[[LambdaResponse], Any]) -> Callable[[LambdaResponse], Any]:
    def invoke_action(self: LambdaResponse) -> Any:
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        qualifier = self._get_param("qualifier")
        fn = self.backend.get_function(function_name, qualifier)  # moto's own not-found error
        if not runs_locally(fn):
            return original(self)

        body = self.raw_body or b""
        if isinstance(body, str):
            body = body.encode()
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as e:
            raise LambdaClientError(
                "InvalidRequestContentException", f"Could not parse request body into json: {e}"
            ) from None

        inv_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if inv_type == "DryRun":
            return 204, {"status": "204"}, ""
        if inv_type == "Event":
            threading.Thread(
                target=_run, args=(fn, event, qualifier), name=f"lambda-event-{fn.function_name}", daemon=True
            ).start()
            return 202, {"status": "202"}, ""

        result = _run(fn, event, qualifier)
        headers = {"content-type": "application/json", "X-Amz-Executed-Version": result.executed_version}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = log_tail(result.logs)
        return 200, headers, result.raw_payload

    invoke_action.__name__ = original.__name__
    invoke_action.__doc__ = original.__doc__
    return invoke_action


_installed = False


def install() -> None:
    """Patch moto's Lambda Invoke. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    LambdaResponse.invoke = _invoke_action(LambdaResponse.invoke)  # type: ignore[method-assign]
