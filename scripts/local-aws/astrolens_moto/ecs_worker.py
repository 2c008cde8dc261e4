"""ECS blue/green: the worker thread that moves one service deployment through its stages.

One daemon thread per deployment walks the lifecycle stages of AWS-BEHAVIOUR.md
A2: containers through ``dataplane``, hooks through ``lambda_runtime``, listener
weights and alarms through ``ecs_deployment``'s helpers on moto's backends.
Failures surface as exceptions (_Rollback, _Stop, _Superseded) that ``run`` turns
into the end states of A5, with a reason a person can act on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from moto.core.utils import utcnow
from moto.elbv2.models import elbv2_backends

from . import clock
from .ecs_deployment import (
    HOOK_FAILURE_TEXT,
    LOCK,
    FINISHED,
    STAGE_ORDER,
    Route,
    ServiceDeployment,
    ServiceRevision,
    TrafficError,
    _random_id,
    add_event,
    alarm_monitor_from,
    alarm_poll_seconds,
    alarms_in_alarm,
    default_callback_delay,
    ecs_backend_of,
    hook_failure_mode,
    new_revision,
    reconcile_on_supersede,
    refresh_service_view,
    rule_weights,
    set_rule_weights,
    stage_seconds,
    state_of,
    task_start_timeout,
)

log = logging.getLogger("astrolens_moto.ecs")

# --------------------------------------------------------------------------
# the worker


class _Rollback(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Superseded(Exception):
    pass


class _HookFailure(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _container_for(td: Any, name: str | None) -> dict[str, Any]:
    defs = td.container_definitions
    if name:
        for c in defs:
            if c.get("name") == name:
                return c
    return next((c for c in defs if c.get("essential", True)), defs[0])


_HEALTH_URL = re.compile(r"https?://[^/\s'\"]+(/[^\s'\"|;&)]*)")


def health_path(container: dict[str, Any], tg: Any) -> str:
    """The path the data plane waits on: the container's own health check URL,
    else the target group's HealthCheckPath, else ``/ping`` (SageMaker's convention)."""
    command = " ".join((container.get("healthCheck") or {}).get("command") or [])
    m = _HEALTH_URL.search(command)
    if m:
        return m.group(1)
    if tg is not None and getattr(tg, "health_check_path", None):
        return tg.health_check_path
    return "/ping"


class Worker:
    """Moves one deployment through the stages. Runs in its own daemon thread."""

    def __init__(self, dep: ServiceDeployment, previous: ServiceDeployment | None):
        self.dep = dep
        self.previous = previous
        self.service = dep.service
        self.account = dep.service._account_id
        self.region = dep.service.region_name
        self.routes: list[Route] = []
        self.monitoring = False
        self.test_shifted = False
        self.prod_shifted = False
        self.blue: ServiceRevision | None = None
        self.conf = dep.deployment_configuration
        self.reported_missing_alarms = False

    # ------------------------------------------------------------ helpers

    def _touch(self) -> None:
        self.dep.updated_at = utcnow()
        refresh_service_view(self.service)

    def _event(self, message: str) -> None:
        with LOCK:
            add_event(self.service, message)

    def _checkpoint(self) -> None:
        dep = self.dep
        if dep.interrupt == "RESET":
            raise _Stop("the local AWS was reset")
        if dep.interrupt == "SUPERSEDED":
            raise _Superseded()
        if dep.interrupt == "ROLLBACK":
            raise _Rollback(
                f"service deployment {dep.id} was stopped by StopServiceDeployment (stopType ROLLBACK)"
            )
        if dep.interrupt == "ABORT":
            raise _Stop(f"service deployment {dep.id} was stopped by StopServiceDeployment (stopType ABORT)")
        if self.monitoring:
            self._check_alarms()

    def _check_alarms(self) -> None:
        alarms = self.conf.get("alarms") or {}
        names = alarms.get("alarmNames") or []
        firing, missing = alarms_in_alarm(self.account, self.region, names)
        if missing and not self.reported_missing_alarms:
            self.reported_missing_alarms = True
            self._event(
                f"service deployment {self.dep.id}: alarm(s) {missing} do not exist in CloudWatch; they cannot trigger a rollback."
            )
        if not firing:
            return
        with LOCK:
            self.dep.triggered_alarms = sorted(set(self.dep.triggered_alarms) | set(firing))
            self.dep.alarm_status = "TRIGGERED"
            self._touch()
        reason = (
            f"service deployment {self.dep.id} failed: alarm(s) {', '.join(firing)} in ALARM state "
            f"during {self.dep.lifecycle_stage}"
        )
        if alarms.get("rollback"):
            raise _Rollback(reason + "; rolling back")
        raise _Stop(reason + "; rollback is off, so the deployment stops where it is")

    def _wait(self, modelled_seconds: float) -> None:
        """Waits modelled time; wakes for StopServiceDeployment/UpdateService and reads alarms every poll."""
        deadline = time.monotonic() + clock.scaled(modelled_seconds)
        poll = max(clock.scaled(alarm_poll_seconds()), 0.01)
        while True:
            self.dep.wake.clear()
            self._checkpoint()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.dep.wake.wait(min(left, poll))

    def _enter(self, stage: str) -> None:
        with LOCK:
            self.dep.lifecycle_stage = stage
            self.dep.hook_details = []
            if (
                not self.monitoring
                and self.dep.alarm_status == "MONITORING"
                and STAGE_ORDER.index(stage) >= STAGE_ORDER.index(alarm_monitor_from())
            ):
                self.monitoring = True
            self._touch()
        log.info("%s: %s", self.dep.arn, stage)
        self._checkpoint()

    def _pace(self) -> None:
        self._wait(stage_seconds())

    def _weights(self, green_pct: float) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.blue is not None:
            out[self.blue.arn] = float(100 - green_pct)
        out[self.dep.target.arn] = float(green_pct)
        return out

    # ------------------------------------------------------------ data plane

    def _start(self, rev: ServiceRevision, tg_arns: list[str], role: str) -> str | None:
        """Start rev's container and register it in tg_arns; None, or why it could not start."""
        backend = ecs_backend_of(self.service)
        lb = (rev.load_balancers or [{}])[0]
        try:
            td = backend.describe_task_definition(rev.task_definition)
            container = _container_for(td, lb.get("containerName"))
        except Exception as e:  # noqa: BLE001 - moto raises several kinds here
            return f"task definition {rev.task_definition} cannot be read: {e}"
        elbv2 = elbv2_backends[self.account][self.region]
        tg = elbv2.target_groups.get(tg_arns[0]) if tg_arns else None
        env = {e["name"]: e.get("value", "") for e in container.get("environment") or [] if "name" in e}
        image = container.get("image")
        try:
            from . import dataplane
        except ImportError as e:
            return f"the local data plane is not installed (astrolens_moto.dataplane: {e})"
        label = f"ecs/{self.service.cluster_name}/{self.service.name}/{rev.digits}"
        try:
            instance = dataplane.start_instance(
                image, env, label, health_path=health_path(container, tg), timeout=task_start_timeout()
            )
        except (
            Exception
        ) as e:  # dataplane.InstanceError carries the reason; anything else is a bug worth showing
            reason = getattr(e, "reason", None) or str(e) or type(e).__name__
            with LOCK:
                rev.start_error = f"container {container.get('name')} (image {image}) did not start: {reason}"
                rev.updated_at = utcnow()
                self._touch()
            return rev.start_error
        with LOCK:
            rev.instance = instance
            rev.start_error = None
            rev.updated_at = utcnow()
            self._touch()
        for arn in tg_arns:
            try:
                elbv2.register_targets(arn, [{"Id": "127.0.0.1", "Port": instance.port}])
                rev.target_groups.append(arn)
            except Exception as e:  # noqa: BLE001
                return f"could not register 127.0.0.1:{instance.port} in target group {arn}: {e}"
        self._event(
            f"has started 1 task for the {role} revision {rev.digits} ({_td_name(rev.task_definition)}) "
            f"at 127.0.0.1:{instance.port}, standing in for {rev.requested} task(s)."
        )
        return None

    def _stop_revision(self, rev: ServiceRevision, why: str) -> None:
        elbv2 = elbv2_backends[self.account][self.region]
        instance = rev.instance
        for arn in list(rev.target_groups):
            try:
                if instance is not None:
                    elbv2.deregister_targets(arn, [{"Id": "127.0.0.1", "Port": instance.port}])
            except Exception:  # noqa: BLE001 - already gone (deleted target group, reset)
                pass
        rev.target_groups = []
        stop_instance(instance)
        with LOCK:
            rev.instance = None
            rev.requested = 0
            rev.updated_at = utcnow()
            self._touch()
        if instance is not None:
            self._event(
                f"has stopped the task of revision {rev.digits} ({_td_name(rev.task_definition)}): {why}."
            )

    # ------------------------------------------------------------ hooks

    def _hooks(self, stage: str) -> list[dict[str, Any]]:
        return [h for h in self.conf.get("lifecycleHooks") or [] if stage in (h.get("lifecycleStages") or [])]

    def _run_hooks(self, stage: str, *, reversed_weights: bool = False) -> None:
        """Run the stage's hooks in order; raise _Rollback/_Stop on failure (unless rolling back)."""
        hooks = self._hooks(stage)
        if not hooks:
            return
        with LOCK:
            self.dep.hook_details = [
                {
                    "hookId": _random_id(12),
                    "targetType": h.get("targetType") or "AWS_LAMBDA",
                    "targetArn": h.get("hookTargetArn"),
                    "status": "IN_PROGRESS",
                    "timeoutAction": (h.get("timeoutConfiguration") or {}).get("action") or "ROLLBACK",
                }
                for h in hooks
            ]
            details = list(self.dep.hook_details)
            self._touch()
        for hook, detail in zip(hooks, details, strict=True):
            try:
                if detail["targetType"] == "PAUSE":
                    self._run_pause_hook(stage, hook, detail)
                else:
                    self._run_lambda_hook(stage, hook, detail, reversed_weights)
            except _HookFailure as failure:
                if reversed_weights:
                    # Already rolling back: there is no second rollback; say so and go on.
                    self._event(f"service deployment {self.dep.id}: during rollback, {failure.reason}")
                    continue
                reason = f"{HOOK_FAILURE_TEXT}: {failure.reason}"
                self._event(reason)
                if hook_failure_mode() == "stop":
                    raise _Stop(reason) from None
                raise _Rollback(reason) from None

    def _timeout_minutes(self, hook: dict[str, Any]) -> float:
        return float((hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes") or 1440)

    def _set_hook_status(self, detail: dict[str, Any], status: str) -> None:
        with LOCK:
            detail["status"] = status
            self._touch()

    def _hook_failed(self, stage: str, detail: dict[str, Any], why: str, status: str = "FAILED") -> None:
        self._set_hook_status(detail, status)
        raise _HookFailure(f"lifecycle hook {detail['targetArn'] or detail['hookId']} at {stage} {why}")

    def _run_lambda_hook(
        self, stage: str, hook: dict[str, Any], detail: dict[str, Any], reversed_weights: bool
    ) -> None:
        from . import lambda_runtime  # the real runtime, never a copy: hooks run as Node processes

        target = hook.get("hookTargetArn")
        execution_id = str(uuid.uuid4())
        hook_details = (
            dict(hook.get("hookDetails") or {})
            if isinstance(hook.get("hookDetails"), dict)
            else hook.get("hookDetails")
        )
        timeout = self._timeout_minutes(hook) * 60
        started = time.monotonic()
        with LOCK:
            detail["expiresAt"] = utcnow() + timedelta(seconds=clock.scaled(timeout))
        while True:
            test_w: dict[str, float] = {}
            prod_w: dict[str, float] = {}
            if stage == "TEST_TRAFFIC_SHIFT":
                test_w = self._weights(0 if reversed_weights else 100)
            if stage == "PRODUCTION_TRAFFIC_SHIFT":
                prod_w = dict(self.dep.prod_weights)
            event: dict[str, Any] = {
                "executionId": execution_id,
                "lifecycleStage": stage,
                "resourceArn": self.dep.arn,
                "executionDetails": {
                    "serviceArn": self.service.arn,
                    "targetServiceRevisionArn": self.dep.target.arn,
                    "testTrafficWeights": test_w,
                    "productionTrafficWeights": prod_w,
                },
            }
            if hook_details is not None:
                event["hookDetails"] = hook_details
            try:
                result = lambda_runtime.invoke(target, event, account_id=self.account, region=self.region)
            except Exception as e:  # noqa: BLE001 - a missing function, a broken runtime: the hook failed
                self._hook_failed(stage, detail, f"could not be invoked: {e}")
            if result.function_error:
                message = result.payload.get("errorMessage") if isinstance(result.payload, dict) else None
                self._hook_failed(
                    stage, detail, f"raised an error ({result.function_error}): {message or result.payload}"
                )
            payload = result.payload if isinstance(result.payload, dict) else {}
            status = payload.get("hookStatus")
            if status == "SUCCEEDED":
                self._set_hook_status(detail, "SUCCEEDED")
                return
            if status == "FAILED":
                self._hook_failed(
                    stage, detail, f"returned hookStatus FAILED ({json.dumps(result.payload)[:500]})"
                )
            if status != "IN_PROGRESS":
                self._hook_failed(
                    stage, detail, f"returned no valid hookStatus (got {json.dumps(result.payload)[:500]})"
                )
            returned = payload.get("hookDetails")
            if isinstance(returned, dict):  # merged into the next event, this hook of this deployment only
                hook_details = {**(hook_details if isinstance(hook_details, dict) else {}), **returned}
            delay = payload.get("callBackDelay")
            delay = (
                float(delay) if isinstance(delay, (int, float)) and delay >= 0 else default_callback_delay()
            )
            modelled_elapsed = (time.monotonic() - started) * clock.time_scale()
            if modelled_elapsed + delay > timeout:
                self._on_hook_timeout(stage, hook, detail)
                return
            if reversed_weights:
                time.sleep(clock.scaled(delay))  # no alarms or stops while rolling back
            else:
                self._wait(delay)

    def _on_hook_timeout(self, stage: str, hook: dict[str, Any], detail: dict[str, Any]) -> None:
        if detail["timeoutAction"] == "CONTINUE":
            self._set_hook_status(detail, "TIMED_OUT")
            self._event(
                f"service deployment {self.dep.id}: lifecycle hook {detail['targetArn'] or detail['hookId']} at {stage} timed out after {self._timeout_minutes(hook):g} minutes; its timeout action is CONTINUE."
            )
            return
        self._hook_failed(
            stage, detail, f"timed out after {self._timeout_minutes(hook):g} minutes", status="TIMED_OUT"
        )

    def _run_pause_hook(self, stage: str, hook: dict[str, Any], detail: dict[str, Any]) -> None:
        timeout = self._timeout_minutes(hook) * 60
        with LOCK:
            detail["status"] = "AWAITING_ACTION"
            detail["expiresAt"] = utcnow() + timedelta(seconds=clock.scaled(timeout))
            self._touch()
        self._event(
            f"service deployment {self.dep.id} is waiting at {stage} for ContinueServiceDeployment "
            f"(hookId {detail['hookId']})."
        )
        deadline = time.monotonic() + clock.scaled(timeout)
        while True:
            action = self.dep.pause_actions.get(detail["hookId"])
            if action == "CONTINUE":
                self._set_hook_status(detail, "SUCCEEDED")
                return
            if action == "ROLLBACK":
                self._set_hook_status(detail, "FAILED")
                raise _Rollback(
                    f"service deployment {self.dep.id}: ContinueServiceDeployment asked for ROLLBACK at {stage}"
                )
            if time.monotonic() >= deadline:
                self._on_hook_timeout(stage, hook, detail)
                return
            self._wait(
                min(alarm_poll_seconds(), max((deadline - time.monotonic()) * clock.time_scale(), 0.001))
            )

    # ------------------------------------------------------------ stages

    def run(self) -> None:
        try:
            if self.previous is not None and self.previous.thread is not None:
                self.previous.thread.join(timeout=300)
            self._run()
        except _Superseded:
            self._finish_stopped(
                f"service deployment {self.dep.id} was replaced by a newer deployment of the service",
                superseded=True,
            )
        except _Stop as s:
            self._finish_stopped(s.reason)
        except _Rollback as r:
            self._roll_back(r.reason)
        except Exception as e:  # noqa: BLE001 - a bug here must still end the deployment, visibly
            log.exception("%s: internal error", self.dep.arn)
            self._roll_back(f"internal error in the local ECS emulator: {type(e).__name__}: {e}")

    def _resolve_routes(self) -> None:
        """Pick blue and green target groups per load balancer from the production rule's weights."""
        routes = []
        for lb in self.dep.target.load_balancers:
            adv = lb.get("advancedConfiguration") or {}
            primary, alternate = lb.get("targetGroupArn"), adv.get("alternateTargetGroupArn")
            if not (adv.get("productionListenerRule") and primary and alternate):
                continue
            try:
                weights = rule_weights(self.account, self.region, adv["productionListenerRule"])
            except TrafficError as e:
                raise _Rollback(f"service deployment {self.dep.id} failed: {e}") from None
            wp, wa = weights.get(primary, 0), weights.get(alternate, 0)
            if wp != wa:
                blue = primary if wp > wa else alternate
            else:  # a tie: where the current revision is registered, else the primary group
                registered = {tg for r in self.dep.sources for tg in r.target_groups}
                blue = alternate if alternate in registered and primary not in registered else primary
            green = alternate if blue == primary else primary
            routes.append(Route(adv["productionListenerRule"], adv.get("testListenerRule"), blue, green))
        self.routes = routes

    def _pick_blue(self) -> ServiceRevision | None:
        blue_tgs = {r.blue_tg for r in self.routes}
        for rev in self.dep.sources:
            if blue_tgs & set(rev.target_groups):
                return rev
        state = state_of(self.service)
        if state.production in self.dep.sources:
            return state.production
        return self.dep.sources[-1] if self.dep.sources else None

    def _shift(self, rule_attr: str, green_pct: int) -> None:
        for route in self.routes:
            rule = getattr(route, rule_attr)
            if not rule:
                continue
            try:
                set_rule_weights(
                    self.account,
                    self.region,
                    rule,
                    {route.blue_tg: 100 - green_pct, route.green_tg: green_pct},
                )
            except TrafficError as e:
                raise _Rollback(f"service deployment {self.dep.id} failed: {e}") from None

    def _production_steps(self) -> list[tuple[float, float]]:
        """(percent to green, modelled bake seconds after the step)."""
        strategy = self.conf.get("strategy")
        if strategy == "LINEAR":
            lc = self.conf.get("linearConfiguration") or {}
            step = float(lc.get("stepPercent") or 10)
            bake = (
                float(lc.get("stepBakeTimeInMinutes") if lc.get("stepBakeTimeInMinutes") is not None else 6)
                * 60
            )
            steps, pct = [], 0.0
            while pct < 100:
                pct = min(100.0, round(pct + step, 1))
                steps.append((pct, 0.0 if pct >= 100 else bake))  # no bake after the last step
            return steps
        if strategy == "CANARY":
            cc = self.conf.get("canaryConfiguration") or {}
            pct = float(cc.get("canaryPercent") or 5)
            bake = (
                float(
                    cc.get("canaryBakeTimeInMinutes") if cc.get("canaryBakeTimeInMinutes") is not None else 10
                )
                * 60
            )
            return [(pct, bake), (100.0, 0.0)] if pct < 100 else [(100.0, 0.0)]
        return [(100.0, 0.0)]

    def _run(self) -> None:
        dep = self.dep
        state = state_of(self.service)
        with LOCK:
            # Sources are read now, after the deployment this one replaces has let go.
            dep.sources = [r for r in state.active if r is not dep.target]
            self._checkpoint()
            dep.status = "IN_PROGRESS"
            dep.started_at = utcnow()
            self._touch()
        self._resolve_routes()
        self.blue = self._pick_blue()
        with LOCK:
            dep.prod_weights = self._weights(0)
            dep.test_weights = self._weights(0)
        if self.blue is not None and self.blue.instance is None:
            # The current revision runs only once a deployment needs it (lazily):
            # the first stack deploy may name a placeholder image that cannot run.
            why = self._start(self.blue, [r.blue_tg for r in self.routes], "current")
            if why:
                self._event(
                    f"could not start the current revision {self.blue.digits}; it keeps serving nothing: {why}"
                )

        if len(dep.sources) > 1 and reconcile_on_supersede():
            self._enter("RECONCILE_SERVICE")
            self._run_hooks("RECONCILE_SERVICE")
            self._shift("production_rule", 0)
            self._shift("test_rule", 0)
            for rev in [r for r in dep.sources if r is not self.blue]:
                self._stop_revision(rev, "reconciling the service to one revision before the new deployment")
                with LOCK:
                    if rev in state.active:
                        state.active.remove(rev)
            with LOCK:
                dep.sources = [self.blue] if self.blue else []
                self._touch()
            self._pace()

        self._enter("PRE_SCALE_UP")
        self._run_hooks("PRE_SCALE_UP")
        self._pace()

        self._enter("SCALE_UP")
        with LOCK:
            dep.target.requested = self.service.desired_count
            if dep.target not in state.active:
                state.active.append(dep.target)
            self._touch()
        why = self._start(dep.target, [r.green_tg for r in self.routes], "new")
        if why:
            with LOCK:
                dep.circuit_breaker_failures += 1
            raise _Rollback(
                f"service deployment {dep.id} failed: the new revision {dep.target.digits} could not start: {why}"
            )
        self._pace()

        self._enter("POST_SCALE_UP")
        self._run_hooks("POST_SCALE_UP")
        self._pace()

        self._enter("TEST_TRAFFIC_SHIFT")
        self._shift("test_rule", 100)
        self.test_shifted = True
        with LOCK:
            dep.test_weights = self._weights(100)
            self._touch()
        if any(r.test_rule for r in self.routes):
            self._event(f"service deployment {dep.id} moved test traffic to revision {dep.target.digits}.")
        self._run_hooks("TEST_TRAFFIC_SHIFT")
        self._pace()

        self._enter("POST_TEST_TRAFFIC_SHIFT")
        self._run_hooks("POST_TEST_TRAFFIC_SHIFT")
        self._pace()

        for pct, bake in self._production_steps():
            self._enter("PRE_PRODUCTION_TRAFFIC_SHIFT")
            self._run_hooks("PRE_PRODUCTION_TRAFFIC_SHIFT")
            self._pace()
            self._enter("PRODUCTION_TRAFFIC_SHIFT")
            self._shift("production_rule", round(pct))
            self.prod_shifted = True
            with LOCK:
                dep.prod_weights = self._weights(pct)
                self._touch()
            self._event(
                f"service deployment {dep.id} moved {pct:g}% of production traffic to revision {dep.target.digits}."
            )
            self._run_hooks("PRODUCTION_TRAFFIC_SHIFT")
            self._pace()
            if bake:
                self._wait(bake)

        self._enter("POST_PRODUCTION_TRAFFIC_SHIFT")
        self._run_hooks("POST_PRODUCTION_TRAFFIC_SHIFT")
        self._pace()

        self._enter("BAKE_TIME")
        self._wait(float(self.conf.get("bakeTimeInMinutes") or 0) * 60)
        self._checkpoint()
        with LOCK:
            self.monitoring = False
            if dep.alarm_status == "MONITORING":
                dep.alarm_status = "MONITORING_COMPLETE"
            self._touch()

        self._enter("CLEAN_UP")
        for rev in dep.sources:
            self._stop_revision(rev, f"service deployment {dep.id} completed")
        with LOCK:
            state.active = [dep.target]
            state.production = dep.target
            dep.status = "SUCCESSFUL"
            dep.status_reason = "Service deployment completed successfully."
            dep.finished_at = utcnow()
            self._touch()
        self._event(
            f"service deployment {dep.id} completed: revision {dep.target.digits} ({_td_name(dep.target.task_definition)}) serves all traffic."
        )
        self._event("has reached a steady state.")

    # ------------------------------------------------------------ endings

    def _roll_back(self, reason: str) -> None:
        dep = self.dep
        state = state_of(self.service)
        with LOCK:
            dep.status = "ROLLBACK_IN_PROGRESS"
            dep.status_reason = reason
            self.monitoring = False
            dep.rollback = {
                "reason": reason,
                "startedAt": utcnow(),
                "serviceRevisionArn": (self.blue or state.production or dep.target).arn,
            }
            self._touch()
        self._event(f"service deployment {dep.id} is rolling back: {reason}")
        failed: list[str] = []
        # Weights first (blue still runs, so this is near-instant on AWS), then
        # the traffic-shift hooks again with the weights reversed.
        for attr, shifted in (("test_rule", self.test_shifted), ("production_rule", self.prod_shifted)):
            if not shifted:
                continue
            try:
                self._shift(attr, 0)
            except _Rollback as e:
                failed.append(e.reason)
        with LOCK:
            if self.test_shifted:
                dep.test_weights = self._weights(0)
            if self.prod_shifted:
                dep.prod_weights = self._weights(0)
            self._touch()
        if self.test_shifted:
            self._run_hooks("TEST_TRAFFIC_SHIFT", reversed_weights=True)
        if self.prod_shifted:
            self._run_hooks("PRODUCTION_TRAFFIC_SHIFT", reversed_weights=True)
        self._stop_revision(dep.target, f"service deployment {dep.id} rolled back")
        with LOCK:
            if dep.target in state.active and dep.target is not state.production:
                state.active.remove(dep.target)
            back_to = self.blue or state.production
            if back_to is not None:
                self.service.task_definition = back_to.task_definition
                if back_to not in state.active:
                    state.active.insert(0, back_to)
                state.production = back_to
            dep.finished_at = utcnow()
            if failed:
                dep.status = "ROLLBACK_FAILED"
                dep.status_reason = f"{reason}; the rollback could not restore traffic: {'; '.join(failed)}"
            else:
                dep.status = "ROLLBACK_SUCCESSFUL"
            self._touch()
        if failed:
            self._event(f"service deployment {dep.id} rollback failed: {'; '.join(failed)}")
        elif back_to is not None:
            self._event(
                f"service deployment {dep.id} rolled back to revision {back_to.digits} ({_td_name(back_to.task_definition)})."
            )

    def _finish_stopped(self, reason: str, superseded: bool = False) -> None:
        dep = self.dep
        with LOCK:
            self.monitoring = False
            dep.status = "STOPPED"
            dep.status_reason = reason
            dep.stopped_at = dep.finished_at = utcnow()
            state = state_of(self.service)
            if not superseded and dep.target in state.active:
                # Left where it stands: both revisions may run; the service is on the target.
                state.production = dep.target
            self._touch()
        self._event(reason)


def _td_name(arn: str | None) -> str:
    return (arn or "").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------
# starting and stopping deployments


def start_deployment(service: Any) -> ServiceDeployment:
    """Begin a deployment to the service's current configuration (call under LOCK)."""
    state = state_of(service)
    previous = state.in_flight()
    if previous is not None and previous.status in ("PENDING", "IN_PROGRESS"):
        previous.status = "STOP_REQUESTED"
        previous.status_reason = "a newer deployment of the service was requested (UpdateService)"
        previous.interrupt = "SUPERSEDED"
        previous.updated_at = utcnow()
        previous.wake.set()
    target = new_revision(service)
    state.revisions.append(target)
    dep = ServiceDeployment(service, target, [r for r in state.active])
    state.deployments.append(dep)
    refresh_service_view(service)
    add_event(
        service,
        f"has begun service deployment {dep.id} ({dep.deployment_configuration.get('strategy')}) "
        f"to revision {target.digits} ({_td_name(target.task_definition)}).",
    )
    worker = Worker(dep, previous)
    dep.thread = threading.Thread(target=worker.run, name=f"ecs-deployment-{dep.id}", daemon=True)
    dep.thread.start()
    return dep


def stop_instance(instance: Any) -> None:
    if instance is None:
        return
    try:
        from . import dataplane

        dataplane.stop_instance(instance)
    except Exception as e:  # noqa: BLE001 - stopping is best effort: it may already be gone
        log.warning("stopping instance %s: %s", getattr(instance, "url", instance), e)


def shutdown_service(service: Any) -> None:
    """Stop the workers and processes of one service (moto reset)."""
    state = getattr(service, "astrolens_bg", None)
    if state is None:
        return
    with LOCK:
        for dep in state.deployments:
            if dep.status not in FINISHED:
                dep.interrupt = "RESET"
                dep.wake.set()
    for dep in state.deployments:
        if dep.thread is not None:
            dep.thread.join(timeout=10)
    for rev in state.revisions:
        stop_instance(rev.instance)
        rev.instance = None
