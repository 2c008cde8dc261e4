"""ECS: built-in blue/green (and linear, canary) service deployments that progress.

moto stores a service's deploymentConfiguration but never moves a deployment, and
lacks the service-deployment APIs. This module makes a service on the ECS
deployment controller with strategy BLUE_GREEN, LINEAR or CANARY behave as
AWS-BEHAVIOUR.md section A describes. The state is in ``ecs_deployment.py``, the
thread that moves a deployment in ``ecs_worker.py``.

Modelled:
* CreateService, UpdateService and CloudFormation ``AWS::ECS::Service`` (create
  and update) keep ``deploymentController``, ``deploymentConfiguration`` (strategy,
  bakeTimeInMinutes, alarms, lifecycleHooks, linear/canaryConfiguration,
  deploymentCircuitBreaker) and ``loadBalancers[].advancedConfiguration``; the
  request is validated (bake time required for BLUE_GREEN and 0-1440, hook stages,
  PAUSE hooks refused at the two traffic-shift stages, advancedConfiguration with
  an alternate target group and a production rule).
* UpdateService with another task definition (or forceNewDeployment) makes a
  service revision and a service deployment, which a worker thread moves through
  RECONCILE_SERVICE (only when more than one revision runs), PRE_SCALE_UP,
  SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT,
  PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT (once, or per
  linear/canary step with its step bake), POST_PRODUCTION_TRAFFIC_SHIFT,
  BAKE_TIME and CLEAN_UP, with the statuses of A5.
* Data plane (``dataplane.py``): SCALE_UP starts the new revision's container
  (image and environment of the task definition's container, health path from
  its healthCheck URL, else the target group's, else /ping) and registers
  127.0.0.1:PORT in the green target group; the current revision is started
  lazily when a deployment begins (a failure is an event, not a crash); CLEAN_UP
  stops and deregisters blue; rollback stops green. Blue and green target groups
  are chosen from the production rule's current weights, so they swap roles
  from one deployment to the next as on AWS.
* Traffic: the test and production listener rules named in advancedConfiguration
  get their forward weights changed on moto's elbv2 backend (an NLB listener ARN
  means its default action). A rule with non-forward actions fails the deployment.
* Lifecycle hooks: Lambda targets invoked for real (``lambda_runtime.py``) with
  AWS's event; SUCCEEDED / FAILED / IN_PROGRESS (callBackDelay, hookDetails merged
  into the next event) / invalid status / function error; hook timeouts with
  their action; PAUSE hooks wait in AWAITING_ACTION for ContinueServiceDeployment.
  On rollback the TEST/PRODUCTION_TRAFFIC_SHIFT hooks run again with the weights
  reversed (targetServiceRevisionArn stays green).
* Alarms: read from moto's CloudWatch backend (``state_value``, as SetAlarmState
  leaves it) from TEST_TRAFFIC_SHIFT to the end of BAKE_TIME; ALARM rolls back
  when ``rollback`` is true (else the deployment stops), recording
  triggeredAlarmNames; MONITORING -> MONITORING_COMPLETE after the bake.
* StopServiceDeployment (ROLLBACK; ABORT stops where it stands), ConflictException
  on a finished one, ServiceDeploymentNotFoundException on an unknown one;
  UpdateService mid-deployment (old STOP_REQUESTED -> STOPPED, the new one starts at
  RECONCILE_SERVICE); ListServiceDeployments (filters, pagination),
  DescribeServiceDeployments (failures[] for unknown ARNs),
  ContinueServiceDeployment, DescribeServiceRevisions.
* DescribeServices: taskDefinition (the target while deploying, the old one again
  after a rollback), deployments[] PRIMARY/ACTIVE with ``ecs-svc/<revision digits>``
  ids, currentServiceDeployment, currentServiceRevisions, and events that explain
  each step and failure.
* Durations (bake, step bakes, callBackDelay, hook timeouts, stage pacing) are
  modelled time: ``clock.scaled`` (ASTROLENS_TIME_SCALE).

Knobs (env, read when used; [I] = AWS-BEHAVIOUR.md marks it inferred):
  ASTROLENS_ECS_STAGE_SECONDS=5             modelled seconds each stage takes [I]
  ASTROLENS_ECS_ALARM_POLL_SECONDS=5        modelled seconds between alarm reads [I]
  ASTROLENS_ECS_ALARM_MONITOR_FROM=TEST_TRAFFIC_SHIFT  first stage alarms are read [I]
  ASTROLENS_ECS_HOOK_CALLBACK_DELAY=30      default callBackDelay (AWS's documented 30)
  ASTROLENS_ECS_HOOK_FAILURE=rollback       a failed hook rolls back, or ``stop`` [I]
  ASTROLENS_ECS_RECONCILE_ON_SUPERSEDE=1    a replacing deployment reconciles first [I]
  ASTROLENS_ECS_PAUSE_HOOK_ERROR=InvalidParameterException  error for a PAUSE hook at a
                                            traffic-shift stage [I]
  ASTROLENS_ECS_STOP_FINISHED_ERROR=ConflictException  error for stopping a finished
                                            deployment [I]
  ASTROLENS_ECS_TASK_START_TIMEOUT=60       real seconds a container has to turn healthy

Not modelled:
* Rolling (ROLLING) deployments, the circuit breaker's retries (one failed start
  rolls back), task-level objects (no DescribeTasks for these revisions), task
  placement, Service Connect / VPC Lattice / headless shifting, the NLB's extra
  10 minutes, the 24-hour stage limit and 30-day deployment limit, the 15-minute
  limit per hook invocation (the Lambda runtime's own timeout applies), hook
  roleArn permissions, earlySuccessCriteria.
* One local process stands in for all tasks of a revision (running counts report
  desiredCount while it is up). Target health is moto's (always healthy).
* CreateService makes the first service revision but no service deployment (AWS
  records one); that revision's container starts at the first deployment.
* CODE_DEPLOY and EXTERNAL controllers, and ECS services with another strategy,
  keep moto's behaviour.
* CloudFormation: moto diffs templates textually, so a stack update reaches the
  service only when the service's own properties change (a Ref to a replaced
  task definition alone is not seen). A changed AWS::ECS::TaskDefinition
  registers a new revision the way moto's create path does (moto's update path
  registered PascalCase keys) and leaves the old revision registered, since the
  service may roll back to it.
* Inferred here, not documented by AWS: StopServiceDeployment ABORT stops the
  deployment where it stands (no traffic moved back); a hook failing while the
  traffic-shift hooks run again during a rollback is an event, and the rollback
  goes on; an alarm name that does not exist is an event and never fires.

moto internals used (moto 5.2.5): ``moto.ecs.models.EC2ContainerServiceBackend``
(create_service, update_service, reset, _get_service, _get_cluster,
describe_task_definition, services), ``moto.ecs.models.Service`` (its attributes
are what DescribeServices serialises; create/update_from_cloudformation_json),
``moto.ecs.responses.EC2ContainerServiceResponse`` (actions dispatched by name),
``moto.elbv2.models`` (load_balancers -> listeners -> rules -> FakeAction.data,
target_groups, register_targets), ``moto.cloudwatch.models.cloudwatch_backends``.
"""

