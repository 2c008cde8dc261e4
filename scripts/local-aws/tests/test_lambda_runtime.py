"""Node.js Lambda functions run for real, against `python -m astrolens_moto`, driven by boto3.

Run: PYTHONPATH=scripts/local-aws .local/venv/bin/python -m pytest scripts/local-aws/tests/test_lambda_runtime.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

from localaws import aws_client, start_server, wait_until

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def server(tmp_path_factory, state):
    # No registry is needed for Lambda; the URL only has to parse.
    srv = start_server(tmp_path_factory.mktemp("moto"), "http://127.0.0.1:1", ASTROLENS_STATE_DIR=str(state))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(server):
    return aws_client(server, "lambda")


@pytest.fixture(scope="module")
def role(server):
    iam = aws_client(server, "iam")
    return iam.create_role(RoleName="lambda-runtime-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def zipped(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def create(lam, role, files: dict[str, str], handler: str = "index.handler", **kwargs) -> str:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    code = kwargs.pop("Code", None) or {"ZipFile": zipped(files)}
    lam.create_function(
        FunctionName=name, Runtime=kwargs.pop("Runtime", "nodejs20.x"), Role=role, Handler=handler, Code=code, **kwargs
    )
    return name


def call(lam, name: str, event=None, **kwargs):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kwargs)
    return r, json.loads(r["Payload"].read() or b"null")


def test_esm_handler_gets_event_context_and_environment(server, lam, role):
    source = """
export const handler = async (event, context) => ({
  event,
  functionName: context.functionName,
  awsRequestId: context.awsRequestId,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  remaining: context.getRemainingTimeInMillis(),
  env: { GREETING: process.env.GREETING, AWS_REGION: process.env.AWS_REGION,
         AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
         AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME },
});
"""
    name = create(lam, role, {"index.mjs": source}, Environment={"Variables": {"GREETING": "hello"}}, Timeout=7, MemorySize=256)

    r, out = call(lam, name, {"image": "m31.png"})

    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert r["ExecutedVersion"] == "$LATEST"
    assert out["event"] == {"image": "m31.png"}
    assert out["functionName"] == name
    assert out["invokedFunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    assert out["memoryLimitInMB"] == "256"
    assert len(out["awsRequestId"]) == 36
    assert 0 < out["remaining"] <= 7000
    assert out["env"] == {
        "GREETING": "hello",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.url,  # the function's SDK talks to this local AWS
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_LAMBDA_FUNCTION_NAME": name,
    }


def test_commonjs_handlers_in_a_subdirectory_async_and_callback(lam, role):
    files = {
        "src/app.js": "exports.run = async (event) => ({ style: 'cjs-async', n: event.n + 1 });\n"
        "module.exports.legacy = (event, context, callback) => callback(null, { style: 'callback', n: event.n * 2 });\n",
    }
    async_name = create(lam, role, files, handler="src/app.run")
    callback_name = create(lam, role, files, handler="src/app.legacy")

    assert call(lam, async_name, {"n": 1})[1] == {"style": "cjs-async", "n": 2}
    assert call(lam, callback_name, {"n": 21})[1] == {"style": "callback", "n": 42}


def test_js_file_in_a_module_package_is_esm(lam, role):
    files = {
        "package.json": json.dumps({"type": "module"}),
        "index.js": "import { helper } from './lib.js';\nexport const handler = async () => helper();\n",
        "lib.js": "export const helper = () => ({ esm: typeof require === 'undefined' });\n",
    }
    name = create(lam, role, files)
    assert call(lam, name)[1] == {"esm": True}


def test_undefined_result_is_json_null(lam, role):
    name = create(lam, role, {"index.mjs": "export const handler = async () => {};"})
    r, out = call(lam, name)
    assert "FunctionError" not in r and out is None


def test_thrown_error_is_unhandled_with_aws_shaped_payload_and_log(lam, role):
    source = "export const handler = async () => { console.log('about to fail'); throw new TypeError('bad image'); };"
    name = create(lam, role, {"index.mjs": source})

    r, out = call(lam, name, LogType="Tail")

    assert r["StatusCode"] == 200  # function errors are still a 200, as on AWS
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "TypeError"
    assert out["errorMessage"] == "bad image"
    assert out["trace"][0] == "TypeError: bad image"
    logs = base64.b64decode(r["LogResult"]).decode()
    assert "\tINFO\tabout to fail" in logs
    assert "\tERROR\tInvoke Error" in logs and '"errorMessage":"bad image"' in logs


def test_missing_handler_and_missing_module(lam, role):
    no_export = create(lam, role, {"index.mjs": "export const other = async () => 1;"})
    no_module = create(lam, role, {"main.mjs": "export const handler = async () => 1;"})

    r, out = call(lam, no_export)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.HandlerNotFound"
    assert out["errorMessage"] == "index.handler is undefined or not exported"
    r, out = call(lam, no_module)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.ImportModuleError"


def test_process_exit_without_answer_is_runtime_exit_error(lam, role):
    name = create(lam, role, {"index.mjs": "export const handler = async () => process.exit(3);"})
    r, out = call(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.ExitError"
    assert out["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")


def test_timeout_kills_the_function_and_answers_task_timed_out(lam, role, tmp_path):
    pid_file = tmp_path / "pid"
    source = """
