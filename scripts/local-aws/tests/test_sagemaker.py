"""SageMaker UpdateEndpoint guardrails and serving endpoints, against `python -m astrolens_moto`.

Two servers: one control plane only (ASTROLENS_SM_SERVE=0, fake images), one that
runs real instances of a tiny Node image pushed to a real registry. Both with
ASTROLENS_TIME_SCALE=600: 600 modelled seconds of bake take 1 real second.

Run: PYTHONPATH=scripts/local-aws .local/venv/bin/python -m pytest scripts/local-aws/tests/test_sagemaker.py
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from localaws import (
    aws_client,
    build_image,
    push_built_image,
    start_registry,
    start_server,
    tar_layer,
    wait_until,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
PING_FAILURE = "The primary container for production variant AllTraffic did not pass the ping health check."
FAST = {
    "ASTROLENS_TIME_SCALE": "600",
    "ASTROLENS_SM_STEP_SECONDS": "60",  # 0.1 s per launch / traffic shift / termination
    "ASTROLENS_SM_ALARM_POLL_SECONDS": "0.02",
}


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    work = tmp_path_factory.mktemp("control")
    srv = start_server(work, "http://127.0.0.1:1", ASTROLENS_STATE_DIR=str(work / "state"), ASTROLENS_SM_SERVE="0", **FAST)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sm(control):
    return aws_client(control, "sagemaker")


@pytest.fixture(scope="module")
def cw(control):
    return aws_client(control, "cloudwatch")


def uid() -> str:
    return uuid.uuid4().hex[:8]


def make_endpoint(sm, image: str = "127.0.0.1:1/astrolens/none:1", versions=("v1", "v2"), count: int = 2, env=None):
    """Models and configs per version (same image, MODEL_VERSION differs); the endpoint on the first."""
    base = f"ep-{uid()}"
    configs = []
    for v in versions:
        environment = {"MODEL_VERSION": v, **((env or {}).get(v, {}))}
        sm.create_model(ModelName=f"{base}-{v}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "Environment": environment})
        sm.create_endpoint_config(
            EndpointConfigName=f"{base}-{v}",
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": f"{base}-{v}", "InitialInstanceCount": count, "InstanceType": "ml.m5.large"}
            ],
        )
        configs.append(f"{base}-{v}")
    sm.create_endpoint(EndpointName=base, EndpointConfigName=configs[0])
    return base, configs


def step_of(d: dict) -> tuple:
    variants = d.get("PendingDeploymentSummary", {}).get("ProductionVariants") or [{}]
    status = (variants[0].get("VariantStatus") or [{}])[0]
    return (d["EndpointStatus"], d.get("EndpointConfigName"), status.get("Status"), status.get("StatusMessage"))


def follow(sm, name: str, timeout: float = 30, on_step=None) -> tuple[dict, list[tuple]]:
    """Poll DescribeEndpoint until it is no longer Updating; the distinct steps seen, in order."""
    steps: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sm.describe_endpoint(EndpointName=name)
        step = step_of(d)
        if not steps or steps[-1] != step:
            steps.append(step)
            if on_step:
                on_step(d, step)
        if d["EndpointStatus"] not in ("Updating", "RollingBack"):
            return d, steps
        time.sleep(0.02)
    raise TimeoutError(f"endpoint {name} still updating after {timeout}s; steps seen: {steps}")


def canary(wait: int, termination: int = 600, size=("INSTANCE_COUNT", 1), alarms=(), **policy) -> dict:
    dc: dict = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": wait,
                "CanarySize": {"Type": size[0], "Value": size[1]},
            },
            "TerminationWaitInSeconds": termination,
            **policy,
        }
    }
    if alarms:
        dc["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return dc


def make_alarm(cw, state: str = "OK") -> str:
    name = f"alarm-{uid()}"
    cw.put_metric_alarm(
        AlarmName=name, MetricName="ModelLatency", Namespace="AWS/SageMaker", Statistic="Average", Period=60,
        EvaluationPeriods=1, Threshold=1000, ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return name


def messages(steps: list[tuple]) -> list[str]:
    return [s[3] for s in steps if s[3]]


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


# --------------------------------------------------------------------------
# control plane


def test_all_at_once_happy_path_ends_in_service_on_the_new_config(sm):
    name, (old, new) = make_endpoint(sm)
    dc = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
            "TerminationWaitInSeconds": 300,
        }
    }

    arn = sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=dc)["EndpointArn"]
    updating = sm.describe_endpoint(EndpointName=name)
    final, steps = follow(sm, name)

    assert arn == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{name}"
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == old  # top level: the old name while Updating (default)
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new
    assert updating["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert messages(steps) == [
        "Launching 2 instance(s).",
        "Activating traffic on full capacity of 2 instance(s).",
        "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on full capacity of 2 instance(s).",
        "Baking for 300 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 2 instance(s).",
        "Terminating 2 instance(s) of the old fleet.",
    ]
    assert {s[1] for s in steps[:-1]} == {old}
    assert final["EndpointStatus"] == "InService"
    assert final["EndpointConfigName"] == new
    assert final["LastDeploymentConfig"] == dc
    assert "PendingDeploymentSummary" not in final and "FailureReason" not in final


def test_canary_steps_in_order_then_in_service_on_the_new_config(sm):
    name, (old, new) = make_endpoint(sm)
    started = time.monotonic()

    sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(600, 600))
    final, steps = follow(sm, name)

    assert [(s[2], s[3]) for s in steps if s[2]] == [
        ("Creating", "Launching 2 instance(s)."),
        ("ActivatingTraffic", "Activating traffic on canary capacity of 1 instance(s)."),
        ("Baking", "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on canary capacity of 1 instance(s)."),
        ("ActivatingTraffic", "Activating traffic on full capacity of 2 instance(s)."),
        ("Baking", "Baking for 600 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 2 instance(s)."),
        ("Deleting", "Terminating 2 instance(s) of the old fleet."),
    ]
    assert time.monotonic() - started >= 2.0  # two scaled 600 s bakes really waited
    assert (final["EndpointStatus"], final["EndpointConfigName"]) == ("InService", new)


def test_linear_shifts_in_steps_with_a_bake_between(sm):
    name, (_, new) = make_endpoint(sm)
    dc = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 300,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            }
        }
    }
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=dc)
    final, steps = follow(sm, name)

    assert messages(steps)[1:4] == [
        "Activating traffic on 1 instance(s) (50% of capacity) (step 1 of 2).",
        "Baking for 300 seconds (WaitIntervalInSeconds) with traffic enabled on 1 instance(s) (50% of capacity).",
        "Activating traffic on full capacity of 2 instance(s) (step 2 of 2).",
    ]
    assert final["EndpointConfigName"] == new


def test_alarm_during_bake_rolls_back_to_the_old_config_and_the_waiter_calls_it_success(sm, cw):
    name, (old, new) = make_endpoint(sm)
    alarm = make_alarm(cw)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(3600, alarms=[alarm]))

    wait_until(lambda: step_of(sm.describe_endpoint(EndpointName=name))[2] == "Baking", 10, "the canary bake")
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="p99 latency above 1 s")
    # The SDK's waiter: InService is success, whatever the config (B3)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    final = sm.describe_endpoint(EndpointName=name)

    assert final["EndpointStatus"] == "InService"
    assert final["EndpointConfigName"] == old != new  # the silent rollback
    assert alarm in final["FailureReason"] and "ALARM" in final["FailureReason"]
    assert "PendingDeploymentSummary" not in final
    assert final["LastDeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": alarm}]}


def test_alarm_already_in_alarm_rolls_back_at_the_first_evaluation(sm, cw):
    name, (old, new) = make_endpoint(sm)
    alarm = make_alarm(cw, "ALARM")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(3600, alarms=[alarm]))
    final, steps = follow(sm, name, timeout=5)  # the canary bake alone would take 6 s

    assert final["EndpointConfigName"] == old
    assert alarm in final["FailureReason"]
    assert not any(s[2] == "Baking" for s in steps)


def test_maximum_execution_timeout_rolls_back(sm):
    name, (old, new) = make_endpoint(sm)
    sm.update_endpoint(
        EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(3600, MaximumExecutionTimeoutInSeconds=600)
    )
    final, _ = follow(sm, name, timeout=5)
    assert final["EndpointConfigName"] == old
    assert "MaximumExecutionTimeoutInSeconds (600 seconds)" in final["FailureReason"]


def test_fail_next_update_rolls_back_with_that_reason_once(control, sm):
    name, (old, new) = make_endpoint(sm)
    reason = "Rehearsal: SageMaker rolled back on its own."
    r = requests.post(f"{control.url}/astrolens-api/sagemaker/fail-next-update", json={"endpoint": name, "reason": reason}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"] == name

    sm.update_endpoint(EndpointName=name, EndpointConfigName=new)  # no DeploymentConfig: ALL_AT_ONCE
    rolled_back, steps = follow(sm, name)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new)  # armed once only
    succeeded, _ = follow(sm, name)

    assert (rolled_back["EndpointConfigName"], rolled_back["FailureReason"]) == (old, reason)
    # it failed at the (0 s, so unobservable) final bake: after the traffic shift
    assert [s[2] for s in steps if s[2]][-2:] == ["ActivatingTraffic", "Deleting"]
    assert steps[-2][3] == "Rolling back: terminating 2 instance(s) of the new fleet."
    assert "LastDeploymentConfig" not in rolled_back  # none given
    assert succeeded["EndpointConfigName"] == new
    assert "FailureReason" not in succeeded  # a successful update clears it


def test_fault_injection_api_rejects_bad_requests(control):
    r = requests.post(f"{control.url}/astrolens-api/sagemaker/fail-next-update", json={"reason": "x"}, timeout=10)
    assert r.status_code == 400 and "endpoint" in r.json()["message"]
    r = requests.post(f"{control.url}/astrolens-api/sagemaker/no-such-route", json={}, timeout=10)
    assert r.status_code == 404


def test_retain_deployment_config_reuses_the_last_one(sm):
    name, (first, second) = make_endpoint(sm)
    dc = canary(300, 300)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=second, DeploymentConfig=dc)
    follow(sm, name)

    sm.update_endpoint(EndpointName=name, EndpointConfigName=first, RetainDeploymentConfig=True)
    final, steps = follow(sm, name)

    assert "Activating traffic on canary capacity of 1 instance(s)." in messages(steps)
    assert final["EndpointConfigName"] == first
    assert final["LastDeploymentConfig"] == dc


def test_validation_errors(sm):
    name, (old, new) = make_endpoint(sm)
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"

    assert error_of(sm.update_endpoint, EndpointName="nope", EndpointConfigName=new) == (
        "ValidationException", f'Could not find endpoint "{arn}:endpoint/nope".'
    )
    assert error_of(sm.update_endpoint, EndpointName=name, EndpointConfigName="missing") == (
        "ValidationException", f'Could not find endpoint configuration "{arn}:endpoint-config/missing".'
    )
    code, message = error_of(sm.update_endpoint, EndpointName=name, EndpointConfigName=old)
    assert code == "ValidationException" and "already uses endpoint configuration" in message  # [I] default
    code, message = error_of(
        sm.update_endpoint, EndpointName=name, EndpointConfigName=new,
        DeploymentConfig={"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 4000}}},
    )
    assert message == (
        "1 validation error detected: Value '4000' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
        ".waitIntervalInSeconds' failed to satisfy constraint: Member must have value less than or equal to 3600"
    )
    code, message = error_of(sm.update_endpoint, EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(60, size=("INSTANCE_COUNT", 2)))
    assert "exceeds 50% of the new fleet's 2 instance(s)" in message
    code, message = error_of(
        sm.update_endpoint, EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(60, MaximumExecutionTimeoutInSeconds=30000)
    )  # (botocore checks minimums itself; the JavaScript SDK does not check either)
    assert "Member must have value less than or equal to 28800" in message
    code, message = error_of(
        sm.update_endpoint, EndpointName=name, EndpointConfigName=new,
        DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 0}},
    )
    assert "RollingUpdatePolicy is not modelled" in message
    # none of these started anything
    d = sm.describe_endpoint(EndpointName=name)
    assert (d["EndpointStatus"], d["EndpointConfigName"]) == ("InService", old)


def test_in_progress_endpoint_refuses_updates_and_can_be_deleted(sm):
    name, (old, new) = make_endpoint(sm)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(3600))
    endpoint_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{name}"

    assert error_of(sm.update_endpoint, EndpointName=name, EndpointConfigName=old) == (
        "ValidationException", f'Cannot update in-progress endpoint "{endpoint_arn}".'
    )
    code, message = error_of(
        sm.update_endpoint_weights_and_capacities, EndpointName=name,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 1.0}],
    )
    assert message == f'Cannot update in-progress endpoint "{endpoint_arn}".'
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"

    sm.delete_endpoint(EndpointName=name)
    assert error_of(sm.describe_endpoint, EndpointName=name)[0] == "ValidationException"


def test_without_serving_invoke_endpoint_is_motos_stub_even_for_binary_bodies(control, sm):
    name, _ = make_endpoint(sm)
    r = aws_client(control, "sagemaker-runtime").invoke_endpoint(EndpointName=name, Body=bytes(range(256)), ContentType="image/png")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Body"].read()  # moto's canned answer; no instance was started
    assert requests.get(f"{control.url}/astrolens-api/sagemaker/instances", timeout=10).json() == []


def test_cloudformation_keeps_explicit_sagemaker_names(control, sm):
    suffix = uid()
    template = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"ModelName": f"astrolens-model-{suffix}", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": "127.0.0.1:1/x:1"}},
            },
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "EndpointConfigName": f"astrolens-config-{suffix}",
                    "ProductionVariants": [
                        {"VariantName": "AllTraffic", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]}, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
                    ],
                },
            },
            "Endpoint": {
                "Type": "AWS::SageMaker::Endpoint",
                "Properties": {"EndpointName": f"astrolens-{suffix}", "EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}},
            },
        }
    }
    cfn = aws_client(control, "cloudformation")
    cfn.create_stack(StackName=f"stack-{suffix}", TemplateBody=json.dumps(template))

    assert sm.describe_model(ModelName=f"astrolens-model-{suffix}")["ModelName"] == f"astrolens-model-{suffix}"
    config = sm.describe_endpoint_config(EndpointConfigName=f"astrolens-config-{suffix}")
    assert config["ProductionVariants"][0]["ModelName"] == f"astrolens-model-{suffix}"
    endpoint = sm.describe_endpoint(EndpointName=f"astrolens-{suffix}")
    assert endpoint["EndpointConfigName"] == f"astrolens-config-{suffix}"


# --------------------------------------------------------------------------
# endpoints that serve: a real image, real instances

SERVER_JS = r"""
const http = require('node:http');
const crypto = require('node:crypto');
if (process.env.CRASH_ON_START) { console.error('model failed to load'); process.exit(3); }
http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ping') { res.writeHead(200); return res.end(); }
  if (req.method === 'POST' && req.url === '/invocations') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString();
      const sha256 = crypto.createHash('sha256').update(raw).digest('hex');
      if (body === 'bad') { res.writeHead(400, { 'content-type': 'text/plain' }); return res.end('cannot decode image'); }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: process.env.MODEL_VERSION, body, sha256, pid: process.pid,
        contentType: req.headers['content-type'], accept: req.headers['accept'] }));
    });
    return;
  }
  res.writeHead(404); res.end();
}).listen(Number(process.env.PORT || 8080), '127.0.0.1');
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def serving(registry, tmp_path_factory):
    work = tmp_path_factory.mktemp("serving")
    srv = start_server(work, registry.url, ASTROLENS_STATE_DIR=str(work / "state"), ASTROLENS_SM_HEALTH_TIMEOUT="20", **FAST)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def model_image(registry) -> str:
    layer = tar_layer([("dir", "opt"), ("dir", "opt/model"), ("file", "opt/model/server.js", SERVER_JS)])
    image = build_image(
        [layer], {"config": {"Entrypoint": ["node", "/opt/model/server.js"], "WorkingDir": "/opt/model", "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]}}
    )
    digest = push_built_image(registry.url, "astrolens/sm-model", image, "v1")
    return f"{registry.url.removeprefix('http://')}/astrolens/sm-model@{digest}"


@pytest.fixture(scope="module")
def ssm(serving):
    return aws_client(serving, "sagemaker")


@pytest.fixture(scope="module")
def runtime(serving):
    return aws_client(serving, "sagemaker-runtime")


def invoke(runtime, name: str, body: bytes = b'{"x": 1}') -> tuple[dict, dict]:
    r = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="application/json", Accept="application/json")
    return r, json.loads(r["Body"].read())


def instances(server, endpoint: str) -> list[dict]:
    r = requests.get(f"{server.url}/astrolens-api/sagemaker/instances", timeout=10)
    assert r.status_code == 200, r.text
    return [i for i in r.json() if i["endpoint"] == endpoint]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_invoke_endpoint_reaches_a_real_instance(serving, ssm, runtime, model_image):
    name, (config, _) = make_endpoint(ssm, model_image)
    assert instances(serving, name) == []  # started lazily

    r, out = invoke(runtime, name)

    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["InvokedProductionVariant"] == "AllTraffic"
    assert r["ContentType"] == "application/json"
    assert out["version"] == "v1" and out["body"] == '{"x": 1}'
    assert (out["contentType"], out["accept"]) == ("application/json", "application/json")
    [inst] = instances(serving, name)
    assert (inst["config"], inst["side"], inst["variant"], inst["pid"]) == (config, "blue", "AllTraffic", out["pid"])
    assert alive(inst["pid"])
    assert invoke(runtime, name)[1]["pid"] == out["pid"]  # the same instance serves on
    cutout = bytes(range(256)) * 64  # binary, as image cut-outs are
    r = runtime.invoke_endpoint(EndpointName=name, Body=cutout, ContentType="image/png")
    assert json.loads(r["Body"].read())["sha256"] == hashlib.sha256(cutout).hexdigest()

    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName=name, Body=b"bad", ContentType="image/png")
    err = e.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 400 and err["OriginalMessage"] == "cannot decode image"
    assert 'Received client error (400) from primary with message "cannot decode image"' in err["Error"]["Message"]

    code, message = error_of(runtime.invoke_endpoint, EndpointName="nope", Body=b"{}")
    assert (code, message) == ("ValidationError", f"Endpoint nope of account {ACCOUNT} not found.")


