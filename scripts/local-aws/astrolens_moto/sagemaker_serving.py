"""SageMaker endpoints that really serve: the runtime side of ``sagemaker.py``.

Holds what the local AWS keeps beside moto's SageMaker objects (never on them:
every attribute of a FakeEndpoint becomes a DescribeEndpoint field): per endpoint
a blue fleet (the config in service) and, during UpdateEndpoint, a green one, each
with its running instances, and green's traffic share.

* Each variant's model (PrimaryContainer, else the first of Containers: Image and
  Environment) runs as ONE local instance through ``dataplane.start_instance``,
  whatever its instance count, health-checked on GET /ping within
  ``ASTROLENS_SM_HEALTH_TIMEOUT`` real seconds (default 60). Blue starts lazily on
  the first InvokeEndpoint; ``sagemaker.py`` starts green during UpdateEndpoint and
  stops fleets (blue after the final bake, green on rollback, both on
  DeleteEndpoint or moto reset; dataplane stops everything at server exit). An
  instance that died is replaced on the next request.
* ``sagemaker-runtime`` InvokeEndpoint forwards Body, ContentType, Accept and
  CustomAttributes to the instance's POST /invocations and answers with its body,
  Content-Type and ``x-Amzn-Invoked-Production-Variant``. While an update runs, a
  request goes to green with green's current traffic share (canary/linear steps),
  else to blue; within a fleet, variants are chosen by weight, or by TargetVariant.
* Errors as AWS shapes them: a container answering non-2xx is ``ModelError`` (424,
  "Received client|server error (N) from primary with message ..."), an unknown
  endpoint is ``ValidationError`` "Endpoint NAME of account ACCOUNT not found.";
  an instance that cannot start is ``ServiceUnavailable`` (503) saying why.
* ``ASTROLENS_SM_SERVE=0`` turns all of this off: no instances, InvokeEndpoint is
  moto's canned stub, UpdateEndpoint is control plane only.

Not modelled: instance counts and types, the endpoint's CloudWatch logs and
metrics, the 6 MB payload limit, InvokeEndpointAsync/WithResponseStream (moto's).

moto internals used (moto 5.2.5): ``SageMakerModelBackend`` (``endpoint_configs``,
``_models``), ``Model`` (``primary_container``, ``containers``),
``SageMakerRuntimeResponse.invoke_endpoint`` and its ``use_raw_body``.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

import requests
from moto.core.exceptions import ServiceException
from moto.sagemaker.models import FakeEndpoint, Model, SageMakerModelBackend, sagemaker_backends
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

log = logging.getLogger("astrolens_moto.sagemaker")

INVOKE_TIMEOUT = 60.0  # AWS gives a container 60 s to answer /invocations
PING_FAILURE = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)

# One lock for every endpoint's state (here and in sagemaker.py): transitions
# touch the FakeEndpoint, the fleets and the traffic share together, and
# DescribeEndpoint must never see half a transition (nor a dict that grows while
# moto iterates it).
lock = threading.RLock()


# --------------------------------------------------------------------------
# knobs


def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def number(name: str, default: float) -> float:
    raw = os.environ.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


def serving_enabled() -> bool:
    return choice("ASTROLENS_SM_SERVE", "1", ("1", "0")) == "1"


# --------------------------------------------------------------------------
# state kept beside moto's objects (never on them: every attribute of a
# FakeEndpoint becomes a DescribeEndpoint field)


@dataclass
class Fleet:
    """One side of an endpoint: a config's variants and their running instances."""

    config_name: str
    variants: list[dict[str, Any]]
    side: str  # "blue" | "green"
    instances: dict[str, Any] = field(default_factory=dict)  # variant name -> dataplane.Instance
    starting: dict[str, threading.Lock] = field(default_factory=dict)
    retired: bool = False


@dataclass
class Runtime:
    endpoint: FakeEndpoint
    account_id: str
    region: str
    blue: Fleet
    green: Fleet | None = None
    green_share: float = 0.0  # fraction of requests routed to green
    deployment: Any = None  # sagemaker._Deployment while an update runs


runtimes: dict[tuple[str, str, str], Runtime] = {}


class StartError(Exception):
    """A variant's model could not be started or did not pass /ping."""


def endpoint_key(backend: SageMakerModelBackend, name: str) -> tuple[str, str, str]:
    return (backend.account_id, backend.region_name, name)