from __future__ import annotations

import inspect
import logging
import os
from datetime import datetime, timezone
from typing import Any, Callable

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import pascal_to_camelcase, utcnow
from moto.ecs import models as ecs_models
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Service, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

from . import ecs_deployment as bg
from . import ecs_worker
from .ecs_deployment import LOCK

log = logging.getLogger("astrolens_moto.ecs")

DEPLOYMENT_STAGES_ALLOWED = set(bg.HOOK_STAGES)


class EcsError(ServiceException):
    """An ECS error whose code comes from the API model (and some from a knob)."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


# --------------------------------------------------------------------------
# validation (AWS-BEHAVIOUR.md A1)


def _invalid(message: str) -> InvalidParameterException:
    return InvalidParameterException(message)


def validate(
    conf: dict[str, Any] | None,
    load_balancers: list[dict[str, Any]] | None,
    controller: dict[str, Any] | None,
) -> None:
    """Refuse what AWS refuses for blue/green, with messages naming the field."""
    conf = conf or {}
    strategy = conf.get("strategy")
    if strategy not in bg.BLUE_GREEN_STRATEGIES:
        return
    ctype = (controller or {}).get("type", "ECS")
    if ctype != "ECS":
        raise _invalid(
            f"deploymentConfiguration.strategy {strategy} requires deploymentController type ECS, got {ctype}."
        )
    bake = conf.get("bakeTimeInMinutes")
    if strategy == "BLUE_GREEN" and bake is None:
        raise _invalid("deploymentConfiguration.bakeTimeInMinutes is required when strategy is BLUE_GREEN.")
    if bake is not None and not 0 <= int(bake) <= 1440:
        raise _invalid(f"deploymentConfiguration.bakeTimeInMinutes must be between 0 and 1440, got {bake}.")
    lc = conf.get("linearConfiguration") or {}
    if lc.get("stepPercent") is not None and not 3.0 <= float(lc["stepPercent"]) <= 100:
        raise _invalid(
            f"linearConfiguration.stepPercent must be between 3.0 and 100, got {lc['stepPercent']}."
        )
    cc = conf.get("canaryConfiguration") or {}
    if cc.get("canaryPercent") is not None and not 0.1 <= float(cc["canaryPercent"]) <= 100:
        raise _invalid(
            f"canaryConfiguration.canaryPercent must be between 0.1 and 100, got {cc['canaryPercent']}."
        )
    for key, minutes in (
        ("linearConfiguration.stepBakeTimeInMinutes", lc.get("stepBakeTimeInMinutes")),
        ("canaryConfiguration.canaryBakeTimeInMinutes", cc.get("canaryBakeTimeInMinutes")),
    ):
        if minutes is not None and not 0 <= int(minutes) <= 1440:
            raise _invalid(f"{key} must be between 0 and 1440, got {minutes}.")
    for i, hook in enumerate(conf.get("lifecycleHooks") or []):
        where = f"deploymentConfiguration.lifecycleHooks[{i}]"
        target_type = hook.get("targetType") or "AWS_LAMBDA"
        if target_type not in ("AWS_LAMBDA", "PAUSE"):
            raise _invalid(f"{where}.targetType must be AWS_LAMBDA or PAUSE, got {target_type}.")
        if target_type == "AWS_LAMBDA" and not hook.get("hookTargetArn"):
            raise _invalid(f"{where}.hookTargetArn is required for an AWS_LAMBDA hook.")
        stages = hook.get("lifecycleStages") or []
        if not stages:
            raise _invalid(f"{where}.lifecycleStages must name at least one stage.")
        for stage in stages:
            if stage not in DEPLOYMENT_STAGES_ALLOWED:
                raise _invalid(
                    f"{where}.lifecycleStages: {stage} is not a hookable stage ({', '.join(bg.HOOK_STAGES)})."
                )
            if target_type == "PAUSE" and stage in bg.LAMBDA_ONLY_STAGES:
                code = os.environ.get("ASTROLENS_ECS_PAUSE_HOOK_ERROR", "InvalidParameterException")
                raise EcsError(
                    code, f"{where}: a PAUSE hook cannot run at {stage}; only AWS_LAMBDA hooks can."
                )
        timeout = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes")
        if timeout is not None and not 1 <= int(timeout) <= 20160:
            raise _invalid(
                f"{where}.timeoutConfiguration.timeoutInMinutes must be between 1 and 20160, got {timeout}."
            )
    for i, lb in enumerate(load_balancers or []):
        adv = lb.get("advancedConfiguration")
        where = f"loadBalancers[{i}]"
        if not adv:
            raise _invalid(
                f"{where}.advancedConfiguration is required for a {strategy} deployment behind a load balancer."
            )
        for key in ("alternateTargetGroupArn", "productionListenerRule"):
            if not adv.get(key):
                raise _invalid(
                    f"{where}.advancedConfiguration.{key} is required for a {strategy} deployment."
                )
        if adv["alternateTargetGroupArn"] == lb.get("targetGroupArn"):
            raise _invalid(f"{where}: alternateTargetGroupArn must differ from targetGroupArn.")


# --------------------------------------------------------------------------
# backend patches


def _patch_create_service(original: Callable[..., Service]) -> Callable[..., Service]:
    signature = inspect.signature(original)

    def create_service(
        self: EC2ContainerServiceBackend,
        *args: Any,
        deployment_configuration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Service:
        bound = signature.bind(self, *args, **kwargs)
        validate(
            deployment_configuration,
            bound.arguments.get("load_balancers"),
            bound.arguments.get("deployment_controller"),
        )
        service = original(self, *args, **kwargs)
        if deployment_configuration is not None:
            service.deployment_configuration = deployment_configuration
        if bg.is_blue_green(service):
            with LOCK:
                bg.state_of(service)
                bg.refresh_service_view(service)
        return service

    return create_service


def _patch_update_service(original: Callable[..., Service]) -> Callable[..., Service]:
    def update_service(self: EC2ContainerServiceBackend, service_properties: dict[str, Any]) -> Service:
        props = dict(service_properties)  # moto pops from it
        service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
        controller = props.get("deployment_controller") or service.deployment_controller
        conf = (
            props.get("deployment_configuration") or getattr(service, "deployment_configuration", None) or {}
        )
        if (controller or {}).get("type", "ECS") != "ECS" or conf.get(
            "strategy"
        ) not in bg.BLUE_GREEN_STRATEGIES:
            return original(self, service_properties)
        validate(conf, props.get("load_balancers") or service.load_balancers, controller)
        with LOCK:
            state = bg.state_of(
                service
            )  # before moto changes the task definition: that is the current revision
            before = service.task_definition
            force = bool(props.get("force_new_deployment"))
            requested = props.get("task_definition")
            result = original(self, service_properties)
            if requested:
                # moto stores what was sent ("family", "family:3"); AWS answers with the ARN
                result.task_definition = self.describe_task_definition(requested).arn
            if result.task_definition and (result.task_definition != before or force):
                ecs_worker.start_deployment(result)
            else:
                if (
                    props.get("desired_count") is not None
                    and state.production is not None
                    and state.in_flight() is None
                ):
                    state.production.requested = int(props["desired_count"])  # a scale change, no deployment
                bg.refresh_service_view(result)
            return result

    return update_service


def _patch_reset(
    original: Callable[[EC2ContainerServiceBackend], None],
) -> Callable[[EC2ContainerServiceBackend], None]:
    def reset(self: EC2ContainerServiceBackend) -> None:
        # moto forgets the services; their containers and workers must not outlive them
        for service in list(getattr(self, "services", {}).values()):
            ecs_worker.shutdown_service(service)
        original(self)

    return reset


# --------------------------------------------------------------------------
# CloudFormation: AWS::ECS::Service properties moto drops


def _cfn_to_api(value: Any, key: str = "") -> Any:
    """PascalCase CloudFormation properties -> the API's camelCase, keeping JSON documents as written."""
    if key == "hookDetails":
        return value
    if isinstance(value, dict):
        return {pascal_to_camelcase(k): _cfn_to_api(v, pascal_to_camelcase(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_cfn_to_api(v, key) for v in value]
    if key in (
        "containerPort",
        "bakeTimeInMinutes",
        "maximumPercent",
        "minimumHealthyPercent",
        "stepBakeTimeInMinutes",
        "canaryBakeTimeInMinutes",
        "timeoutInMinutes",
    ) and isinstance(value, str):
        return int(value)
    if key in ("stepPercent", "canaryPercent") and isinstance(value, str):
        return float(value)
    if key in ("enable", "rollback") and isinstance(value, str):
        return value.lower() == "true"
    return value


def _cfn_service_args(properties: dict[str, Any]) -> dict[str, Any]:
    cluster = properties.get("Cluster", "default")
    cluster = cluster.name if isinstance(cluster, ecs_models.Cluster) else cluster
    td = properties.get("TaskDefinition")
    td = td.arn if isinstance(td, ecs_models.TaskDefinition) else td
    desired = properties.get("DesiredCount")
    args = {
        "cluster": cluster,
        "task_definition": td,
        "desired_count": int(desired) if desired is not None else None,
        "load_balancers": _cfn_to_api(properties.get("LoadBalancers")),
        "deployment_controller": _cfn_to_api(properties.get("DeploymentController")),
        "deployment_configuration": _cfn_to_api(properties.get("DeploymentConfiguration")),
        "network_configuration": _cfn_to_api(properties.get("NetworkConfiguration")),
        "launch_type": properties.get("LaunchType"),
        "platform_version": properties.get("PlatformVersion"),
    }
    nc = args["network_configuration"]
    if nc and "awsvpcConfiguration" in nc:
        nc["awsvpcConfiguration"].setdefault("securityGroups", [])
    return args


@classmethod  # type: ignore[misc]
def _service_create_from_cfn(
    cls: type[Service],
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Service:
    args = _cfn_service_args(cloudformation_json["Properties"])
    backend = ecs_backends[account_id][region_name]
    create = dict(
        task_definition_str=args["task_definition"],
        load_balancers=args["load_balancers"],
        deployment_controller=args["deployment_controller"],
        launch_type=args["launch_type"],
        platform_version=args["platform_version"],
        deployment_configuration=args["deployment_configuration"],
    )
    try:
        return backend.create_service(
            args["cluster"],
            resource_name,
            args["desired_count"],
            network_configuration=args["network_configuration"],
            **create,
        )
    except InvalidParameterException as e:
        if args["network_configuration"] and "Error retrieving" in e.message:
            # moto checks subnets against its EC2; a template naming subnets made
            # elsewhere would fail here though it deploys on AWS (moto dropped it before).
            log.warning("AWS::ECS::Service %s: network configuration ignored: %s", resource_name, e.message)
            return backend.create_service(args["cluster"], resource_name, args["desired_count"], **create)
        raise


@classmethod  # type: ignore[misc]
def _service_update_from_cfn(
    cls: type[Service],
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Service:
    args = _cfn_service_args(cloudformation_json["Properties"])
    backend = ecs_backends[account_id][region_name]
    cluster_arn = ecs_models.Cluster(args["cluster"], account_id, region_name).arn
    if original_resource.cluster_arn != cluster_arn:
        # a replacement, as moto does it
        backend.delete_service(original_resource.cluster_name, original_resource.name, force=True)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )
    update = {
        "cluster": args["cluster"],
        "service": original_resource.name,
        "task_definition": args["task_definition"],
        "desired_count": args["desired_count"],
        "load_balancers": args["load_balancers"],
        "deployment_configuration": args["deployment_configuration"],
    }
    return backend.update_service(
        {k: v for k, v in update.items() if v is not None or k in ("cluster", "service")}
    )


@classmethod  # type: ignore[misc]
def _task_definition_update_from_cfn(
    cls: type[ecs_models.TaskDefinition],
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """A changed AWS::ECS::TaskDefinition registers a new revision, converted like moto's create path.

    moto calls this only when the resource's template changed. Its own version
    registers the PascalCase template keys as they are (a container without
    "image") and deregisters the old revision at once, which a blue/green
    service still runs and may roll back to; AWS deregisters it at stack cleanup.
    """
    return cls.create_from_cloudformation_json(
        new_resource_name, cloudformation_json, account_id, region_name
    )


# --------------------------------------------------------------------------
# API actions


def _all_services(response: EC2ContainerServiceResponse) -> list[Service]:
    return list(response.ecs_backend.services.values())


def _find_deployment(response: EC2ContainerServiceResponse, arn: str) -> bg.ServiceDeployment | None:
    for service in _all_services(response):
        state = getattr(service, "astrolens_bg", None)
        for dep in state.deployments if state else []:
            if dep.arn == arn:
                return dep
    return None


def _find_revision(response: EC2ContainerServiceResponse, arn: str) -> bg.ServiceRevision | None:
    for service in _all_services(response):
        state = getattr(service, "astrolens_bg", None)
        for rev in state.revisions if state else []:
            if rev.arn == arn:
                return rev
    return None


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def create_service(self: EC2ContainerServiceResponse) -> ActionResult:
    """moto's create_service, plus deploymentConfiguration (moto drops it)."""
    service = self.ecs_backend.create_service(
        self._get_param("cluster", "default"),
        self._get_param("serviceName"),
        self._get_int_param("desiredCount"),
        self._get_param("taskDefinition"),
        self._get_param("loadBalancers"),
        self._get_param("schedulingStrategy"),
        self._get_param("tags"),
        self._get_param("deploymentController"),
        self._get_param("launchType"),
        network_configuration=self._get_param("networkConfiguration"),
        service_registries=self._get_param("serviceRegistries"),
        platform_version=self._get_param("platformVersion"),
        propagate_tags=self._get_param("propagateTags") or "NONE",
        role_arn=self._get_param("role"),
        deployment_configuration=self._get_param("deploymentConfiguration"),
    )
    return ActionResult({"service": service})


def list_service_deployments(self: EC2ContainerServiceResponse) -> ActionResult:
    service = self.ecs_backend._get_service(
        self._get_param("cluster", "default"), self._get_param("service").split("/")[-1]
    )
    statuses = self._get_param("status") or []
    created = self._get_param("createdAt") or {}
    before, after = _timestamp(created.get("before")), _timestamp(created.get("after"))
    max_results = self._get_param("maxResults")
    max_results = 20 if max_results is None else int(max_results)
    if not 1 <= max_results <= 100:
        raise _invalid(f"maxResults must be between 1 and 100, got {max_results}.")
    token = self._get_param("nextToken")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise _invalid(f"nextToken {token!r} is not one this service returned.") from None
    with LOCK:
        state = getattr(service, "astrolens_bg", None)
        deployments = list(reversed(state.deployments)) if state else []  # newest first
        chosen = []
        for dep in deployments:
            created_at = dep.created_at.replace(tzinfo=timezone.utc)
            if statuses and dep.status not in statuses:
                continue
            if before and created_at >= before:
                continue
            if after and created_at <= after:
                continue
            chosen.append(dep.brief())
    page = chosen[offset : offset + max_results]
    result: dict[str, Any] = {"serviceDeployments": page}
    if offset + max_results < len(chosen):
        result["nextToken"] = str(offset + max_results)
    return ActionResult(result)


def _describe_by_arn(self: EC2ContainerServiceResponse, param: str, noun: str, find, key: str) -> ActionResult:
    """Describe* over 1-20 ARNs: the ones found, and a MISSING failure for each other (A8.9)."""
    arns = self._get_param(param) or []
    if not arns or len(arns) > 20:
        raise _invalid(f"{param} must hold 1 to 20 ARNs, got {len(arns)}.")
    found, failures = [], []
    with LOCK:
        for arn in arns:
            item = find(self, arn)
            if item is None:
                failures.append(
                    {"arn": arn, "reason": "MISSING", "detail": f"no {noun} with this ARN in this account and region"}
                )
            else:
                found.append(item.describe())
    return ActionResult({key: found, "failures": failures})


def describe_service_deployments(self: EC2ContainerServiceResponse) -> ActionResult:
    return _describe_by_arn(
        self, "serviceDeploymentArns", "service deployment", _find_deployment, "serviceDeployments"
    )


def stop_service_deployment(self: EC2ContainerServiceResponse) -> ActionResult:
    arn = self._get_param("serviceDeploymentArn")
    stop_type = self._get_param("stopType") or "ROLLBACK"
    if stop_type not in ("ROLLBACK", "ABORT"):
        raise _invalid(f"stopType must be ROLLBACK or ABORT, got {stop_type}.")
    with LOCK:
        dep = _find_deployment(self, arn)
        if dep is None:
            raise EcsError("ServiceDeploymentNotFoundException", f"Service deployment {arn} not found.")
        if dep.status not in ("PENDING", "IN_PROGRESS"):
            code = os.environ.get("ASTROLENS_ECS_STOP_FINISHED_ERROR", "ConflictException")
            raise EcsError(code, f"Service deployment {arn} is {dep.status} and cannot be stopped.")
        dep.interrupt = stop_type
        if stop_type == "ROLLBACK":
            dep.status = "ROLLBACK_REQUESTED"
        else:
            dep.status = "STOP_REQUESTED"
        dep.status_reason = f"StopServiceDeployment (stopType {stop_type}) requested"
        dep.updated_at = utcnow()
        bg.add_event(
            dep.service, f"service deployment {dep.id}: StopServiceDeployment ({stop_type}) requested."
        )
        bg.refresh_service_view(dep.service)
        dep.wake.set()
    return ActionResult({"serviceDeploymentArn": arn})


def continue_service_deployment(self: EC2ContainerServiceResponse) -> ActionResult:
    arn = self._get_param("serviceDeploymentArn")
    hook_id = self._get_param("hookId")
    action = self._get_param("action") or "CONTINUE"
    if action not in ("CONTINUE", "ROLLBACK"):
        raise _invalid(f"action must be CONTINUE or ROLLBACK, got {action}.")
    with LOCK:
        dep = _find_deployment(self, arn)
        if dep is None:
            raise EcsError("ServiceDeploymentNotFoundException", f"Service deployment {arn} not found.")
        waiting = [h for h in dep.hook_details if h.get("status") == "AWAITING_ACTION"]
        if not any(h["hookId"] == hook_id for h in waiting):
            ids = ", ".join(h["hookId"] for h in waiting) or "none"
            raise _invalid(
                f"hook {hook_id} of service deployment {arn} is not awaiting action (awaiting: {ids})."
            )
        dep.pause_actions[hook_id] = action
        dep.wake.set()
    return ActionResult({"serviceDeploymentArn": arn})


def describe_service_revisions(self: EC2ContainerServiceResponse) -> ActionResult:
    return _describe_by_arn(self, "serviceRevisionArns", "service revision", _find_revision, "serviceRevisions")


# --------------------------------------------------------------------------

_installed = False


def install() -> None:
    """Patch moto's ECS. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    Backend = EC2ContainerServiceBackend
    Backend.create_service = _patch_create_service(Backend.create_service)  # type: ignore[method-assign]
    Backend.update_service = _patch_update_service(Backend.update_service)  # type: ignore[method-assign]
    Backend.reset = _patch_reset(Backend.reset)  # type: ignore[method-assign]
    Service.create_from_cloudformation_json = _service_create_from_cfn  # type: ignore[method-assign,assignment]
    Service.update_from_cloudformation_json = _service_update_from_cfn  # type: ignore[method-assign,assignment]
    ecs_models.TaskDefinition.update_from_cloudformation_json = _task_definition_update_from_cfn  # type: ignore[method-assign,assignment]
    Response = EC2ContainerServiceResponse
    Response.create_service = create_service  # type: ignore[method-assign]
    Response.list_service_deployments = list_service_deployments  # type: ignore[attr-defined]
    Response.describe_service_deployments = describe_service_deployments  # type: ignore[attr-defined]
    Response.stop_service_deployment = stop_service_deployment  # type: ignore[attr-defined]
    Response.continue_service_deployment = continue_service_deployment  # type: ignore[attr-defined]
    Response.describe_service_revisions = describe_service_revisions  # type: ignore[attr-defined]