def test_canary_routes_by_the_split_then_serves_green_and_stops_blue(serving, ssm, runtime, model_image):
    name, (old, new) = make_endpoint(ssm, model_image)
    blue_pid = invoke(runtime, name)[1]["pid"]

    ssm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(1800, 300, size=("CAPACITY_PERCENT", 50)))
    wait_until(lambda: step_of(ssm.describe_endpoint(EndpointName=name))[2] == "Baking", 20, "the canary bake")
    during = {invoke(runtime, name)[1]["version"] for _ in range(30)}  # 50% each way: both, except 2 in 2^30
    final, _ = follow(ssm, name)
    after = {invoke(runtime, name)[1]["version"] for _ in range(10)}

    assert during == {"v1", "v2"}
    assert final["EndpointConfigName"] == new
    assert after == {"v2"}
    assert not alive(blue_pid)  # blue stopped after the final bake
    assert [(i["config"], i["side"]) for i in instances(serving, name)] == [(new, "blue")]


def test_green_that_fails_to_start_rolls_back_and_blue_keeps_serving(serving, ssm, runtime, model_image):
    name, (old, new) = make_endpoint(ssm, model_image, env={"v2": {"CRASH_ON_START": "1"}})
    invoke(runtime, name)

    ssm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(600))
    final, steps = follow(ssm, name)

    assert final["EndpointStatus"] == "InService"
    assert final["EndpointConfigName"] == old
    assert final["FailureReason"].startswith(PING_FAILURE)
    assert "EssentialContainerExited" in final["FailureReason"]  # the local detail, after AWS's text
    assert not any(s[2] == "ActivatingTraffic" for s in steps)  # never took traffic
    assert invoke(runtime, name)[1]["version"] == "v1"
    assert [i["config"] for i in instances(serving, name)] == [old]


def test_alarm_rollback_stops_green_and_sends_everything_back_to_blue(serving, ssm, runtime, model_image):
    cw = aws_client(serving, "cloudwatch")
    name, (old, new) = make_endpoint(ssm, model_image)
    invoke(runtime, name)
    alarm = make_alarm(cw)

    ssm.update_endpoint(
        EndpointName=name, EndpointConfigName=new, DeploymentConfig=canary(3600, size=("CAPACITY_PERCENT", 50), alarms=[alarm])
    )
    wait_until(lambda: step_of(ssm.describe_endpoint(EndpointName=name))[2] == "Baking", 20, "the canary bake")
    [green] = [i for i in instances(serving, name) if i["side"] == "green"]
    assert green["config"] == new and alive(green["pid"])
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above threshold")
    final, _ = follow(ssm, name)

    assert final["EndpointConfigName"] == old and alarm in final["FailureReason"]
    assert not alive(green["pid"])
    assert {invoke(runtime, name)[1]["version"] for _ in range(10)} == {"v1"}