def runtime_for(backend: SageMakerModelBackend, endpoint: FakeEndpoint) -> Runtime:
    """The endpoint's runtime state, created on first use. Call with lock held."""
    key = endpoint_key(backend, endpoint.endpoint_name)
    rt = runtimes.get(key)
    if rt is not None and rt.endpoint is endpoint:
        return rt
    if rt is not None:  # same name, new endpoint (deleted and created again)
        discard(rt)
    cfg = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    # Snapshot the variants: AWS lets a config be deleted while an endpoint uses it.
    variants = copy.deepcopy(cfg.production_variants) if cfg else []
    rt = Runtime(
        endpoint=endpoint,
        account_id=backend.account_id,
        region=backend.region_name,
        blue=Fleet(endpoint.endpoint_config_name, variants, "blue"),
    )
    runtimes[key] = rt
    return rt


def discard(rt: Runtime) -> None:
    """Stop everything of an endpoint that no longer exists. Call with lock held."""
    if rt.deployment is not None:
        rt.deployment.stop.set()
    fleets = [f for f in (rt.blue, rt.green) if f is not None]
    for f in fleets:
        f.retired = True
    threading.Thread(target=lambda: [stop_fleet(f) for f in fleets], daemon=True).start()


# --------------------------------------------------------------------------
# instances (through dataplane.py)


def _container(backend: SageMakerModelBackend, variant: dict[str, Any]) -> tuple[str, dict[str, str]]:
    model: Model | None = backend._models.get(variant.get("ModelName", ""))
    if model is None:
        raise StartError(f"model {variant.get('ModelName')!r} of variant {variant['VariantName']} does not exist")
    container = model.primary_container or (model.containers[0] if model.containers else {})
    image = container.get("Image")
    if not image:
        raise StartError(f"model {model.model_name} has no container Image")
    env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
    return image, env


def ensure_instance(rt: Runtime, fleet: Fleet, variant: dict[str, Any]) -> Any:
    """The variant's running instance, started if needed (one start at a time per variant)."""
    from . import dataplane

    name = variant["VariantName"]
    with lock:
        starting = fleet.starting.setdefault(name, threading.Lock())
    with starting:
        inst = fleet.instances.get(name)
        if inst is not None and inst.poll() is None:
            return inst
        if inst is not None:
            # It died: AWS replaces an unhealthy instance; so do we, on demand.
            log.warning("instance %s exited (%s); starting a new one", inst.label, inst.poll())
            dataplane.stop_instance(inst, grace=1.0)
        if fleet.retired:
            raise StartError(f"endpoint config {fleet.config_name} no longer serves {rt.endpoint.endpoint_name}")
        backend = sagemaker_backends[rt.account_id][rt.region]
        image, env = _container(backend, variant)
        label = f"sagemaker-{rt.endpoint.endpoint_name}-{fleet.config_name}-{name}"
        timeout = number("ASTROLENS_SM_HEALTH_TIMEOUT", 60)
        try:
            inst = dataplane.start_instance(image, env, label, health_path="/ping", timeout=timeout)
        except dataplane.InstanceError as e:
            raise StartError(str(e).splitlines()[0]) from e
        except RuntimeError as e:  # the data plane was not installed
            raise StartError(f"local data plane unavailable: {e}") from e
        with lock:
            retired = fleet.retired
            if not retired:
                fleet.instances[name] = inst
        if retired:  # the fleet was retired while this instance started
            dataplane.stop_instance(inst, grace=1.0)
            raise StartError(f"endpoint config {fleet.config_name} no longer serves {rt.endpoint.endpoint_name}")
        return inst


def stop_fleet(fleet: Fleet) -> None:
    from . import dataplane

    with lock:
        fleet.retired = True
        instances = list(fleet.instances.values())
        fleet.instances.clear()
    for inst in instances:
        dataplane.stop_instance(inst, grace=5.0)


# --------------------------------------------------------------------------
# sagemaker-runtime InvokeEndpoint




class _RuntimeError(ServiceException):
    pass


class _EndpointNotFound(_RuntimeError):
    code = "ValidationError"


class _ServiceUnavailable(_RuntimeError):
    code = "ServiceUnavailable"


