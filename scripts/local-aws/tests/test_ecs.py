"""ECS blue/green service deployments, against real processes: docker-registry,
`python -m astrolens_moto`, Node.js services started from a pushed image, Node.js
Lambda hooks, and the local ALB in front of them.

Run: PYTHONPATH=scripts/local-aws .local/venv/bin/python -m pytest scripts/local-aws/tests/test_ecs.py

Time is scaled (ASTROLENS_TIME_SCALE=600: a minute of bake is 0.1 s). Every wait
polls with a deadline and fails with what it last saw.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.config
import pytest
import requests
from botocore.exceptions import ClientError

from localaws import (
    DOCKER_MANIFEST_V2,
    TinyImage,
    free_port,
    push_image,
    sha256_digest,
    start_registry,
    start_server,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
SCALE = 600  # 1 modelled minute = 0.1 s
FINISHED = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}

SERVER_JS = """
const http = require('http');
const version = process.env.VERSION || 'unset';
http.createServer((req, res) => {
  if (req.url === '/ping') { res.writeHead(200); res.end('ok'); return; }
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify({version}));
}).listen(Number(process.env.PORT), '127.0.0.1');
"""

# One handler for every hook test; its behaviour comes from its environment,
# and every event it receives is appended to RECORD_FILE for the test to read.
HOOK_JS = """
const fs = require('fs');
exports.handler = async (event) => {
  fs.appendFileSync(process.env.RECORD_FILE, JSON.stringify(event) + '\\n');
  const mode = process.env.MODE;
  if (mode === 'fail') return {hookStatus: 'FAILED'};
  if (mode === 'throw') throw new Error('smoke test exploded');
  if (mode === 'progress') {
    const n = (event.hookDetails && event.hookDetails.count) || 0;
    if (n < 2) return {hookStatus: 'IN_PROGRESS', callBackDelay: 60, hookDetails: {count: n + 1}};
    return {hookStatus: 'SUCCEEDED'};
  }
  if (mode === 'smoke') {
    // what the real smoke test does: call the green side through the test listener
    const r = await fetch(process.env.TEST_URL + '/');
    const body = await r.json();
    return {hookStatus: body.version === process.env.EXPECT ? 'SUCCEEDED' : 'FAILED'};
  }
  return {hookStatus: 'SUCCEEDED'};
};
"""


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    srv = start_server(
        tmp_path_factory.mktemp("moto"),
        registry.url,
        ASTROLENS_TIME_SCALE=str(SCALE),
        ASTROLENS_STATE_DIR=str(state),
    )
    yield srv
    srv.stop()
    # the server stops what it started: no instance of ours may outlive it
    leftovers = [p for p in (state / "runtime" / "instances").glob("*") if p.is_file()]
    assert leftovers == [], f"instances left running: {leftovers}"


def _client(server, name: str):
    return boto3.client(
        name,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def aws(server):
    return {
        n: _client(server, n)
        for n in ("ecs", "elbv2", "ec2", "cloudwatch", "lambda", "iam", "cloudformation")
    }


def make_node_image() -> TinyImage:
    """A real image: /app/server.js run by `node`, answering /ping and / with $VERSION."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("app/", None), ("app/server.js", SERVER_JS.encode())):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    tar_bytes = buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Cmd": ["node", "/app/server.js"],
                "WorkingDir": "/app",
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_V2,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": sha256_digest(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": sha256_digest(layer),
                }
            ],
        }
    ).encode()
    return TinyImage(config=config, layer=layer, manifest=manifest, media_type=DOCKER_MANIFEST_V2)


@pytest.fixture(scope="module")
def image_uri(registry) -> str:
    push_image(registry.url, "astrolens/web", make_node_image(), "v1")
    return f"{registry.url.removeprefix('http://')}/astrolens/web:v1"


@pytest.fixture(scope="module")
def network(aws) -> dict[str, Any]:
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return {"vpc": vpc, "subnets": subnets}