import { writeFileSync } from 'node:fs';
export const handler = async () => {
  writeFileSync(process.env.PID_FILE, String(process.pid));
  await new Promise(() => setInterval(() => {}, 1000));  // never settles
};
"""
    name = create(lam, role, {"index.mjs": source}, Timeout=1, Environment={"Variables": {"PID_FILE": str(pid_file)}})

    started = time.monotonic()
    r, out = call(lam, name, LogType="Tail")
    took = time.monotonic() - started

    assert r["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Sandbox.Timedout"
    assert out["errorMessage"].startswith("RequestId: ")
    assert out["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    assert 1.0 <= took < 10
    assert "Task timed out after 1.00 seconds" in base64.b64decode(r["LogResult"]).decode()
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed, not left running
        os.kill(pid, 0)


def test_hook_shaped_response_for_an_ecs_lifecycle_hook(lam, role):
    source = """
export const handler = async (event) => {
  const weights = event.executionDetails.productionTrafficWeights;
  return { hookStatus: Object.keys(weights).length ? 'SUCCEEDED' : 'IN_PROGRESS', callBackDelay: 5,
           hookDetails: { seen: event.lifecycleStage } };
};
"""
    name = create(lam, role, {"index.mjs": source})
    event = {
        "executionId": "exec-1",
        "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
        "resourceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service-deployment/c/s/abc",
        "executionDetails": {
            "serviceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/c/s",
            "targetServiceRevisionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service-revision/c/s/2",
            "testTrafficWeights": {},
            "productionTrafficWeights": {"green": 100, "blue": 0},
        },
    }
    r, out = call(lam, name, event)
    assert "FunctionError" not in r
    assert out == {"hookStatus": "SUCCEEDED", "callBackDelay": 5, "hookDetails": {"seen": "POST_TEST_TRAFFIC_SHIFT"}}


def test_logs_tail_is_the_last_4kb_and_cloudwatch_logs_keep_everything(server, lam, role):
    source = "export const handler = async () => { for (let i = 0; i < 200; i++) console.log('line', i, 'x'.repeat(40)); return 1; };"
    name = create(lam, role, {"index.mjs": source})

    r, _ = call(lam, name, LogType="Tail")

    tail = base64.b64decode(r["LogResult"])
    assert len(tail) == 4096
    text = tail.decode(errors="replace")
    assert "line 199" in text and "\nEND RequestId: " in text and "REPORT RequestId: " in text
    assert "line 0 " not in text
    r2 = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "LogResult" not in r2  # only with LogType Tail
    logs = aws_client(server, "logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="line")["events"]
    messages = [e["message"] for e in events]
    assert any("\tINFO\tline 0 " in m for m in messages)
    assert sum("\tINFO\tline 199 " in m for m in messages) == 2  # both invocations


def test_code_from_s3_is_unpacked_once_per_code_sha256(server, lam, role, state):
    code = zipped({"index.mjs": "export const handler = async (e) => ({ fromS3: true, n: e.n });"})
    s3 = aws_client(server, "s3")
    bucket = f"code-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="fn.zip", Body=code)
    name = create(lam, role, {}, Code={"S3Bucket": bucket, "S3Key": "fn.zip"})
    digest = hashlib.sha256(code).digest()
    assert lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == base64.b64encode(digest).decode()

    assert call(lam, name, {"n": 1})[1] == {"fromS3": True, "n": 1}
    code_dir = state / "runtime" / "lambda" / "code" / digest.hex()
    first = code_dir.stat().st_ino
    assert call(lam, name, {"n": 2})[1] == {"fromS3": True, "n": 2}
    assert code_dir.stat().st_ino == first
    # the same zip uploaded as another function shares the unpacked tree
    other = create(lam, role, {}, Code={"ZipFile": code})
    assert call(lam, other, {"n": 3})[1] == {"fromS3": True, "n": 3}
    assert len([p for p in code_dir.parent.iterdir() if p.name == digest.hex()]) == 1


def test_event_invocation_runs_in_the_background_and_dry_run_does_not_run(lam, role, tmp_path):
    marker = tmp_path / "ran"
    source = "import { appendFileSync } from 'node:fs';\nexport const handler = async (e) => appendFileSync(process.env.MARKER, e.tag + '\\n');"
    name = create(lam, role, {"index.mjs": source}, Environment={"Variables": {"MARKER": str(marker)}})

    dry = lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=json.dumps({"tag": "dry"}))
    assert dry["StatusCode"] == 204
    queued = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"tag": "event"}))
    assert queued["StatusCode"] == 202

    wait_until(lambda: marker.exists() and marker.read_text() == "event\n", 20, "the Event invocation to run")
    assert "dry" not in marker.read_text()


def test_bad_requests_and_other_runtimes(lam, role):
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    name = create(lam, role, {"index.mjs": "export const handler = async () => 1;"})
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"

    # Not Node.js: moto's own Invoke (Docker-based; without Docker it answers "Handled")
    py = create(lam, role, {"index.py": "def handler(e, c): return 1"}, Runtime="python3.12")
    r = lam.invoke(FunctionName=py, Payload=b"{}")
    assert r.get("FunctionError") == "Handled"
    assert b"docker" in r["Payload"].read()


def test_python_interface_for_other_extensions(tmp_path, monkeypatch):
    """lambda_runtime.invoke(), as ecs.py calls it, inside moto's in-process mock."""
    import boto3
    from moto import mock_aws

    from astrolens_moto import lambda_runtime

    monkeypatch.setenv("ASTROLENS_STATE_DIR", str(tmp_path))
    source = "export const handler = async (e, c) => { console.log('hook', e.lifecycleStage); return { hookStatus: 'SUCCEEDED', fn: c.functionName }; };"
    failing = "export const handler = async () => { throw new Error('smoke test failed'); };"
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        arn = lam.create_function(
            FunctionName="hook", Runtime="nodejs20.x", Role=role, Handler="index.handler", Code={"ZipFile": zipped({"index.mjs": source})}
        )["FunctionArn"]
        lam.create_function(
            FunctionName="failing", Runtime="nodejs20.x", Role=role, Handler="index.handler", Code={"ZipFile": zipped({"index.mjs": failing})}
        )

        ok = lambda_runtime.invoke(arn, {"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT"}, account_id=ACCOUNT, region="us-east-1")
        bad = lambda_runtime.invoke("failing", {}, account_id=ACCOUNT, region="us-east-1")

    assert ok.payload == {"hookStatus": "SUCCEEDED", "fn": "hook"}
    assert ok.function_error is None
    assert "\tINFO\thook POST_TEST_TRAFFIC_SHIFT" in ok.logs
    assert bad.function_error == "Unhandled"
    assert bad.payload["errorMessage"] == "smoke test failed"
