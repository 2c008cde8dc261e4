"""SageMaker: UpdateEndpoint with deployment guardrails (with sagemaker_serving.py: endpoints that serve).

moto answers CreateEndpoint with an endpoint that is InService at once, has no
UpdateEndpoint, and stubs the runtime's InvokeEndpoint. This module adds, after
AWS-BEHAVIOUR.md section B:

UpdateEndpoint (a method on moto's SageMakerResponse, dispatched like moto's own)
  * Validation (B1, B5), all ValidationException (HTTP 400):
    ``Could not find endpoint "arn"``, ``Cannot update in-progress endpoint "arn"``
    (Creating/Updating/SystemUpdating/RollingBack/Deleting),
    ``Could not find endpoint configuration "arn"``, the name pattern, the ranges of
    B1 (AWS's "1 validation error detected: Value ... at ... failed to satisfy
    constraint" wording), CanarySize/LinearStepSize at most 50% of the new fleet.
    UpdateEndpointWeightsAndCapacities on an endpoint being updated gets the
    in-progress error too.
  * InService -> Updating at once; a background thread then walks the
    BlueGreenUpdatePolicy (no DeploymentConfig = ALL_AT_ONCE, no waits, no alarms):
      Creating          "Launching N instance(s)." (green is started, see below)
      ALL_AT_ONCE       ActivatingTraffic on full capacity, Baking WaitIntervalInSeconds
                        (when > 0)
      CANARY            ActivatingTraffic on canary capacity, Baking WaitIntervalInSeconds,
                        ActivatingTraffic on full capacity
      LINEAR            ActivatingTraffic per step, Baking WaitIntervalInSeconds between
                        steps
      then Baking "Baking for T seconds (TerminationWaitInSeconds) with traffic enabled
      on full capacity of N instance(s).", Deleting (blue is stopped), and InService on
      the new config with ``LastDeploymentConfig`` and no FailureReason.
    Those steps are ``PendingDeploymentSummary.ProductionVariants[].VariantStatus``
    (one entry, the current step); top-level ``ProductionVariants`` stay the old fleet.
  * Alarms of ``AutoRollbackConfiguration`` are read from moto's CloudWatch backend
    (``state_value``, as SetAlarmState sets it) at every evaluation, from the start of
    the deployment to the end of the final bake: an alarm already in ALARM rolls back
    at the first evaluation [I]. ``MaximumExecutionTimeoutInSeconds`` is checked at the
    same evaluations. A trip, a timeout, or green failing to start/answer /ping rolls
    back: traffic returns to blue at once, green is stopped, and the endpoint ends
    InService on the OLD config with ``FailureReason`` (the silent rollback of B3).
  * ``RetainDeploymentConfig`` reuses ``LastDeploymentConfig``;
    ``RetainAllVariantProperties`` keeps the old variants' instance counts and weights
    (minus ``ExcludeRetainedVariantProperties``).
  * Modelled durations (bakes, waits, each non-bake step, the execution timeout) go
    through ``clock.scaled`` (``ASTROLENS_TIME_SCALE``).

Endpoints that serve: ``sagemaker_serving.py`` runs each variant's model through the
data plane (blue lazily, green in the Creating step) and forwards InvokeEndpoint to
it, by green's traffic share while an update runs. Here green is started before any
traffic moves; blue is stopped after the final bake; green on rollback.

CloudFormation: AWS::SageMaker::Model / EndpointConfig / Endpoint take ModelName /
EndpointConfigName / EndpointName when given (moto generated names instead).

Fault injection, for rehearsals and tests (see ``__main__``'s /astrolens-api/):
  POST /astrolens-api/sagemaker/fail-next-update
       {"endpoint": NAME, "reason": TEXT?, "account": ID?, "region": REGION?}
       The next UpdateEndpoint of NAME rolls back at its first bake check with
       FailureReason TEXT (default: the ping health-check text). Answers 200 with
       what was armed.
  GET  /astrolens-api/sagemaker/instances
       The running instances: [{account, region, endpoint, config, variant, side,
       url, pid}].

Environment knobs ([I] = behaviour not documented by AWS, see AWS-BEHAVIOUR.md):
  ASTROLENS_SM_SAME_CONFIG=error|deploy   UpdateEndpoint to the config in use: a
      ValidationException (default) or a full blue/green deployment [I]
  ASTROLENS_SM_UPDATING_CONFIG_NAME=old|new  top-level EndpointConfigName while
      Updating (default old, as AWS's EventBridge example; ACK's fixture shows new) [I]
  ASTROLENS_SM_ROLLBACK_STATUS=Updating|RollingBack  status while rolling back
      (default Updating) [I]
  ASTROLENS_SM_FAILURE_REASON=set|empty   FailureReason after a rollback (default
      set; "empty" models Terraform #49020's observation) [I]
  ASTROLENS_SM_STEP_SECONDS=10   modelled duration of each step that is not a bake
      (launching, activating traffic, terminating, rolling back) [I]
  ASTROLENS_SM_ALARM_POLL_SECONDS=0.5   real seconds between alarm evaluations
  ASTROLENS_SM_SERVE=1|0   0: no instances; InvokeEndpoint is moto's canned stub and
      UpdateEndpoint is control plane only
  ASTROLENS_SM_HEALTH_TIMEOUT=60   real seconds an instance has to answer /ping

Not modelled: RollingUpdatePolicy (rejected with a message saying so) and
UpdateRollbackFailed, Creating/Failed endpoints (CreateEndpoint stays moto's:
InService at once), shadow variants, serverless/async inference, data capture,
autoscaling, alarm evaluation from metrics (alarms change only through
SetAlarmState), the exact FailureReason texts of alarm and timeout rollbacks [I].
A CloudFormation update of an endpoint replaces it (moto's behaviour), without
guardrails.

moto internals used (moto 5.2.5): ``SageMakerResponse`` (``sagemaker_backend``,
``_get_param``), ``SageMakerModelBackend`` (``endpoints``, ``endpoint_configs``,
``_models``, ``delete_endpoint``, ``update_endpoint_weights_and_capacities``),
``FakeEndpoint`` (attributes become DescribeEndpoint fields through
``gen_response_object``; ``_process_production_variants``), the CloudFormation
classmethod ``cloudformation_name_type``, ``cloudwatch_backends[..].alarms`` and
``MotoAPIBackend.reset``; see sagemaker_serving.py for the runtime side.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import (
    FakeEndpoint,
    FakeEndpointConfig,
    Model,
    SageMakerModelBackend,
)
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from . import clock
from .sagemaker_serving import (
    PING_FAILURE,
    Fleet,
    Runtime,
    StartError,
    choice,
    discard,
    endpoint_key,
    ensure_instance,
    invoke_endpoint_action,
    list_instances,
    lock,
    number,
    runtime_for,
    runtimes,
    serving_enabled,
    stop_fleet,
)

log = logging.getLogger("astrolens_moto.sagemaker")

IN_PROGRESS = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
CONFIG_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


# --------------------------------------------------------------------------
# knobs


def _step_seconds() -> float:
    return number("ASTROLENS_SM_STEP_SECONDS", 10)


# --------------------------------------------------------------------------
# a deployment in progress (kept on serving's Runtime, beside moto's objects)


@dataclass
class _Deployment:
    old_config: str
    new_config: str
    deployment_config: dict[str, Any]
    phases: list["_Phase"]
    alarms: list[str]
    started: datetime
    deadline: float | None  # time.monotonic() when MaximumExecutionTimeoutInSeconds ends
    max_execution: int | None
    retain_all: bool
    excluded: set[str]
    injected_reason: str | None
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Phase:
    status: str  # VariantStatus: ActivatingTraffic | Baking
    message: str
    share: float  # green's traffic share during the phase
    seconds: float  # modelled
    bake: bool  # a bake check (where injected failures fire)


_fail_next: dict[tuple[str, str, str], str] = {}


class _Rollback(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Cancelled(Exception):
    """The endpoint was deleted (or moto reset) during the deployment."""


# --------------------------------------------------------------------------
# UpdateEndpoint: request validation and the plan


def _constraint(value: Any, where: str, constraint: str) -> ValidationError:
    shown = "null" if value is None else value
    return ValidationError(
        message=f"1 validation error detected: Value '{shown}' at '{where}' failed to satisfy constraint: {constraint}"
    )


def _int_in(value: Any, where: str, low: int, high: int | None, required: bool = True) -> int | None:
    if value is None:
        if required:
            raise _constraint(None, where, "Member must not be null")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _constraint(value, where, "Member must be an integer")
    if value < low:
        raise _constraint(value, where, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        raise _constraint(value, where, f"Member must have value less than or equal to {high}")
    return value


def _fleet_size(variants: list[dict[str, Any]]) -> int:
    return sum(int(v.get("InitialInstanceCount") or 1) for v in variants) or 1


def _capacity(size: dict[str, Any] | None, where: str, fleet: int, what: str) -> tuple[float, int]:
    """(traffic fraction, instance count) of a CanarySize / LinearStepSize."""
    if not isinstance(size, dict):
        raise ValidationError(message=f"{what} must be specified for the traffic routing type")  # [I] wording
    kind = size.get("Type")
    if kind not in ("INSTANCE_COUNT", "CAPACITY_PERCENT"):
        raise _constraint(kind, f"{where}.type", "Member must satisfy enum value set: [INSTANCE_COUNT, CAPACITY_PERCENT]")
    value = _int_in(size.get("Value"), f"{where}.value", 1, None)
    assert value is not None
    if kind == "INSTANCE_COUNT":
        if value * 2 > fleet:
            raise ValidationError(
                message=f"{what} of {value} instance(s) exceeds 50% of the new fleet's {fleet} instance(s)."
            )
        return value / fleet, value
    if value > 50:
        raise ValidationError(message=f"{what} of {value}% exceeds 50% of the new fleet's capacity.")
    return value / 100, max(1, math.ceil(fleet * value / 100))


def _plan(dc: dict[str, Any] | None, variants: list[dict[str, Any]]) -> tuple[list[_Phase], list[str], int | None]:
    """Validate a DeploymentConfig; return the traffic phases, alarm names and timeout."""
    dc = dc or {}
    base = "deploymentConfig"
    blue_green = dc.get("BlueGreenUpdatePolicy")
    if dc.get("RollingUpdatePolicy") is not None:
        if blue_green is not None:
            raise ValidationError(message="Only one of BlueGreenUpdatePolicy or RollingUpdatePolicy may be specified.")
        raise ValidationError(
            message="RollingUpdatePolicy is not modelled by the local AWS (astrolens_moto); use BlueGreenUpdatePolicy."
        )
    alarms_cfg = (dc.get("AutoRollbackConfiguration") or {}).get("Alarms")
    alarms: list[str] = []
    if alarms_cfg is not None:
        where = f"{base}.autoRollbackConfiguration.alarms"
        if not 1 <= len(alarms_cfg) <= 10:
            raise _constraint(alarms_cfg, where, "Member must have length between 1 and 10")
        for i, a in enumerate(alarms_cfg):
            name = (a or {}).get("AlarmName")
            if not name or len(name) > 255:
                raise _constraint(name, f"{where}.{i + 1}.member.alarmName", "Member must have length between 1 and 255")
            alarms.append(name)

    fleet = _fleet_size(variants)
    if blue_green is None:  # AWS's default: blue/green, all at once
        routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        termination, max_execution = 0, None
    else:
        where = f"{base}.blueGreenUpdatePolicy"
        routing = blue_green.get("TrafficRoutingConfiguration")
        if not isinstance(routing, dict):
            raise _constraint(None, f"{where}.trafficRoutingConfiguration", "Member must not be null")
        termination = _int_in(blue_green.get("TerminationWaitInSeconds"), f"{where}.terminationWaitInSeconds", 0, 3600, False) or 0
        max_execution = _int_in(
            blue_green.get("MaximumExecutionTimeoutInSeconds"), f"{where}.maximumExecutionTimeoutInSeconds", 600, 28800, False
        )
    where = f"{base}.blueGreenUpdatePolicy.trafficRoutingConfiguration"
    kind = routing.get("Type")
    if kind not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
        raise _constraint(kind, f"{where}.type", "Member must satisfy enum value set: [ALL_AT_ONCE, CANARY, LINEAR]")
    wait = _int_in(routing.get("WaitIntervalInSeconds"), f"{where}.waitIntervalInSeconds", 0, 3600)
    assert wait is not None

    step = _step_seconds()
    full = f"full capacity of {fleet} instance(s)"
    phases: list[_Phase] = []
    if kind == "ALL_AT_ONCE":
        phases.append(_Phase("ActivatingTraffic", f"Activating traffic on {full}.", 1.0, step, False))
        if wait > 0:
            phases.append(
                _Phase("Baking", f"Baking for {wait} seconds (WaitIntervalInSeconds) with traffic enabled on {full}.", 1.0, wait, True)
            )
    elif kind == "CANARY":
        share, count = _capacity(routing.get("CanarySize"), f"{where}.canarySize", fleet, "CanarySize")
        canary = f"canary capacity of {count} instance(s)"
        phases += [
            _Phase("ActivatingTraffic", f"Activating traffic on {canary}.", share, step, False),
            _Phase("Baking", f"Baking for {wait} seconds (WaitIntervalInSeconds) with traffic enabled on {canary}.", share, wait, True),
            _Phase("ActivatingTraffic", f"Activating traffic on {full}.", 1.0, step, False),
        ]
    else:  # LINEAR
        size = routing.get("LinearStepSize")
        if isinstance(size, dict) and size.get("Type") == "CAPACITY_PERCENT" and isinstance(size.get("Value"), int) and size["Value"] < 10:
            raise _constraint(size["Value"], f"{where}.linearStepSize.value", "Member must have value greater than or equal to 10")
        share, count = _capacity(size, f"{where}.linearStepSize", fleet, "LinearStepSize")
        steps = math.ceil(1 / share - 1e-9)
        for i in range(1, steps + 1):
            now_share = min(1.0, i * share)
            on = full if i == steps else f"{min(fleet, i * count)} instance(s) ({round(now_share * 100)}% of capacity)"
            phases.append(_Phase("ActivatingTraffic", f"Activating traffic on {on} (step {i} of {steps}).", now_share, step, False))
            if i < steps:  # no wait after the last step: the final bake follows
                phases.append(
                    _Phase("Baking", f"Baking for {wait} seconds (WaitIntervalInSeconds) with traffic enabled on {on}.", now_share, wait, True)
                )
    phases.append(
        _Phase("Baking", f"Baking for {termination} seconds (TerminationWaitInSeconds) with traffic enabled on {full}.", 1.0, termination, True)
    )
    return phases, alarms, max_execution


def _variant_summaries(dep: _Deployment, variants: list[dict[str, Any]], status: str, message: str, launched: bool) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    summaries = []
    for v in variants:
        count = int(v.get("InitialInstanceCount") or 1)
        s = {
            "VariantName": v["VariantName"],
            "DesiredInstanceCount": count,
            "CurrentInstanceCount": count if launched else 0,
            "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
            "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
            "InstanceType": v.get("InstanceType"),
            "VariantStatus": [{"Status": status, "StatusMessage": message, "StartTime": now}],
        }
        summaries.append({k: val for k, val in s.items() if val is not None})
    # A fresh dict each time: a response being serialised keeps the old one intact.
    return {"EndpointConfigName": dep.new_config, "StartTime": dep.started, "ProductionVariants": summaries}


def update_endpoint(self: SageMakerResponse) -> ActionResult:
    backend = self.sagemaker_backend
    name = self._get_param("EndpointName")
    config_name = self._get_param("EndpointConfigName")
    with lock:
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(message=f'Could not find endpoint "{arn}".')
        if endpoint.endpoint_status in IN_PROGRESS:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.endpoint_status == "Failed":  # [I] wording; AWS allows only DeleteEndpoint
            raise ValidationError(message=f'Cannot update endpoint "{endpoint.arn}" in Failed state; delete it.')
        if not isinstance(config_name, str) or not CONFIG_NAME_RE.match(config_name):
            raise _constraint(config_name, "endpointConfigName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
        cfg = backend.endpoint_configs.get(config_name)
        if cfg is None:
            arn = FakeEndpointConfig.arn_formatter(config_name, backend.account_id, backend.region_name)
            raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
        same = choice("ASTROLENS_SM_SAME_CONFIG", "error", ("error", "deploy"))
        if config_name == endpoint.endpoint_config_name and same == "error":
            raise ValidationError(
                message=f'Endpoint "{endpoint.arn}" already uses endpoint configuration "{cfg.endpoint_config_arn}".'
            )
        previous = getattr(endpoint, "last_deployment_config", None)
        if self._get_param("RetainDeploymentConfig") and previous:
            dc = copy.deepcopy(previous)
        else:
            dc = self._get_param("DeploymentConfig")
        variants = copy.deepcopy(cfg.production_variants)
        phases, alarms, max_execution = _plan(dc, variants)

        rt = runtime_for(backend, endpoint)
        now = datetime.now(timezone.utc)
        dep = _Deployment(
            old_config=endpoint.endpoint_config_name,
            new_config=config_name,
            deployment_config=dc or {},
            phases=phases,
            alarms=alarms,
            started=now,
            deadline=time.monotonic() + clock.scaled(max_execution) if max_execution else None,
            max_execution=max_execution,
            retain_all=bool(self._get_param("RetainAllVariantProperties")),
            excluded={p.get("VariantPropertyType") for p in self._get_param("ExcludeRetainedVariantProperties") or []},
            injected_reason=_fail_next.pop(endpoint_key(backend, name), None),
        )
        rt.deployment = dep
        rt.green = Fleet(config_name, variants, "green")
        rt.green_share = 0.0
        if dc:
            endpoint.last_deployment_config = copy.deepcopy(dc)
        endpoint.pending_deployment_summary = _variant_summaries(
            dep, variants, "Creating", f"Launching {_fleet_size(variants)} instance(s).", False
        )
        if choice("ASTROLENS_SM_UPDATING_CONFIG_NAME", "old", ("old", "new")) == "new":
            endpoint.endpoint_config_name = config_name
        endpoint.last_modified_time = now
        endpoint.endpoint_status = "Updating"
        threading.Thread(target=_deploy, args=(rt, dep), name=f"sagemaker-update-{name}", daemon=True).start()
    log.info("UpdateEndpoint %s: %s -> %s, %d traffic steps", name, dep.old_config, config_name, len(phases))
    return ActionResult({"EndpointArn": endpoint.arn})


# --------------------------------------------------------------------------
# UpdateEndpoint: the deployment thread


def _tripped(rt: Runtime, dep: _Deployment) -> list[str]:
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[rt.account_id][rt.region].alarms
    return [n for n in dep.alarms if n in alarms and alarms[n].state_value == "ALARM"]


def _evaluate(rt: Runtime, dep: _Deployment, *, bake: bool) -> None:
    if bake and dep.injected_reason is not None:
        raise _Rollback(dep.injected_reason)
    tripped = _tripped(rt, dep)
    if tripped:  # [I] wording
        raise _Rollback(
            f"Deployment rolled back: CloudWatch alarm(s) {', '.join(tripped)} in ALARM state during the deployment."
        )
    if dep.deadline is not None and time.monotonic() > dep.deadline:  # [I] wording
        raise _Rollback(
            f"Deployment exceeded MaximumExecutionTimeoutInSeconds ({dep.max_execution} seconds) and was rolled back."
        )


def _wait(rt: Runtime, dep: _Deployment, seconds: float, *, bake: bool = False, evaluate: bool = True) -> None:
    """Wait modelled ``seconds``, evaluating alarms (at least once) when asked."""
    end = time.monotonic() + clock.scaled(seconds)
    poll = max(0.01, number("ASTROLENS_SM_ALARM_POLL_SECONDS", 0.5))
    while True:
        if evaluate:
            _evaluate(rt, dep, bake=bake)
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        if dep.stop.wait(min(poll, remaining) if evaluate else remaining):
            raise _Cancelled()


def _show(rt: Runtime, dep: _Deployment, status: str, message: str, *, launched: bool = True) -> None:
    with lock:
        if rt.deployment is dep:
            rt.endpoint.pending_deployment_summary = _variant_summaries(dep, rt.green.variants if rt.green else [], status, message, launched)


def _deploy(rt: Runtime, dep: _Deployment) -> None:
    green = rt.green
    assert green is not None
    try:
        _wait(rt, dep, _step_seconds())  # launching
        if serving_enabled():
            for v in green.variants:
                try:
                    ensure_instance(rt, green, v)
                except StartError as e:
                    raise _Rollback(f"{PING_FAILURE.format(variant=v['VariantName'])} (local AWS: {e})") from e
        for phase in dep.phases:
            with lock:
                rt.green_share = phase.share
            _show(rt, dep, phase.status, phase.message)
            _wait(rt, dep, phase.seconds, bake=phase.bake)
        _finish(rt, dep)
    except _Rollback as rb:
        _roll_back(rt, dep, rb.reason)
    except _Cancelled:
        stop_fleet(green)
    except Exception as e:  # a bug here must not leave the endpoint Updating for ever
        log.exception("UpdateEndpoint %s failed inside the local AWS", rt.endpoint.endpoint_name)
        _roll_back(rt, dep, f"InternalFailure in the local AWS: {e}")


def _new_production_variants(old: list[dict[str, Any]], new: list[dict[str, Any]], dep: _Deployment) -> list[dict[str, Any]]:
    variants = FakeEndpoint._process_production_variants(None, copy.deepcopy(new))  # type: ignore[arg-type]
    if not dep.retain_all:
        return variants
    by_name = {v["VariantName"]: v for v in old}
    for v in variants:
        before = by_name.get(v["VariantName"])
        if before is None:
            continue
        if "DesiredInstanceCount" not in dep.excluded:
            for k in ("CurrentInstanceCount", "DesiredInstanceCount"):
                if k in before:
                    v[k] = before[k]
        if "DesiredWeight" not in dep.excluded:
            for k in ("CurrentWeight", "DesiredWeight"):
                if k in before:
                    v[k] = before[k]
    return variants


def _finish(rt: Runtime, dep: _Deployment) -> None:
    endpoint = rt.endpoint
    with lock:
        old_blue, green = rt.blue, rt.green
        assert green is not None
        rt.blue, rt.green, rt.green_share = green, None, 0.0
        green.side = "blue"
    terminating = f"Terminating {_fleet_size(old_blue.variants)} instance(s) of the old fleet."
    with lock:
        endpoint.pending_deployment_summary = _variant_summaries(dep, green.variants, "Deleting", terminating, True)
    stop_fleet(old_blue)
    _wait(rt, dep, _step_seconds(), evaluate=False)  # past the bake: no rollback any more
    with lock:
        if rt.deployment is not dep:
            return
        endpoint.endpoint_config_name = dep.new_config
        endpoint.production_variants = _new_production_variants(endpoint.production_variants, green.variants, dep)
        endpoint.failure_reason = None  # a successful update clears an earlier rollback's reason
        endpoint.pending_deployment_summary = None
        endpoint.last_modified_time = datetime.now(timezone.utc)
        rt.deployment = None
        endpoint.endpoint_status = "InService"
    log.info("UpdateEndpoint %s: InService on %s", endpoint.endpoint_name, dep.new_config)


def _roll_back(rt: Runtime, dep: _Deployment, reason: str) -> None:
    endpoint = rt.endpoint
    log.warning("UpdateEndpoint %s: rolling back to %s: %s", endpoint.endpoint_name, dep.old_config, reason)
    with lock:
        if rt.deployment is not dep:
            return
        rt.green_share = 0.0  # blue still runs: traffic goes back at once
        green = rt.green
        endpoint.endpoint_status = choice("ASTROLENS_SM_ROLLBACK_STATUS", "Updating", ("Updating", "RollingBack"))
    if green is not None:
        _show(rt, dep, "Deleting", f"Rolling back: terminating {_fleet_size(green.variants)} instance(s) of the new fleet.")
        stop_fleet(green)
    try:
        _wait(rt, dep, _step_seconds(), evaluate=False)
    except _Cancelled:
        return
    with lock:
        if rt.deployment is not dep:
            return
        rt.green = None
        endpoint.endpoint_config_name = dep.old_config
        empty = choice("ASTROLENS_SM_FAILURE_REASON", "set", ("set", "empty")) == "empty"
        endpoint.failure_reason = "" if empty else reason
        endpoint.pending_deployment_summary = None
        endpoint.last_modified_time = datetime.now(timezone.utc)
        rt.deployment = None
        endpoint.endpoint_status = "InService"


# --------------------------------------------------------------------------
# moto backend wrappers


def _locked(original: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    method.__name__ = original.__name__
    return method


def _delete_endpoint(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_endpoint(self: SageMakerModelBackend, endpoint_name: str) -> None:
        with lock:
            original(self, endpoint_name)  # moto's own not-found error
            rt = runtimes.pop(endpoint_key(self, endpoint_name), None)
            if rt is not None:
                discard(rt)

    return delete_endpoint


def _weights_and_capacities(original: Callable[..., Any]) -> Callable[..., Any]:
    def update_endpoint_weights_and_capacities(self: SageMakerModelBackend, endpoint_name: str, *args: Any, **kwargs: Any) -> str:
        with lock:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is not None and endpoint.endpoint_status in IN_PROGRESS:
                raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
            return original(self, endpoint_name, *args, **kwargs)

    return update_endpoint_weights_and_capacities


def _reset(original: Callable[..., Any]) -> Callable[..., Any]:
    def reset(self: Any) -> None:
        with lock:
            for rt in runtimes.values():
                discard(rt)
            runtimes.clear()
            _fail_next.clear()
        original(self)

    return reset


# --------------------------------------------------------------------------
# /astrolens-api/sagemaker/* (served by __main__)

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


def _api_fail_next_update(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError('body must be {"endpoint": NAME, "reason": TEXT?, "account": ID?, "region": REGION?}')
    reason = body.get("reason") or PING_FAILURE.format(variant="AllTraffic")
    account = body.get("account") or DEFAULT_ACCOUNT
    region = body.get("region") or DEFAULT_REGION
    with lock:
        _fail_next[(account, region, endpoint)] = str(reason)
    log.info("fault injection: the next UpdateEndpoint of %s rolls back: %s", endpoint, reason)
    return 200, {"endpoint": endpoint, "reason": reason, "account": account, "region": region}


def _api_instances(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    return 200, list_instances()


API_ROUTES = {
    ("POST", "fail-next-update"): _api_fail_next_update,
    ("GET", "instances"): _api_instances,
}


# --------------------------------------------------------------------------

_installed = False


def install() -> None:
    """Patch moto's SageMaker (API, runtime, CloudFormation names). Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    # Fail at start, not at the first request, on a mistyped knob.
    choice("ASTROLENS_SM_SAME_CONFIG", "error", ("error", "deploy"))
    choice("ASTROLENS_SM_UPDATING_CONFIG_NAME", "old", ("old", "new"))
    choice("ASTROLENS_SM_ROLLBACK_STATUS", "Updating", ("Updating", "RollingBack"))
    choice("ASTROLENS_SM_FAILURE_REASON", "set", ("set", "empty"))
    serving_enabled()
    for knob, default in (("ASTROLENS_SM_STEP_SECONDS", 10), ("ASTROLENS_SM_ALARM_POLL_SECONDS", 0.5), ("ASTROLENS_SM_HEALTH_TIMEOUT", 60)):
        number(knob, default)

    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerModelBackend.describe_endpoint = _locked(SageMakerModelBackend.describe_endpoint)  # type: ignore[method-assign]
    SageMakerModelBackend.list_endpoints = _locked(SageMakerModelBackend.list_endpoints)  # type: ignore[method-assign]
    SageMakerModelBackend.delete_endpoint = _delete_endpoint(SageMakerModelBackend.delete_endpoint)  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint_weights_and_capacities = _weights_and_capacities(  # type: ignore[method-assign]
        SageMakerModelBackend.update_endpoint_weights_and_capacities
    )
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint_action(SageMakerRuntimeResponse.invoke_endpoint)  # type: ignore[method-assign]
    # Bodies are images: moto would decode them as UTF-8 and answer a 500.
    SageMakerRuntimeResponse.use_raw_body = True

    # CloudFormation: moto's parser names a resource from the property its class
    # declares; these three declared none, so explicit names were ignored.
    Model.cloudformation_name_type = staticmethod(lambda: "ModelName")  # type: ignore[method-assign]
    FakeEndpointConfig.cloudformation_name_type = staticmethod(lambda: "EndpointConfigName")  # type: ignore[method-assign]
    FakeEndpoint.cloudformation_name_type = staticmethod(lambda: "EndpointName")  # type: ignore[method-assign]

    from moto.moto_api._internal.models import MotoAPIBackend

    MotoAPIBackend.reset = _reset(MotoAPIBackend.reset)  # type: ignore[method-assign]
