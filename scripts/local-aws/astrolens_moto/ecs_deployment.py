"""ECS blue/green service deployments: service revisions, deployments, and what they read and write in moto.

``ecs.py`` (moto patches, request handlers, validation; its docstring says what is
modelled) and ``ecs_worker.py`` (the thread that moves a deployment through its
stages) use this module. The state lives on moto's ``Service`` objects as
``service.astrolens_bg``, so ``/moto-api/reset`` forgets it with the service.

Locking: every read or write of this state holds ``LOCK``. The worker drops it
around anything that blocks (starting a container, invoking a Lambda, waiting),
so API calls never wait behind a stage.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.elbv2.models import elbv2_backends
from moto.moto_api._internal import mock_random


log = logging.getLogger("astrolens_moto.ecs")

LOCK = threading.RLock()

BLUE_GREEN_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
HOOK_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
)
LAMBDA_ONLY_STAGES = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
FINISHED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
IN_FLIGHT = ("PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
# The text real ECS puts in statusReason when a hook fails (containers-roadmap#2664).
HOOK_FAILURE_TEXT = "deployment failed: hook execution failure(s) detected"
MAX_EVENTS = 100  # DescribeServices shows at most 100 events, newest first


# --------------------------------------------------------------------------
# knobs: documented defaults, and the points AWS-BEHAVIOUR.md marks [I]


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def stage_seconds() -> float:
    """Modelled seconds a stage without a wait takes ([I]; AWS takes tens of seconds)."""
    return _env_float("ASTROLENS_ECS_STAGE_SECONDS", 5)


def alarm_poll_seconds() -> float:
    """Modelled seconds between two reads of the alarms ([I])."""
    return max(_env_float("ASTROLENS_ECS_ALARM_POLL_SECONDS", 5), 0.001)


def default_callback_delay() -> float:
    """Seconds before an IN_PROGRESS hook is invoked again when it names no callBackDelay (AWS: 30)."""
    return _env_float("ASTROLENS_ECS_HOOK_CALLBACK_DELAY", 30)


def task_start_timeout() -> float:
    """Real seconds a container may take to answer its health check."""
    return _env_float("ASTROLENS_ECS_TASK_START_TIMEOUT", 60)


def hook_failure_mode() -> str:
    """What a failed hook does: ``rollback`` (default) or ``stop`` ([I]: A5)."""
    mode = os.environ.get("ASTROLENS_ECS_HOOK_FAILURE", "rollback").lower()
    if mode not in ("rollback", "stop"):
        raise ValueError(f"ASTROLENS_ECS_HOOK_FAILURE must be rollback or stop, got {mode!r}")
    return mode


def reconcile_on_supersede() -> bool:
    """Whether a deployment that replaces one in flight starts at RECONCILE_SERVICE ([I]: A5)."""
    return os.environ.get("ASTROLENS_ECS_RECONCILE_ON_SUPERSEDE", "1") not in ("0", "false", "no")


def alarm_monitor_from() -> str:
    """First stage at which alarms are read ([I]: AWS says "during traffic shifting and bake")."""
    stage = os.environ.get("ASTROLENS_ECS_ALARM_MONITOR_FROM", "TEST_TRAFFIC_SHIFT")
    if stage not in STAGE_ORDER:
        raise ValueError(f"ASTROLENS_ECS_ALARM_MONITOR_FROM must be a lifecycle stage, got {stage!r}")
    return stage


STAGE_ORDER = (
    "RECONCILE_SERVICE",
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
)


# --------------------------------------------------------------------------
# model


def _random_digits(n: int) -> str:
    # moto's seeded random (POST /moto-api/seed) keeps ids reproducible
    return str(mock_random.randint(10 ** (n - 1), 10**n - 1))


def _random_id(n: int = 21) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(mock_random.choice(alphabet) for _ in range(n))


class ServiceRevision:
    """An immutable snapshot of a service's configuration, plus the one local
    process that stands in for all of its tasks."""

    def __init__(self, service: Any, task_definition_arn: str, images: list[dict[str, Any]]):
        self.digits = _random_digits(19)
        partition_arn = service.arn.split(":service/")[0]
        self.arn = f"{partition_arn}:service-revision/{service.cluster_name}/{service.name}/{self.digits}"
        self.service_arn = service.arn
        self.cluster_arn = service.cluster_arn
        self.task_definition = task_definition_arn
        self.load_balancers = json.loads(json.dumps(service.load_balancers or []))
        self.launch_type = service.launch_type
        self.platform_version = service.platform_version
        self.network_configuration = service.network_configuration or None
        self.container_images = images
        self.created_at = utcnow()
        # runtime
        self.requested = 0  # task count asked of this revision
        self.instance: Any = None  # dataplane.Instance while running
        self.target_groups: list[str] = []  # where the instance is registered
        self.start_error: str | None = None
        self.updated_at = self.created_at

    @property
    def running(self) -> int:
        return self.requested if self.instance is not None else 0

    @property
    def pending(self) -> int:
        return 0 if self.instance is not None else self.requested

    def summary(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "requestedTaskCount": self.requested,
            "runningTaskCount": self.running,
            "pendingTaskCount": self.pending,
        }

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceRevisionArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "taskDefinition": self.task_definition,
            "loadBalancers": self.load_balancers,
            "containerImages": self.container_images,
            "createdAt": self.created_at,
        }
        if self.launch_type:
            out["launchType"] = self.launch_type
        if self.platform_version:
            out["platformVersion"] = self.platform_version
        if self.network_configuration:
            out["networkConfiguration"] = self.network_configuration
        return out


@dataclass
class Route:
    """One load balancer entry with advancedConfiguration, resolved at deployment start."""

    production_rule: str
    test_rule: str | None
    blue_tg: str
    green_tg: str


class ServiceDeployment:
    def __init__(self, service: Any, target: ServiceRevision, sources: list[ServiceRevision]):
        self.id = _random_id()
        partition_arn = service.arn.split(":service/")[0]
        self.arn = f"{partition_arn}:service-deployment/{service.cluster_name}/{service.name}/{self.id}"
        self.service = service
        self.target = target
        self.sources = list(sources)
        self.deployment_configuration = json.loads(json.dumps(service.deployment_configuration or {}))
        self.created_at = utcnow()
        self.updated_at = self.created_at
        self.started_at = None
        self.finished_at = None
        self.stopped_at = None
        self.status = "PENDING"
        self.status_reason: str | None = None
        self.lifecycle_stage: str | None = None
        self.hook_details: list[dict[str, Any]] = []
        self.rollback: dict[str, Any] | None = None
        self.triggered_alarms: list[str] = []
        self.alarm_status = "DISABLED" if not _alarms_enabled(self.deployment_configuration) else "MONITORING"
        self.circuit_breaker_failures = 0
        self.test_weights: dict[str, float] = {}  # revision arn -> percent
        self.prod_weights: dict[str, float] = {}
        # control, set by API calls and read by the worker
        self.interrupt: str | None = None  # ROLLBACK | ABORT | SUPERSEDED | RESET
        self.pause_actions: dict[str, str] = {}  # hookId -> CONTINUE | ROLLBACK
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------ API views

    def _revision_summary(self, rev: ServiceRevision) -> dict[str, Any]:
        out = rev.summary()
        out["requestedTestTrafficWeight"] = float(self.test_weights.get(rev.arn, 0.0))
        out["requestedProductionTrafficWeight"] = float(self.prod_weights.get(rev.arn, 0.0))
        return out

    def brief(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service.arn,
            "clusterArn": self.service.cluster_arn,
            "createdAt": self.created_at,
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status,
        }
        for key, value in (
            ("startedAt", self.started_at),
            ("finishedAt", self.finished_at),
            ("statusReason", self.status_reason),
        ):
            if value is not None:
                out[key] = value
        return out

    def describe(self) -> dict[str, Any]:
        out = self.brief()
        out.update(
            {
                "updatedAt": self.updated_at,
                "sourceServiceRevisions": [self._revision_summary(r) for r in self.sources],
                "targetServiceRevision": self._revision_summary(self.target),
                "deploymentConfiguration": self.deployment_configuration,
                "lifecycleHookDetails": [dict(h) for h in self.hook_details],
                "alarms": {
                    "status": self.alarm_status,
                    "alarmNames": list(
                        (self.deployment_configuration.get("alarms") or {}).get("alarmNames") or []
                    ),
                    "triggeredAlarmNames": list(self.triggered_alarms),
                },
            }
        )
        cb = self.deployment_configuration.get("deploymentCircuitBreaker") or {}
        out["deploymentCircuitBreaker"] = {
            "status": ("TRIGGERED" if self.circuit_breaker_failures else "MONITORING")
            if cb.get("enable")
            else "DISABLED",
            "failureCount": self.circuit_breaker_failures,
            # ECS's documented threshold: half the desired count, at least 3, at most 200
            "threshold": min(200, max(3, (self.target.requested + 1) // 2)),
        }
        if self.lifecycle_stage:
            out["lifecycleStage"] = self.lifecycle_stage
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        if self.rollback is not None:
            out["rollback"] = dict(self.rollback)
        return out


def _alarms_enabled(conf: dict[str, Any]) -> bool:
    alarms = conf.get("alarms") or {}
    return bool(alarms.get("enable") and alarms.get("alarmNames"))


class BlueGreenService:
    """Per-service state: revisions, deployments, which revisions run."""

    def __init__(self, service: Any, first: ServiceRevision | None):
        self.revisions: list[ServiceRevision] = [first] if first else []
        self.deployments: list[ServiceDeployment] = []
        self.active: list[ServiceRevision] = [first] if first else []  # revisions with tasks requested
        self.production: ServiceRevision | None = first  # the revision the service is on when idle
        if first:
            first.requested = service.desired_count

    def in_flight(self) -> ServiceDeployment | None:
        for dep in reversed(self.deployments):
            if dep.status in IN_FLIGHT:
                return dep
        return None


# --------------------------------------------------------------------------
# moto lookups


def ecs_backend_of(service: Any) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[service._account_id][service.region_name]


def container_images(backend: Any, task_definition_arn: str | None) -> list[dict[str, Any]]:
    if not task_definition_arn:
        return []
    td = backend.describe_task_definition(task_definition_arn)
    return [{"containerName": c.get("name"), "image": c.get("image")} for c in td.container_definitions]


def new_revision(service: Any) -> ServiceRevision:
    backend = ecs_backend_of(service)
    return ServiceRevision(
        service, service.task_definition, container_images(backend, service.task_definition)
    )


def state_of(service: Any) -> BlueGreenService:
    """The blue/green state of a service, created on first use from its current task definition."""
    state = getattr(service, "astrolens_bg", None)
    if state is None:
        first = new_revision(service) if service.task_definition else None
        state = BlueGreenService(service, first)
        service.astrolens_bg = state
    return state


def is_blue_green(service: Any) -> bool:
    controller = (service.deployment_controller or {}).get("type", "ECS")
    conf = getattr(service, "deployment_configuration", None) or {}
    return controller == "ECS" and conf.get("strategy") in BLUE_GREEN_STRATEGIES


def add_event(service: Any, message: str) -> None:
    """A DescribeServices event, worded like ECS's: "(service NAME) ..."."""
    event = {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": f"(service {service.name}) {message}"}
    # a new list, not an in-place insert: moto serialises service.events outside LOCK
    service.events = [event] + list(service.events or [])[: MAX_EVENTS - 1]
    log.info("%s/%s: %s", service.cluster_name, service.name, message)


def refresh_service_view(service: Any) -> None:
    """Rewrite what DescribeServices shows from the blue/green state (call under LOCK)."""
    state = state_of(service)
    dep = state.in_flight()
    primary = dep.target if dep else state.production
    shown = [primary] if primary else []
    shown += [r for r in state.active if r is not primary]
    deployments = []
    for rev in shown:
        entry: dict[str, Any] = {
            "id": f"ecs-svc/{rev.digits}",
            "status": "PRIMARY" if rev is primary else "ACTIVE",
            "taskDefinition": rev.task_definition,
            "desiredCount": rev.requested,
            "pendingCount": rev.pending,
            "runningCount": rev.running,
            "failedTasks": 1 if rev.start_error else 0,
            "createdAt": rev.created_at,
            "updatedAt": rev.updated_at,
            "launchType": rev.launch_type,
            "platformFamily": "EC2" if rev.launch_type == "EC2" else "FARGATE",
        }
        if rev.platform_version:
            entry["platformVersion"] = rev.platform_version
        if rev.network_configuration:
            entry["networkConfiguration"] = rev.network_configuration
        if rev is primary:
            # rolloutState is documented for rolling deployments only; filled so
            # that tools written for rolling deployments see progress.
            entry["rolloutState"] = "IN_PROGRESS" if dep else "COMPLETED"
            entry["rolloutStateReason"] = (
                f"ECS deployment ecs-svc/{rev.digits} in progress."
                if dep
                else f"ECS deployment ecs-svc/{rev.digits} completed."
            )
        deployments.append(entry)
    service.deployments = deployments
    service.current_service_revisions = [r.summary() for r in state.active]
    last = state.deployments[-1] if state.deployments else None
    service.current_service_deployment = last.arn if last else None
    service.running_count = sum(r.running for r in state.active)
    service.pending_count = sum(r.pending for r in state.active)


# --------------------------------------------------------------------------
# traffic (moto's elbv2 backend) and alarms (moto's CloudWatch backend)


class TrafficError(Exception):
    """A listener rule could not be read or changed."""


def _find_rule(elbv2: Any, arn: str) -> Any:
    if ":listener/" in arn:  # an NLB listener ARN: its default action carries the weights
        for lb in elbv2.load_balancers.values():
            listener = lb.listeners.get(arn)
            if listener is not None:
                return listener._default_rule[0]
        raise TrafficError(f"listener {arn} does not exist")
    for lb in elbv2.load_balancers.values():
        for listener in lb.listeners.values():
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return rule
    raise TrafficError(f"listener rule {arn} does not exist")


def _forward_action(rule: Any, arn: str) -> Any:
    kinds = [getattr(a, "type", None) for a in rule.actions]
    if kinds != ["forward"]:
        # AWS fails a blue/green deployment on rules mixing forward and other actions
        raise TrafficError(
            f"listener rule {arn} has actions {kinds}; ECS blue/green needs exactly one forward action"
        )
    return rule.actions[0]


def rule_weights(account: str, region: str, rule_arn: str) -> dict[str, int]:
    elbv2 = elbv2_backends[account][region]
    action = _forward_action(_find_rule(elbv2, rule_arn), rule_arn)
    fc = action.data.get("ForwardConfig")
    if fc is None:
        return {action.data.get("TargetGroupArn"): 1}
    return {tg["TargetGroupArn"]: int(tg.get("Weight", 1)) for tg in fc.get("TargetGroups", [])}


def set_rule_weights(account: str, region: str, rule_arn: str, weights: dict[str, int]) -> None:
    """Set forward weights in place, as ECS does through ModifyRule.

    In place because the listener's default rule and its default_actions share
    the action objects, and the data plane's proxy reads these same objects.
    """
    elbv2 = elbv2_backends[account][region]
    action = _forward_action(_find_rule(elbv2, rule_arn), rule_arn)
    fc = action.data.get("ForwardConfig")
    if fc is None:
        fc = {
            "TargetGroups": [{"TargetGroupArn": action.data["TargetGroupArn"], "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": False},
        }
    groups = fc.setdefault("TargetGroups", [])
    for tg_arn, weight in weights.items():
        entry = next((g for g in groups if g.get("TargetGroupArn") == tg_arn), None)
        if entry is None:
            entry = {"TargetGroupArn": tg_arn}
            groups.append(entry)
        entry["Weight"] = int(weight)
    action.data["ForwardConfig"] = fc
    action.ForwardConfig = fc
    if len(groups) > 1:  # ELB rejects TargetGroupArn beside a multi-group ForwardConfig
        action.data.pop("TargetGroupArn", None)
        action.__dict__.pop("TargetGroupArn", None)


def alarms_in_alarm(account: str, region: str, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(names in ALARM, names that do not exist), read from moto's CloudWatch backend."""
    alarms = cloudwatch_backends[account][region].alarms
    firing, missing = [], []
    for name in names:
        alarm = alarms.get(name)
        if alarm is None:
            missing.append(name)
        elif alarm.state_value == "ALARM":
            firing.append(name)
    return firing, missing