@pytest.fixture(scope="module")
def hook_role(aws) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return aws["iam"].create_role(RoleName="hook-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]


# --------------------------------------------------------------------------
# helpers


@dataclass
class Stack:
    """An ALB with a production and a test listener, two target groups, a cluster."""

    cluster: str
    blue_tg: str
    green_tg: str
    prod_rule: str
    test_rule: str
    prod_url: str
    test_url: str


def make_stack(aws, network, name: str) -> Stack:
    elbv2 = aws["elbv2"]
    lb = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=network["subnets"], Type="application")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    tgs = [
        elbv2.create_target_group(
            Name=f"{name}-{c}",
            Protocol="HTTP",
            Port=8080,
            VpcId=network["vpc"],
            TargetType="ip",
            HealthCheckPath="/ping",
        )["TargetGroups"][0]["TargetGroupArn"]
        for c in ("blue", "green")
    ]
    rules, urls = [], []
    for _ in ("prod", "test"):
        port = free_port()
        listener = elbv2.create_listener(
            LoadBalancerArn=lb,
            Protocol="HTTP",
            Port=port,
            DefaultActions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {
                        "StatusCode": "404",
                        "ContentType": "text/plain",
                        "MessageBody": "no rule",
                    },
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        rule = elbv2.create_rule(
            ListenerArn=listener,
            Priority=1,
            Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": tgs[0], "Weight": 100},
                            {"TargetGroupArn": tgs[1], "Weight": 0},
                        ]
                    },
                }
            ],
        )["Rules"][0]["RuleArn"]
        rules.append(rule)
        urls.append(f"http://127.0.0.1:{port}")
    aws["ecs"].create_cluster(clusterName=name)
    return Stack(
        cluster=name,
        blue_tg=tgs[0],
        green_tg=tgs[1],
        prod_rule=rules[0],
        test_rule=rules[1],
        prod_url=urls[0],
        test_url=urls[1],
    )


def register_td(aws, family: str, image: str, version: str) -> str:
    return aws["ecs"].register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": image,
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "VERSION", "value": version}],
                "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/ping || exit 1"]},
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]


def bg_config(
    bake_minutes: int = 1, hooks: list[dict] | None = None, alarms: list[str] | None = None, **extra
) -> dict:
    conf: dict[str, Any] = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake_minutes, **extra}
    if hooks:
        conf["lifecycleHooks"] = hooks
    if alarms:
        conf["alarms"] = {"alarmNames": alarms, "enable": True, "rollback": True}
    return conf


def load_balancers(stack: Stack) -> list[dict]:
    return [
        {
            "targetGroupArn": stack.blue_tg,
            "containerName": "web",
            "containerPort": 8080,
            "advancedConfiguration": {
                "alternateTargetGroupArn": stack.green_tg,
                "productionListenerRule": stack.prod_rule,
                "testListenerRule": stack.test_rule,
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ecs-infra",
            },
        }
    ]


def create_service(aws, stack: Stack, td: str, conf: dict) -> dict:
    return aws["ecs"].create_service(
        cluster=stack.cluster,
        serviceName="web",
        taskDefinition=td,
        desiredCount=2,
        launchType="FARGATE",
        deploymentController={"type": "ECS"},
        deploymentConfiguration=conf,
        loadBalancers=load_balancers(stack),
    )["service"]


def update(aws, stack: Stack, td: str, conf: dict | None = None) -> str:
    """UpdateService; returns the new service deployment's ARN."""
    kwargs: dict[str, Any] = {"cluster": stack.cluster, "service": "web", "taskDefinition": td}
    if conf is not None:
        kwargs["deploymentConfiguration"] = conf
    service = aws["ecs"].update_service(**kwargs)["service"]
    assert service["taskDefinition"] == td  # AWS answers with the ARN, not what was sent
    return service["currentServiceDeployment"]


def describe(aws, arn: str) -> dict:
    out = aws["ecs"].describe_service_deployments(serviceDeploymentArns=[arn])
    assert out["failures"] == [], out["failures"]
    return out["serviceDeployments"][0]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


def wait_finished(aws, arn: str, timeout: float = 60) -> dict:
    seen: list[str] = []

    def check():
        d = describe(aws, arn)
        stage = d.get("lifecycleStage")
        if stage and (not seen or seen[-1] != stage):
            seen.append(stage)
        return d if d["status"] in FINISHED else None

    d = wait_for(check, timeout, f"deployment {arn} to finish")
    d["_stages_seen"] = seen
    return d


def wait_stage(aws, arn: str, stage: str, timeout: float = 30) -> dict:
    def check():
        d = describe(aws, arn)
        assert d["status"] not in FINISHED, f"finished {d['status']} before {stage}: {d.get('statusReason')}"
        return d if d.get("lifecycleStage") == stage else None

    return wait_for(check, timeout, f"{arn} to reach {stage}")


def version_at(url: str) -> str | None:
    try:
        r = requests.get(url + "/", timeout=5)
    except requests.RequestException:
        return None
    return r.json()["version"] if r.status_code == 200 else f"HTTP {r.status_code}"


def service_of(aws, stack: Stack) -> dict:
    return aws["ecs"].describe_services(cluster=stack.cluster, services=["web"])["services"][0]


