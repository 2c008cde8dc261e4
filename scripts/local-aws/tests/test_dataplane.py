"""The local data plane: images run as processes, ELBv2 listeners serve HTTP.

Real processes throughout: Debian's docker-registry, `python -m astrolens_moto`, and
the host's node running images built here and pushed over the registry API.

Run: PYTHONPATH=scripts/local-aws .local/venv/bin/python -m pytest -q scripts/local-aws/tests/test_dataplane.py
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from astrolens_moto import alb, dataplane
from localaws import (
    aws_client,
    build_image,
    free_port,
    push_built_image,
    push_index,
    server_env,
    start_registry,
    start_server,
    tar_layer,
    wait_until,
)

# An inference-like service: ESM, started through a `serve` symlink on PATH, reading
# a file named by an env var; switches make it crash, fail its health check, ignore
# SIGTERM or leave a child process behind.
SERVE_JS = r"""#!/usr/bin/env node
import http from "node:http";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
if (process.env.CRASH) { console.error(`boom: ${process.env.CRASH}`); process.exit(3); }
const greeting = readFileSync(process.env.GREETING_FILE, "utf8").trim();
const child = process.env.SPAWN_CHILD ? spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"]) : null;
const server = http.createServer((req, res) => {
  if (req.url === "/ping") { res.writeHead(process.env.NO_PING ? 503 : 200); res.end("pong"); return; }
  let body = ""; req.on("data", (c) => (body += c)); req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ color: process.env.COLOR, greeting, cwd: process.cwd(), port: process.env.PORT,
      argv1: process.argv[1], method: req.method, url: req.url, body, xff: req.headers["x-forwarded-for"],
      home: process.env.HOME ?? null, model: process.env.MODEL_DIR ?? null, child: child?.pid ?? null }));
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening on ${process.env.PORT}`));
process.on("SIGTERM", () => {
  if (process.env.IGNORE_TERM) { console.log("ignoring SIGTERM"); return; }
  console.log("SIGTERM: draining"); server.close(() => process.exit(0));
});
"""

IMAGE_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GREETING_FILE=/opt/app/data/greeting.txt",
    "COLOR=image-default",
]


def service_layers(greeting: str = "hello from the image") -> list[bytes]:
    lower = tar_layer(
        [
            ("dir", "/opt/app"),
            ("file", "/opt/app/package.json", '{"type": "module"}'),
            ("file", "/opt/app/serve.js", "#!/usr/bin/env node\nthrow new Error('the old layer');\n", 0o755),
            ("file", "/opt/app/old.txt", "whited out"),
            ("file", "/opt/app/gone/inside.txt", "whited out with its directory"),
            ("file", "/opt/app/cache/a.txt", "hidden by an opaque directory"),
            ("file", "/etc/os-release", "outside WORKDIR: never extracted"),
            ("dir", "/usr/local/bin"),
        ]
    )
    upper = tar_layer(
        [
            ("file", "/opt/app/serve.js", SERVE_JS, 0o755),
            ("whiteout", "/opt/app/old.txt"),
            ("whiteout", "/opt/app/gone"),
            ("opaque", "/opt/app/cache"),
            ("file", "/opt/app/cache/b.txt", "new"),
            ("file", "/opt/app/data/greeting.txt", greeting),
            ("symlink", "/usr/local/bin/serve", "/opt/app/serve.js"),  # as the Dockerfile's `ln -s`
        ]
    )
    return [lower, upper]


def service_image(greeting: str = "hello from the image", oci: bool = False, **config):
    cfg = {"WorkingDir": "/opt/app", "Env": IMAGE_ENV, "Cmd": ["serve"], **config}
    return build_image(service_layers(greeting), {"config": cfg}, oci=oci)


def repo_name(prefix: str = "svc") -> str:
    return f"astrolens/{prefix}-{uuid.uuid4().hex[:8]}"


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def host(registry) -> str:
    return registry.url.removeprefix("http://")


@pytest.fixture(scope="module", autouse=True)
def configured(registry, tmp_path_factory):
    # Instances are a library: the control planes call it inside the server, the
    # tests call it here, against the same registry.
    state = tmp_path_factory.mktemp("client-state")
    dataplane.configure(registry_url=registry.url, state_dir=state)
    yield state
    dataplane.stop_all(grace=2)


@pytest.fixture(autouse=True)
def no_instances_left():
    yield
    dataplane.stop_all(grace=2)


@pytest.fixture(scope="module")
def pushed(registry, host):
    """A service image pushed once, by tag: (uri, digest)."""
    name = repo_name()
    image = service_image()
    push_built_image(registry.url, name, image, "v1")
    return f"{host}/{name}:v1", image.digest


def get_json(url: str, **kwargs) -> dict:
    r = requests.get(url, timeout=10, **kwargs)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    return r.json()


# --------------------------------------------------------------------------
# instances


def test_instance_runs_the_image_entry_with_its_env_mapped_onto_the_extracted_tree(pushed, configured):
    uri, digest = pushed
    inst = dataplane.start_instance(uri, {"COLOR": "blue", "PORT": "8080", "MODEL_DIR": "/opt/app/data"}, "svc/blue")
    rootfs = configured / "runtime" / "images" / digest.replace(":", "-") / "rootfs"

    assert inst.url == f"http://127.0.0.1:{inst.port}" and inst.image_digest == digest and inst.label == "svc/blue"
    assert inst in {inst}  # control planes keep instances in sets
    got = get_json(inst.url + "/")
    assert got["color"] == "blue"  # the caller's environment overlays the image's Env
    assert got["greeting"] == "hello from the image"  # image Env path -> extracted file
    assert got["model"] == str(rootfs / "opt/app/data")  # caller's in-image path mapped too
    assert got["port"] == str(inst.port)  # not the 8080 asked for: instances share one network
    assert got["cwd"] == str(rootfs / "opt/app")  # WORKDIR
    assert got["argv1"] == str(rootfs / "usr/local/bin/serve")  # `serve` found on the image's PATH
    assert got["home"] is None  # the host's environment does not leak in
    log_text = inst.log_path.read_text()
    assert f"listening on {inst.port}" in log_text
    assert "PORT=8080 from the caller replaced" in log_text

    # only WORKDIR and the symlink to the entry, with whiteouts applied
    assert os.readlink(rootfs / "usr/local/bin/serve") == "../../../opt/app/serve.js"
    assert sorted(p.name for p in (rootfs / "opt/app").iterdir()) == ["cache", "data", "package.json", "serve.js"]
    assert [p.name for p in (rootfs / "opt/app/cache").iterdir()] == ["b.txt"]
    assert not (rootfs / "etc").exists()
    assert sorted(p.name for p in rootfs.parent.iterdir()) == ["image.json", "rootfs"]

    dataplane.stop_instance(inst)
    assert inst.poll() == 0  # SIGTERM: the service drained and exited cleanly
    assert "SIGTERM: draining" in inst.log_path.read_text()
    assert not alive(inst.pid)


def test_oci_manifest_by_digest_and_an_index_resolve_to_one_extraction(registry, host, configured):
    name = repo_name("oci")
    image = service_image("oci", oci=True)
    push_built_image(registry.url, name, image, image.digest)  # untagged
    index_digest = push_index(registry.url, name, [(image, "linux/arm64"), (image, "linux/amd64")], "multi")

    by_digest = dataplane.pull_image(f"{host}/{name}@{image.digest}")
    by_index = dataplane.pull_image(f"{host}/{name}:multi")

    assert by_digest.digest == image.digest
    assert by_index.digest == index_digest  # what the URI names, as ECS reports it
    assert by_index.rootfs == by_digest.rootfs  # the platform manifest was extracted once
    assert (by_digest.rootfs / "opt/app/data/greeting.txt").read_text() == "oci"


def test_missing_image_is_cannot_pull_container_error(registry, host, pushed):
    name = repo_name("missing")
    cases = {
        f"{host}/{name}:v1": f"failed to resolve ref {host}/{name}:v1: {host}/{name}:v1: not found",
        pushed[0].replace(":v1", ":v2"): "not found",
        f"{host}/{name}@sha256:{'0' * 64}": "not found",
        f"registry.example.com/{name}:v1": f"is not the local registry {host}",
        # ECR's own host name is the local registry too, so a missing image there is "not found".
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1": "not found",
    }
    for uri, expected in cases.items():
        with pytest.raises(dataplane.InstanceError) as e:
            dataplane.start_instance(uri, {}, "missing")
        assert e.value.code == "CannotPullContainerError"
        assert str(e.value).startswith("CannotPullContainerError: ")
        assert expected in str(e.value), uri


def test_ecr_host_names_resolve_to_the_local_registry(pushed, host):
    # A CloudFormation template builds image URIs from the repository's ARN.
    ecr_uri = pushed[0].replace(host, "123456789012.dkr.ecr.us-east-1.amazonaws.com", 1)
    assert dataplane.pull_image(ecr_uri).digest == dataplane.pull_image(pushed[0]).digest


def test_crashing_entry_reports_exit_code_and_log_tail(pushed):
    with pytest.raises(dataplane.InstanceError) as e:
        dataplane.start_instance(pushed[0], {"CRASH": "model file missing"}, "svc/crash")
    err = e.value
    assert err.code == "EssentialContainerExited"
    assert "svc/crash" in err.reason and "exited with code 3 before GET /ping answered 200" in err.reason
    assert "boom: model file missing" in err.log_tail
    assert "boom: model file missing" in str(err) and "boom" not in err.reason
    assert list(dataplane._iter_running()) == []


def test_unhealthy_instance_times_out_and_is_stopped(pushed):
    with pytest.raises(dataplane.InstanceError) as e:
        dataplane.start_instance(pushed[0], {"NO_PING": "1"}, "svc/sick", timeout=1.5)
    assert e.value.code == "HealthCheckTimeout"
    assert "did not answer GET /ping with 200 within 1.5s (last: HTTP 503" in str(e.value)
    assert "listening on" in e.value.log_tail
    assert list(dataplane._iter_running()) == []


def test_node_command_form_maps_absolute_script_paths(registry, host, configured):
    name = repo_name("nodecmd")
    image = service_image("node form", Entrypoint=["node"], Cmd=["/opt/app/serve.js"])
    push_built_image(registry.url, name, image, "v1")

    inst = dataplane.start_instance(f"{host}/{name}:v1", {}, "nodecmd")

    rootfs = configured / "runtime" / "images" / image.digest.replace(":", "-") / "rootfs"
    got = get_json(inst.url + "/x")
    assert got["argv1"] == str(rootfs / "opt/app/serve.js")
    assert got["greeting"] == "node form" and got["color"] == "image-default"


@pytest.mark.parametrize(
    "cmd, files, expected",
    [
        (["/bin/sh", "-c", "echo hi"], [("file", "/bin/sh", b"\x7fELF\x02\x01\x01", 0o755)],
         "/bin/sh (from Entrypoint+Cmd ['/bin/sh', '-c', 'echo hi']) is not a Node.js program"),
        (["/srv/app.py"], [("file", "/srv/app.py", "#!/usr/bin/python3\nprint(1)\n", 0o755)],
         "runs /usr/bin/python3, not node"),
        (["serve"], [], 'exec: "serve": executable file not found in $PATH'),
        (["/srv/run.js"], [("file", "/srv/run.js", "#!/usr/bin/env node\n", 0o644)], "permission denied"),
        ([], [], "neither Entrypoint nor Cmd"),
    ],
)
def test_entries_that_cannot_run_locally_are_refused_by_name(registry, host, cmd, files, expected):
    name = repo_name("refused")
    image = build_image(
        [tar_layer([("dir", "/srv"), *files])], {"config": {"WorkingDir": "/srv", "Cmd": cmd, "Env": IMAGE_ENV}}
    )
    push_built_image(registry.url, name, image, "v1")
    with pytest.raises(dataplane.InstanceError) as e:
        dataplane.start_instance(f"{host}/{name}:v1", {}, "refused")
    assert e.value.code == "CannotStartContainerError"
    assert f"image {host}/{name}:v1: " in str(e.value)
    assert expected in str(e.value)


def test_foreign_architecture_fails_like_exec_format_error(registry, host):
    name = repo_name("arm")
    image = build_image(service_layers(), {"architecture": "arm64", "config": {"Cmd": ["serve"], "Env": IMAGE_ENV}})
    push_built_image(registry.url, name, image, "v1")
    with pytest.raises(dataplane.InstanceError, match="exec format error: the image is for linux/arm64"):
        dataplane.pull_image(f"{host}/{name}:v1")


def test_concurrent_pulls_extract_once_and_atomically(registry, host, configured, monkeypatch):
    name = repo_name("race")
    image = service_image("race")
    push_built_image(registry.url, name, image, "v1")
    extractions = []
    real_extract = dataplane._extract

    def counting_extract(*args):
        extractions.append(threading.get_ident())
        real_extract(*args)

    monkeypatch.setattr(dataplane, "_extract", counting_extract)
    results: list = []
    errors: list = []
    barrier = threading.Barrier(4)

    def pull():
        barrier.wait()
        try:
            pulled = dataplane.pull_image(f"{host}/{name}:v1")
            # whoever returns sees the whole tree
            results.append((pulled.rootfs / "opt/app/data/greeting.txt").read_text())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=pull) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and results == ["race"] * 4
    assert len(extractions) == 1
    images = configured / "runtime" / "images"
    assert [p.name for p in images.iterdir() if p.name.startswith(".tmp-")] == []


def test_stop_kills_the_whole_group_after_the_grace_period(pushed):
    inst = dataplane.start_instance(pushed[0], {"IGNORE_TERM": "1", "SPAWN_CHILD": "1"}, "svc/stubborn")
    child = get_json(inst.url + "/")["child"]
    assert alive(inst.pid) and alive(child)

    dataplane.stop_instance(inst, grace=0.5)

    assert inst.poll() == -signal.SIGKILL
    assert "ignoring SIGTERM" in inst.log_path.read_text()
    wait_until(lambda: not alive(child), 5, "the instance's child to be gone")
    dataplane.stop_instance(inst)  # idempotent


# --------------------------------------------------------------------------
# server shutdown and orphans (the instance is started inside the server process,
# as the control planes do)

HARNESS = r"""
import json, sys, threading, time
from astrolens_moto import __main__ as main, dataplane

def start():
    try:
        deadline = time.monotonic() + 60
        while dataplane._state_dir is None:  # install() runs in main()
            if time.monotonic() > deadline:
                raise TimeoutError("install() never ran")
            time.sleep(0.05)
        inst = dataplane.start_instance(sys.argv[1], {}, "harness")
        print(json.dumps({"pid": inst.pid, "url": inst.url}), flush=True)
    except BaseException as e:
        print(json.dumps({"error": repr(e)}), flush=True)

threading.Thread(target=start, daemon=True).start()
sys.exit(main.main(sys.argv[2:]))
"""


def start_harness(uri: str, registry_url: str, state: Path, stderr_path: Path) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS, uri, "--port", str(free_port()), "--registry-url", registry_url,
         "--state-dir", str(state)],
        env=server_env(), stdout=subprocess.PIPE, stderr=open(stderr_path, "wb"), text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put("")], daemon=True).start()
    info, listening = None, False
    deadline = time.monotonic() + 120
    # the instance and "listening on" (printed once signals are handled), in any order
    while not (info and listening):
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if not line:
            proc.kill()
            raise AssertionError(f"harness gave no instance (exit {proc.wait()}): {stderr_path.read_text()}")
        if line.startswith("{"):
            info = json.loads(line)
            if "error" in info:
                proc.kill()
                raise AssertionError(f"harness could not start an instance: {info['error']}")
        listening = listening or line.startswith("astrolens-moto listening on")
    return proc, info


def test_server_shutdown_stops_its_instances_and_a_new_server_reaps_orphans(pushed, registry, tmp_path):
    state = tmp_path / "state"
    proc, info = start_harness(pushed[0], registry.url, state, tmp_path / "h1.stderr")
    assert requests.get(info["url"] + "/ping", timeout=5).status_code == 200
    server_url = proc.args[proc.args.index("--port") + 1]
    listed = get_json(f"http://127.0.0.1:{server_url}/astrolens-api/dataplane/instances")["instances"]
    assert [(i["label"], i["pid"], i["url"], i["imageUri"]) for i in listed] == [
        ("harness", info["pid"], info["url"], pushed[0])
    ]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not alive(info["pid"])  # stopped before the server exited
    assert list((state / "runtime" / "instances").iterdir()) == []

    # A server killed outright cannot stop its instances; the next one on the state dir does.
    proc, info = start_harness(pushed[0], registry.url, state, tmp_path / "h2.stderr")
    proc.kill()
    proc.wait(timeout=10)
    assert alive(info["pid"])
    srv = start_server(tmp_path, registry.url, ASTROLENS_STATE_DIR=str(state))
    try:
        wait_until(lambda: not alive(info["pid"]), 10, "the orphaned instance to be stopped")
        assert f"stopping instance harness (pid {info['pid']}) orphaned" in srv.stderr()
    finally:
        assert srv.stop() == 0


# --------------------------------------------------------------------------
# the ALB data plane, through the AWS API of a real server


@pytest.fixture(scope="module")
def alb_port_offset() -> int:
    return free_port() - 80  # listener port 80 lands on a free port


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory, alb_port_offset):
    work = tmp_path_factory.mktemp("moto")
    srv = start_server(
        work, registry.url, ASTROLENS_STATE_DIR=str(work / "state"), ASTROLENS_ALB_PORT_OFFSET=str(alb_port_offset)
    )
    yield srv
    assert srv.stop() == 0


def make_alb(server):
    ec2, elbv2 = aws_client(server, "ec2"), aws_client(server, "elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    suffix = uuid.uuid4().hex[:6]
    lb = elbv2.create_load_balancer(Name=f"alb-{suffix}", Subnets=subnets, Type="application")["LoadBalancers"][0]
    tgs = [
        elbv2.create_target_group(
            Name=f"{color}-{suffix}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip", HealthCheckPath="/ping"
        )["TargetGroups"][0]["TargetGroupArn"]
        for color in ("blue", "green")
    ]
    return elbv2, lb["LoadBalancerArn"], tgs


def forward(blue_tg: str, green_tg: str, blue: int, green: int) -> list[dict]:
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": blue_tg, "Weight": blue}, {"TargetGroupArn": green_tg, "Weight": green}]}}]


def colors(url: str, n: int = 6, **kwargs) -> list[str]:
    return [get_json(url, **kwargs)["color"] for _ in range(n)]


def test_listener_routes_by_rules_and_follows_weight_changes_at_once(server, pushed, alb_port_offset):
    elbv2, lb_arn, (blue_tg, green_tg) = make_alb(server)
    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route"}}],
    )["Listeners"][0]["ListenerArn"]
    url = f"http://127.0.0.1:{80 + alb_port_offset}"
    prod = elbv2.create_rule(
        ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=forward(blue_tg, green_tg, 100, 0),
    )["Rules"][0]["RuleArn"]
    elbv2.create_rule(  # a test-traffic route, as ECS blue/green uses: matched first by priority
        ListenerArn=listener, Priority=5,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]},
                    {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Test-Traffic", "Values": ["y*"]}}],
        Actions=forward(blue_tg, green_tg, 0, 100),
    )

    # bound as soon as CreateListener answered; no targets yet
    r = requests.get(url + "/api/x", timeout=10)
    assert r.status_code == 503
    assert "503 Service Temporarily Unavailable" in r.text and r.headers["Server"] == "awselb/2.0"
    assert f"target group blue-" in r.headers["X-Astrolens-Alb-Reason"]
    assert "no registered targets" in r.headers["X-Astrolens-Alb-Reason"]
    r = requests.get(url + "/elsewhere", timeout=10)
    assert (r.status_code, r.text) == (404, "no route")  # default action

    blue = dataplane.start_instance(pushed[0], {"COLOR": "blue"}, "blue")
    green = dataplane.start_instance(pushed[0], {"COLOR": "green"}, "green")
    elbv2.register_targets(TargetGroupArn=blue_tg, Targets=[{"Id": "127.0.0.1", "Port": blue.port}])
    elbv2.register_targets(TargetGroupArn=green_tg, Targets=[{"Id": "127.0.0.1", "Port": green.port}])

    assert colors(url + "/api/x") == ["blue"] * 6
    assert colors(url + "/api/x", headers={"X-Test-Traffic": "YES"}) == ["green"] * 6  # values case-insensitive

    elbv2.modify_rule(RuleArn=prod, Actions=forward(blue_tg, green_tg, 0, 100))
    assert colors(url + "/api/x") == ["green"] * 6

    elbv2.modify_rule(RuleArn=prod, Actions=forward(blue_tg, green_tg, 1, 1))
    assert sorted(colors(url + "/api/x")) == ["blue"] * 3 + ["green"] * 3

    # the request as the target sees it
    r = requests.post(url + "/api/echo?q=1", data=b"payload", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
    got = r.json()
    assert (got["method"], got["url"], got["body"]) == ("POST", "/api/echo?q=1", "payload")
    assert got["xff"] == "203.0.113.7, 127.0.0.1"

    # a registered target that is gone: 502; none registered: 503
    elbv2.modify_rule(RuleArn=prod, Actions=forward(blue_tg, green_tg, 100, 0))
    dataplane.stop_instance(blue)
    r = requests.get(url + "/api/x", timeout=10)
    assert r.status_code == 502 and f"127.0.0.1:{blue.port}" in r.headers["X-Astrolens-Alb-Reason"]
    elbv2.deregister_targets(TargetGroupArn=blue_tg, Targets=[{"Id": "127.0.0.1", "Port": blue.port}])
    assert requests.get(url + "/api/x", timeout=10).status_code == 503

    # the default action, changed through ModifyListener, applies at once too
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward(blue_tg, green_tg, 0, 1))
    assert colors(url + "/elsewhere", 2) == ["green"] * 2


def test_high_listener_ports_are_served_as_is_and_released_on_delete(server, pushed):
    elbv2, lb_arn, (blue_tg, _) = make_alb(server)
    port = free_port()
    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue_tg}],
    )["Listeners"][0]["ListenerArn"]
    inst = dataplane.start_instance(pushed[0], {"COLOR": "solo"}, "solo")
    elbv2.register_targets(TargetGroupArn=blue_tg, Targets=[{"Id": "127.0.0.1", "Port": inst.port}])

    assert get_json(f"http://127.0.0.1:{port}/")["color"] == "solo"
    listed = get_json(f"{server.url}/astrolens-api/alb/listeners")["listeners"]
    assert {"listenerArn": listener, "loadBalancerArn": lb_arn, "loadBalancerName": lb_arn.split("/")[-2],
            "listenerPort": port, "url": f"http://127.0.0.1:{port}"} in listed

    elbv2.delete_listener(ListenerArn=listener)
    assert listener not in [entry["listenerArn"] for entry in get_json(f"{server.url}/astrolens-api/alb/listeners")["listeners"]]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


# --------------------------------------------------------------------------
# listener_url, in-process against moto's backend (how the ECS control plane uses it)


def fetch(url: str) -> tuple[int, str]:
    # urllib, not requests: moto's in-process mock intercepts requests
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_listener_url_follows_create_modify_and_port_clashes(monkeypatch, caplog):
    from moto import mock_aws
    import boto3

    offset = free_port() - 81
    monkeypatch.setenv("ASTROLENS_ALB_PORT_OFFSET", str(offset))
    alb.install()
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        elbv2 = boto3.client("elbv2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "one"}}]
        lbs = [elbv2.create_load_balancer(Name=f"lb{i}", Subnets=[subnet])["LoadBalancers"][0]["LoadBalancerArn"] for i in (1, 2)]
        first = elbv2.create_listener(LoadBalancerArn=lbs[0], Protocol="HTTP", Port=81, DefaultActions=fixed)["Listeners"][0]["ListenerArn"]

        assert dataplane.listener_url(first) == f"http://127.0.0.1:{81 + offset}"
        assert fetch(dataplane.listener_url(first)) == (200, "one")

        # a second load balancer with the same listener port gets another port, with a warning
        fixed[0]["FixedResponseConfig"]["MessageBody"] = "two"
        second = elbv2.create_listener(LoadBalancerArn=lbs[1], Protocol="HTTP", Port=81, DefaultActions=fixed)["Listeners"][0]["ListenerArn"]
        url2 = dataplane.listener_url(second)
        assert url2 != dataplane.listener_url(first)
        assert fetch(url2) == (200, "two")
        assert f"port {81 + offset} unavailable" in caplog.text

        # ModifyListener to another port moves the socket
        new_port = free_port()
        elbv2.modify_listener(ListenerArn=first, Port=new_port)
        assert dataplane.listener_url(first) == f"http://127.0.0.1:{new_port}"
        assert fetch(f"http://127.0.0.1:{new_port}/") == (200, "one")

        with pytest.raises(alb.ListenerNotServed, match="is not served locally"):
            dataplane.listener_url(first.replace(first.rsplit("/", 1)[1], "0" * 16))