class _ModelError(_RuntimeError):
    code = "ModelError"

    def __init__(self, message: str, status: int, original: str, log_stream_arn: str):
        super().__init__(message)
        self.OriginalStatusCode = status
        self.OriginalMessage = original
        self.LogStreamArn = log_stream_arn


def _pick_variant(fleet: Fleet, target: str | None) -> dict[str, Any] | None:
    if not fleet.variants:
        return None
    if target:
        return next((v for v in fleet.variants if v["VariantName"] == target), None)
    weights = [float(v.get("InitialVariantWeight", 1.0)) for v in fleet.variants]
    if sum(weights) <= 0:
        weights = [1.0] * len(weights)
    return random.choices(fleet.variants, weights=weights)[0]


def invoke_endpoint_action(original: Callable[[SageMakerRuntimeResponse], Any]) -> Callable[[SageMakerRuntimeResponse], Any]:
    def invoke_endpoint(self: SageMakerRuntimeResponse) -> Any:
        if not serving_enabled():
            if isinstance(self.body, bytes):  # moto's stub puts the body in JSON
                self.body = self.body.decode("utf-8", "replace")
            return original(self)
        name = unquote(self.path.split("/")[2])
        backend = sagemaker_backends[self.current_account][self.region]
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        with lock:
            endpoint = backend.endpoints.get(name)
            if endpoint is None:
                raise _EndpointNotFound(f"Endpoint {name} of account {self.current_account} not found.")
            rt = runtime_for(backend, endpoint)
            use_green = rt.green is not None and rt.green_share > 0 and random.random() < rt.green_share
            fleet = rt.green if use_green and rt.green is not None else rt.blue
            variant = _pick_variant(fleet, target)
        if variant is None:
            raise _EndpointNotFound(
                f"Endpoint {name} of account {self.current_account} has no variant {target!r}."
                if target
                else f"Endpoint {name} of account {self.current_account} has no production variants."
            )
        try:
            inst = ensure_instance(rt, fleet, variant)
        except StartError as e:
            raise _ServiceUnavailable(f"The local AWS could not start variant {variant['VariantName']} of endpoint {name}: {e}") from e

        body = self.raw_body if isinstance(self.raw_body, bytes) else (self.raw_body or "").encode()
        headers = {
            "Content-Type": self.headers.get("Content-Type") or "application/octet-stream",
            "Accept": self.headers.get("Accept") or "*/*",
        }
        custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if custom:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom
        region, account = self.region, self.current_account
        log_group = f"/aws/sagemaker/Endpoints/{name}"
        stream_arn = f"arn:aws:logs:{region}:{account}:log-group:{log_group}"
        try:
            r = requests.post(inst.url + "/invocations", data=body, headers=headers, timeout=INVOKE_TIMEOUT)
        except requests.Timeout:
            raise _ModelError(
                "Your invocation timed out while waiting for a response from container primary. Review the latency "
                "metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
                408, "", stream_arn,
            ) from None
        except requests.RequestException as e:
            raise _ServiceUnavailable(f"The local instance of variant {variant['VariantName']} did not answer: {e}") from None
        if not 200 <= r.status_code < 300:
            kind = "client" if r.status_code < 500 else "server"
            text = r.text[:1000]
            raise _ModelError(
                f'Received {kind} error ({r.status_code}) from primary with message "{text}". See '
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={log_group} "
                f"in account {account} for more information.",
                r.status_code, text, stream_arn,
            )
        out = {
            "Content-Type": r.headers.get("Content-Type", "application/json"),
            "x-Amzn-Invoked-Production-Variant": variant["VariantName"],
        }
        if r.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            out["X-Amzn-SageMaker-Custom-Attributes"] = r.headers["X-Amzn-SageMaker-Custom-Attributes"]
        return 200, out, r.content

    invoke_endpoint.__name__ = original.__name__
    return invoke_endpoint


def list_instances() -> list[dict[str, Any]]:
    """The running instances, for GET /astrolens-api/sagemaker/instances."""
    with lock:
        return [
            {
                "account": rt.account_id,
                "region": rt.region,
                "endpoint": rt.endpoint.endpoint_name,
                "config": fleet.config_name,
                "side": fleet.side,
                "variant": variant,
                "url": inst.url,
                "pid": inst.pid,
            }
            for rt in runtimes.values()
            for fleet in (rt.blue, rt.green)
            if fleet is not None
            for variant, inst in fleet.instances.items()
        ]