def prod_weights(aws, stack: Stack) -> dict[str, int]:
    rule = aws["elbv2"].describe_rules(RuleArns=[stack.prod_rule])["Rules"][0]
    groups = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    return {g["TargetGroupArn"]: g["Weight"] for g in groups}


def make_hook(aws, hook_role: str, tmp_path: Path, name: str, **env: str) -> tuple[str, Path]:
    record = tmp_path / f"{name}.jsonl"
    record.write_text("")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.js", HOOK_JS)
    arn = aws["lambda"].create_function(
        FunctionName=name,
        Runtime="nodejs20.x",
        Role=hook_role,
        Handler="index.handler",
        Code={"ZipFile": buf.getvalue()},
        Timeout=10,
        Environment={"Variables": {"RECORD_FILE": str(record), **env}},
    )["FunctionArn"]
    return arn, record


def hook_events(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------
# tests


def test_happy_path_walks_every_stage_and_moves_traffic(aws, network, image_uri):
    stack = make_stack(aws, network, unique("happy"))
    td1 = register_td(aws, "happy", image_uri, "v1")
    td2 = register_td(aws, "happy", image_uri, "v2")
    created = create_service(aws, stack, td1, bg_config(bake_minutes=1))
    assert created["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert created["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"] == stack.green_tg

    arn = update(aws, stack, td2)
    assert ":service-deployment/" + stack.cluster + "/web/" in arn
    done = wait_finished(aws, arn)

    assert done["status"] == "SUCCESSFUL", done.get("statusReason")
    # every stage that has a duration is seen by a 50 ms poll (5 modelled s per stage
    # at scale 600 is 8 ms, so only check the order of what was seen)
    order = [
        "PRE_SCALE_UP",
        "SCALE_UP",
        "POST_SCALE_UP",
        "TEST_TRAFFIC_SHIFT",
        "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        "BAKE_TIME",
        "CLEAN_UP",
    ]
    assert done["_stages_seen"] == sorted(done["_stages_seen"], key=order.index)
    assert "BAKE_TIME" in done["_stages_seen"] and done["lifecycleStage"] == "CLEAN_UP"
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0
    assert done["startedAt"] <= done["finishedAt"]
    assert [r["requestedTaskCount"] for r in done["sourceServiceRevisions"]] == [0]

    service = service_of(aws, stack)
    assert service["taskDefinition"] == td2
    assert service["currentServiceDeployment"] == arn
    digits = done["targetServiceRevision"]["arn"].rsplit("/", 1)[1]
    assert [(d["status"], d["id"], d["taskDefinition"]) for d in service["deployments"]] == [
        ("PRIMARY", f"ecs-svc/{digits}", td2)
    ]
    assert any("completed" in e["message"] for e in service["events"])
    # traffic really moved: the ALB serves the new revision, weights flipped
    assert version_at(stack.prod_url) == "v2"
    assert version_at(stack.test_url) == "v2"
    assert prod_weights(aws, stack) == {stack.blue_tg: 0, stack.green_tg: 100}
    # blue was cleaned up: deregistered
    assert aws["elbv2"].describe_target_health(TargetGroupArn=stack.blue_tg)["TargetHealthDescriptions"] == []

    revisions = aws["ecs"].describe_service_revisions(
        serviceRevisionArns=[
            done["targetServiceRevision"]["arn"],
            "arn:aws:ecs:us-east-1:123456789012:service-revision/x/y/1",
        ]
    )
    assert revisions["serviceRevisions"][0]["taskDefinition"] == td2
    assert revisions["failures"][0]["reason"] == "MISSING"

    listed = aws["ecs"].list_service_deployments(cluster=stack.cluster, service="web")["serviceDeployments"]
    assert [(d["serviceDeploymentArn"], d["status"]) for d in listed] == [(arn, "SUCCESSFUL")]

    # the next deployment uses the other target group as green: roles swap
    td3 = register_td(aws, "happy", image_uri, "v3")
    arn3 = update(aws, stack, td3)
    assert wait_finished(aws, arn3)["status"] == "SUCCESSFUL"
    assert prod_weights(aws, stack) == {stack.blue_tg: 100, stack.green_tg: 0}
    assert version_at(stack.prod_url) == "v3"
    filtered = aws["ecs"].list_service_deployments(cluster=stack.cluster, service="web", maxResults=1)
    assert [d["serviceDeploymentArn"] for d in filtered["serviceDeployments"]] == [arn3]
    rest = aws["ecs"].list_service_deployments(
        cluster=stack.cluster, service="web", maxResults=1, nextToken=filtered["nextToken"]
    )
    assert [d["serviceDeploymentArn"] for d in rest["serviceDeployments"]] == [arn]


def test_alarm_during_bake_rolls_back_to_the_old_task_definition(aws, network, image_uri):
    stack = make_stack(aws, network, unique("alarm"))
    alarm = unique("errors")
    aws["cloudwatch"].put_metric_alarm(
        AlarmName=alarm,
        MetricName="5xx",
        Namespace="AstroLens",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    td1 = register_td(aws, "alarm", image_uri, "v1")
    td2 = register_td(aws, "alarm", image_uri, "v2")
    create_service(
        aws, stack, td1, bg_config(bake_minutes=600, alarms=[alarm])
    )  # 60 s of bake: ended by the alarm
    arn = update(aws, stack, td2)

    baking = wait_stage(aws, arn, "BAKE_TIME")
    assert baking["alarms"]["status"] == "MONITORING"
    assert version_at(stack.prod_url) == "v2"  # production already moved (A8.8)
    aws["cloudwatch"].set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test: errors")
    done = wait_finished(aws, arn)

    assert done["status"] == "ROLLBACK_SUCCESSFUL", done.get("statusReason")
    assert done["alarms"]["status"] == "TRIGGERED"
    assert done["alarms"]["triggeredAlarmNames"] == [alarm]
    assert alarm in done["rollback"]["reason"] and "BAKE_TIME" in done["rollback"]["reason"]
    assert done["rollback"]["serviceRevisionArn"] == done["sourceServiceRevisions"][0]["arn"]
    service = service_of(aws, stack)
    assert service["taskDefinition"] == td1
    assert [(d["status"], d["taskDefinition"]) for d in service["deployments"]] == [("PRIMARY", td1)]
    assert version_at(stack.prod_url) == "v1"
    assert prod_weights(aws, stack) == {stack.blue_tg: 100, stack.green_tg: 0}
    assert any(alarm in e["message"] and "rolling back" in e["message"] for e in service["events"])
    aws["cloudwatch"].set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test: reset")


def test_failed_hook_rolls_back_before_production_moves(aws, network, image_uri, hook_role, tmp_path):
    stack = make_stack(aws, network, unique("hookfail"))
    hook, record = make_hook(
        aws, hook_role, tmp_path, unique("smoke"), MODE="smoke", TEST_URL=stack.test_url, EXPECT="v2-expected"
    )
    td1 = register_td(aws, "hookfail", image_uri, "v1")
    td2 = register_td(aws, "hookfail", image_uri, "v2")  # answers v2, the hook expects otherwise
    hooks = [
        {
            "hookTargetArn": hook,
            "roleArn": hook_role,
            "lifecycleStages": ["TEST_TRAFFIC_SHIFT"],
            "hookDetails": {"suite": "smoke"},
        }
    ]
    create_service(aws, stack, td1, bg_config(hooks=hooks))
    arn = update(aws, stack, td2)
    done = wait_finished(aws, arn)

    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert done["statusReason"].startswith("deployment failed: hook execution failure(s) detected")
    assert "TEST_TRAFFIC_SHIFT" in done["statusReason"] and "FAILED" in done["statusReason"]
    assert done["lifecycleStage"] == "TEST_TRAFFIC_SHIFT"
    assert done["targetServiceRevision"]["requestedProductionTrafficWeight"] == 0.0
    assert service_of(aws, stack)["taskDefinition"] == td1
    assert version_at(stack.prod_url) == "v1" and version_at(stack.test_url) == "v1"

    events = hook_events(record)
    green, blue = done["targetServiceRevision"]["arn"], done["sourceServiceRevisions"][0]["arn"]
    assert [e["lifecycleStage"] for e in events] == ["TEST_TRAFFIC_SHIFT", "TEST_TRAFFIC_SHIFT"]
    first, again = events
    assert first["resourceArn"] == arn and first["hookDetails"] == {"suite": "smoke"}
    assert first["executionDetails"]["testTrafficWeights"] == {green: 100, blue: 0}
    assert first["executionDetails"]["targetServiceRevisionArn"] == green
    # re-invoked on rollback with the weights reversed, target still green
    assert again["executionDetails"]["testTrafficWeights"] == {green: 0, blue: 100}
    assert again["executionDetails"]["targetServiceRevisionArn"] == green


def test_throwing_hook_rolls_back_with_its_error(aws, network, image_uri, hook_role, tmp_path):
    stack = make_stack(aws, network, unique("hookthrow"))
    hook, _ = make_hook(aws, hook_role, tmp_path, unique("thrower"), MODE="throw")
    td1 = register_td(aws, "hookthrow", image_uri, "v1")
    td2 = register_td(aws, "hookthrow", image_uri, "v2")
    create_service(
        aws,
        stack,
        td1,
        bg_config(hooks=[{"hookTargetArn": hook, "roleArn": hook_role, "lifecycleStages": ["PRE_SCALE_UP"]}]),
    )
    done = wait_finished(aws, update(aws, stack, td2))
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert "smoke test exploded" in done["statusReason"] and "PRE_SCALE_UP" in done["statusReason"]


def test_in_progress_hook_is_called_back_with_merged_details(aws, network, image_uri, hook_role, tmp_path):
    stack = make_stack(aws, network, unique("progress"))
    hook, record = make_hook(aws, hook_role, tmp_path, unique("poller"), MODE="progress")
    td1 = register_td(aws, "progress", image_uri, "v1")
    td2 = register_td(aws, "progress", image_uri, "v2")
    hooks = [
        {
            "hookTargetArn": hook,
            "roleArn": hook_role,
            "lifecycleStages": ["POST_SCALE_UP"],
            "hookDetails": {"suite": "warmup"},
        }
    ]
    create_service(aws, stack, td1, bg_config(hooks=hooks))
    started = time.monotonic()
    done = wait_finished(aws, update(aws, stack, td2))
    elapsed = time.monotonic() - started

    assert done["status"] == "SUCCESSFUL", done.get("statusReason")
    events = hook_events(record)
    assert [e["hookDetails"] for e in events] == [
        {"suite": "warmup"},
        {"suite": "warmup", "count": 1},
        {"suite": "warmup", "count": 2},
    ]
    assert len({e["executionId"] for e in events}) == 1
    assert elapsed >= 2 * 60 / SCALE  # two callBackDelays of 60 modelled seconds


def test_stop_service_deployment_rolls_back_and_then_conflicts(aws, network, image_uri):
    stack = make_stack(aws, network, unique("stop"))
    td1 = register_td(aws, "stop", image_uri, "v1")
    td2 = register_td(aws, "stop", image_uri, "v2")
    create_service(aws, stack, td1, bg_config(bake_minutes=600))
    arn = update(aws, stack, td2)
    wait_stage(aws, arn, "BAKE_TIME")

    assert (
        aws["ecs"].stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")[
            "serviceDeploymentArn"
        ]
        == arn
    )
    done = wait_finished(aws, arn)
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert "StopServiceDeployment" in done["rollback"]["reason"]
    assert service_of(aws, stack)["taskDefinition"] == td1
    assert version_at(stack.prod_url) == "v1"

    with pytest.raises(ClientError) as e:
        aws["ecs"].stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert e.value.response["Error"]["Code"] == "ConflictException"
    assert "ROLLBACK_SUCCESSFUL" in e.value.response["Error"]["Message"]
    unknown = arn.rsplit("/", 1)[0] + "/doesnotexist"
    with pytest.raises(ClientError) as e:
        aws["ecs"].stop_service_deployment(serviceDeploymentArn=unknown)
    assert e.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"

    out = aws["ecs"].describe_service_deployments(serviceDeploymentArns=[arn, unknown])
    assert [d["serviceDeploymentArn"] for d in out["serviceDeployments"]] == [arn]
    assert out["failures"] == [{"arn": unknown, "reason": "MISSING", "detail": out["failures"][0]["detail"]}]


def test_update_mid_deployment_stops_the_old_one_and_reconciles(aws, network, image_uri):
    stack = make_stack(aws, network, unique("mid"))
    td1 = register_td(aws, "mid", image_uri, "v1")
    td2 = register_td(aws, "mid", image_uri, "v2")
    td3 = register_td(aws, "mid", image_uri, "v3")
    create_service(aws, stack, td1, bg_config(bake_minutes=600))
    first = update(aws, stack, td2)
    wait_stage(aws, first, "BAKE_TIME")  # production is on v2's target group now

    # A PAUSE hook holds the new deployment at RECONCILE_SERVICE, so the test sees that
    # stage however briefly it would otherwise last (polling alone can miss it under load).
    pause = {"targetType": "PAUSE", "lifecycleStages": ["RECONCILE_SERVICE"]}
    second = update(aws, stack, td3, bg_config(bake_minutes=1, hooks=[pause]))
    assert second != first
    old = wait_finished(aws, first)
    assert old["status"] == "STOPPED"
    assert "newer deployment" in old["statusReason"]

    def held():
        d = describe(aws, second)
        hooks = [h for h in d.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]
        return hooks[0] if hooks and d.get("lifecycleStage") == "RECONCILE_SERVICE" else None

    hook = wait_for(held, 30, "the new deployment to pause at RECONCILE_SERVICE")
    aws["ecs"].continue_service_deployment(serviceDeploymentArn=second, hookId=hook["hookId"], action="CONTINUE")
    new = wait_finished(aws, second)
    assert new["status"] == "SUCCESSFUL", new.get("statusReason")
    assert len(new["sourceServiceRevisions"]) == 1  # reconciled down to one revision
    assert service_of(aws, stack)["taskDefinition"] == td3
    assert version_at(stack.prod_url) == "v3"
    statuses = [
        d["status"]
        for d in aws["ecs"].list_service_deployments(cluster=stack.cluster, service="web")[
            "serviceDeployments"
        ]
    ]
    assert statuses == ["SUCCESSFUL", "STOPPED"]
    assert len([d for d in service_of(aws, stack)["deployments"]]) == 1


def test_green_that_cannot_start_rolls_back_with_the_reason(aws, network, image_uri, registry):
    stack = make_stack(aws, network, unique("badimg"))
    td1 = register_td(aws, "badimg", image_uri, "v1")
    missing = f"{registry.url.removeprefix('http://')}/astrolens/web:no-such-tag"
    td2 = register_td(aws, "badimg", missing, "v2")
    create_service(aws, stack, td1, bg_config())
    done = wait_finished(aws, update(aws, stack, td2))
    assert done["status"] == "ROLLBACK_SUCCESSFUL"
    assert "CannotPullContainerError" in done["statusReason"] and "no-such-tag" in done["statusReason"]
    service = service_of(aws, stack)
    assert service["taskDefinition"] == td1
    assert any("CannotPullContainerError" in e["message"] for e in service["events"])
    assert version_at(stack.prod_url) == "v1"


def test_pause_hook_waits_for_continue(aws, network, image_uri):
    stack = make_stack(aws, network, unique("pause"))
    td1 = register_td(aws, "pause", image_uri, "v1")
    td2 = register_td(aws, "pause", image_uri, "v2")
    create_service(
        aws,
        stack,
        td1,
        bg_config(hooks=[{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]),
    )
    arn = update(aws, stack, td2)

    def awaiting():
        d = describe(aws, arn)
        hooks = [h for h in d.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]
        return hooks[0] if hooks else None

    hook = wait_for(awaiting, 30, "the PAUSE hook to await action")
    time.sleep(0.3)  # would be minutes of deployment had it not paused
    assert describe(aws, arn)["lifecycleStage"] == "POST_TEST_TRAFFIC_SHIFT"
    aws["ecs"].continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    assert wait_finished(aws, arn)["status"] == "SUCCESSFUL"


def test_pause_hook_at_a_traffic_shift_stage_is_refused(aws, network, image_uri):
    stack = make_stack(aws, network, unique("pauseno"))
    td1 = register_td(aws, "pauseno", image_uri, "v1")
    with pytest.raises(ClientError) as e:
        create_service(
            aws,
            stack,
            td1,
            bg_config(hooks=[{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]),
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "PRODUCTION_TRAFFIC_SHIFT" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        create_service(aws, stack, td1, {"strategy": "BLUE_GREEN"})
    assert "bakeTimeInMinutes" in e.value.response["Error"]["Message"]


def test_code_deploy_service_keeps_motos_behaviour(aws, network, image_uri):
    stack = make_stack(aws, network, unique("cd"))
    td1 = register_td(aws, "cd", image_uri, "v1")
    td2 = register_td(aws, "cd", image_uri, "v2")
    aws["ecs"].create_service(
        cluster=stack.cluster,
        serviceName="web",
        taskDefinition=td1,
        desiredCount=1,
        launchType="FARGATE",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": stack.blue_tg, "containerName": "web", "containerPort": 8080}],
    )
    service = aws["ecs"].update_service(cluster=stack.cluster, service="web", taskDefinition=td2)["service"]
    assert "currentServiceDeployment" not in service
    assert (
        aws["ecs"].list_service_deployments(cluster=stack.cluster, service="web")["serviceDeployments"] == []
    )


def test_cloudformation_service_keeps_blue_green_config_and_deploys(aws, network, image_uri, registry):
    stack = make_stack(aws, network, unique("cfn"))
    td2 = register_td(aws, "cfn", image_uri, "v2")
    placeholder = "public.ecr.aws/nginx/nginx:placeholder"  # what a first stack deploy names
    template = {
        "Resources": {
            "TaskDef": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "cfn",
                    "RequiresCompatibilities": ["FARGATE"],
                    "NetworkMode": "awsvpc",
                    "Cpu": "256",
                    "Memory": "512",
                    "ContainerDefinitions": [
                        {
                            "Name": "web",
                            "Image": placeholder,
                            "Essential": True,
                            "Memory": 512,
                            "PortMappings": [{"ContainerPort": 8080}],
                        }
                    ],
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "Cluster": stack.cluster,
                    "ServiceName": "web",
                    "TaskDefinition": {"Ref": "TaskDef"},
                    "DesiredCount": 2,
                    "LaunchType": "FARGATE",
                    "DeploymentController": {"Type": "ECS"},
                    "DeploymentConfiguration": {
                        "Strategy": "BLUE_GREEN",
                        "BakeTimeInMinutes": 1,
                        "Alarms": {"AlarmNames": ["cfn-alarm"], "Enable": True, "Rollback": True},
                        "LifecycleHooks": [
                            {
                                "HookTargetArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:none",
                                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                                "LifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                                "HookDetails": {"KeepCase": "yes"},
                            }
                        ],
                    },
                    "LoadBalancers": [
                        {
                            "ContainerName": "web",
                            "ContainerPort": 8080,
                            "TargetGroupArn": stack.blue_tg,
                            "AdvancedConfiguration": {
                                "AlternateTargetGroupArn": stack.green_tg,
                                "ProductionListenerRule": stack.prod_rule,
                                "TestListenerRule": stack.test_rule,
                                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/ecs-infra",
                            },
                        }
                    ],
                },
            },
        }
    }
    aws["cloudformation"].create_stack(StackName=unique("cfn"), TemplateBody=json.dumps(template))
    service = service_of(aws, stack)
    assert service["deploymentController"] == {"type": "ECS"}
    conf = service["deploymentConfiguration"]
    assert conf["strategy"] == "BLUE_GREEN" and conf["bakeTimeInMinutes"] == 1
    assert conf["alarms"] == {"alarmNames": ["cfn-alarm"], "enable": True, "rollback": True}
    assert conf["lifecycleHooks"][0]["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]
    assert conf["lifecycleHooks"][0]["hookDetails"] == {"KeepCase": "yes"}  # a JSON document, not renamed
    assert service["loadBalancers"][0]["advancedConfiguration"] == {
        "alternateTargetGroupArn": stack.green_tg,
        "productionListenerRule": stack.prod_rule,
        "testListenerRule": stack.test_rule,
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ecs-infra",
    }

    # the toolkit's first release: the placeholder cannot run (recorded, not a crash),
    # the real image deploys. Drop the hook (it names no function) in the same call.
    no_hooks = {k: v for k, v in conf.items() if k != "lifecycleHooks"}
    arn = update(aws, stack, td2, no_hooks)
    done = wait_finished(aws, arn)
    assert done["status"] == "SUCCESSFUL", done.get("statusReason")
    events = [e["message"] for e in service_of(aws, stack)["events"]]
    assert any("could not start the current revision" in m and placeholder in m for m in events), events
    assert version_at(stack.prod_url) == "v2"


def test_canary_shifts_production_in_steps_and_calls_hooks_per_step(
    aws, network, image_uri, hook_role, tmp_path
):
    stack = make_stack(aws, network, unique("canary"))
    hook, record = make_hook(aws, hook_role, tmp_path, unique("steps"), MODE="ok")
    td1 = register_td(aws, "canary", image_uri, "v1")
    td2 = register_td(aws, "canary", image_uri, "v2")
    hooks = [
        {
            "hookTargetArn": hook,
            "roleArn": hook_role,
            "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"],
        }
    ]
    conf = {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 1,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1},
        "lifecycleHooks": hooks,
    }
    create_service(aws, stack, td1, conf)
    done = wait_finished(aws, update(aws, stack, td2))
    assert done["status"] == "SUCCESSFUL", done.get("statusReason")

    green, blue = done["targetServiceRevision"]["arn"], done["sourceServiceRevisions"][0]["arn"]
    events = [
        (e["lifecycleStage"], e["executionDetails"]["productionTrafficWeights"]) for e in hook_events(record)
    ]
    assert events == [
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", {}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 10, blue: 90}),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", {}),
        ("PRODUCTION_TRAFFIC_SHIFT", {green: 100, blue: 0}),
    ]
    assert version_at(stack.prod_url) == "v2"


def test_list_service_deployments_filters(aws, network, image_uri):
    stack = make_stack(aws, network, unique("list"))
    td1 = register_td(aws, "list", image_uri, "v1")
    td2 = register_td(aws, "list", image_uri, "v2")
    create_service(aws, stack, td1, bg_config())
    arn = update(aws, stack, td2)
    wait_finished(aws, arn)
    ecs = aws["ecs"]
    assert (
        ecs.list_service_deployments(cluster=stack.cluster, service="web", status=["ROLLBACK_SUCCESSFUL"])[
            "serviceDeployments"
        ]
        == []
    )
    assert (
        len(
            ecs.list_service_deployments(cluster=stack.cluster, service="web", status=["SUCCESSFUL"])[
                "serviceDeployments"
            ]
        )
        == 1
    )
    future = {"after": time.time() + 3600}
    assert (
        ecs.list_service_deployments(cluster=stack.cluster, service="web", createdAt=future)[
            "serviceDeployments"
        ]
        == []
    )
    with pytest.raises(ClientError) as e:
        ecs.list_service_deployments(cluster=stack.cluster, service="nope")
    assert e.value.response["Error"]["Code"] == "ServiceNotFoundException"


def test_cloudformation_update_with_a_new_task_definition_deploys(aws, network, image_uri):
    stack = make_stack(aws, network, unique("cfnup"))

    def template(version: str, desired: int) -> str:
        return json.dumps(
            {
                "Resources": {
                    "TaskDef": {
                        "Type": "AWS::ECS::TaskDefinition",
                        "Properties": {
                            "Family": "cfnup",
                            "RequiresCompatibilities": ["FARGATE"],
                            "NetworkMode": "awsvpc",
                            "Cpu": "256",
                            "Memory": "512",
                            "ContainerDefinitions": [
                                {
                                    "Name": "web",
                                    "Image": image_uri,
                                    "Essential": True,
                                    "Memory": 512,
                                    "Environment": [{"Name": "VERSION", "Value": version}],
                                }
                            ],
                        },
                    },
                    "Service": {
                        "Type": "AWS::ECS::Service",
                        "Properties": {
                            "Cluster": stack.cluster,
                            "ServiceName": "web",
                            "TaskDefinition": {"Ref": "TaskDef"},
                            "DesiredCount": desired,
                            "DeploymentController": {"Type": "ECS"},
                            "DeploymentConfiguration": {"Strategy": "BLUE_GREEN", "BakeTimeInMinutes": 1},
                            "LoadBalancers": [
                                {
                                    "ContainerName": "web",
                                    "ContainerPort": 8080,
                                    "TargetGroupArn": stack.blue_tg,
                                    "AdvancedConfiguration": {
                                        "AlternateTargetGroupArn": stack.green_tg,
                                        "ProductionListenerRule": stack.prod_rule,
                                    },
                                }
                            ],
                        },
                    },
                }
            }
        )

    name = unique("cfnup")
    aws["cloudformation"].create_stack(StackName=name, TemplateBody=template("v1", 1))
    # moto diffs templates textually: the service is updated only when its own
    # properties change (a Ref to a replaced task definition alone is not seen)
    aws["cloudformation"].update_stack(StackName=name, TemplateBody=template("v2", 2))
    service = service_of(aws, stack)
    assert service["taskDefinition"].endswith("task-definition/cfnup:2")
    done = wait_finished(aws, service["currentServiceDeployment"])
    assert done["status"] == "SUCCESSFUL", done.get("statusReason")
    assert version_at(stack.prod_url) == "v2"


def test_reset_stops_deployments_and_their_containers(registry, image_uri, tmp_path):
    """/moto-api/reset forgets services; their workers and processes must go too."""
    state = tmp_path / "state"
    srv = start_server(
        tmp_path, registry.url, ASTROLENS_TIME_SCALE=str(SCALE), ASTROLENS_STATE_DIR=str(state)
    )
    try:
        own = {n: _client(srv, n) for n in ("ecs", "elbv2", "ec2")}
        ec2 = own["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
                "Subnet"
            ]["SubnetId"]
            for i, az in ((1, "a"), (2, "b"))
        ]
        stack = make_stack(own, {"vpc": vpc, "subnets": subnets}, unique("reset"))
        td1 = register_td(own, "reset", image_uri, "v1")
        td2 = register_td(own, "reset", image_uri, "v2")
        create_service(own, stack, td1, bg_config(bake_minutes=600))
        arn = update(own, stack, td2)
        wait_stage(own, arn, "BAKE_TIME")
        pids = lambda: sorted((state / "runtime" / "instances").glob("*.json"))  # noqa: E731
        assert len(pids()) == 2  # blue and green

        assert requests.post(srv.url + "/moto-api/reset", timeout=30).status_code == 200
        wait_for(lambda: pids() == [], 20, "instances to stop after reset")
        with pytest.raises(ClientError):
            own["ecs"].describe_services(cluster=stack.cluster, services=["web"])
    finally:
        assert srv.stop() == 0
