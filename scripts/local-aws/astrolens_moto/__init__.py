"""astrolens_moto: moto (server mode) plus the parts of AWS that moto lacks.

moto records API calls faithfully but stops short where a release needs AWS to
*do* something. This package loads small extensions into the same process as
moto's server, so they can read and write moto's backends directly. One module
per AWS service; each has an ``install(...)`` that patches moto before the
server starts.

Modelled now:
  ecr  -- ECR's API and its registry are one store, as on AWS: the local OCI
          registry (Debian's ``docker-registry``) holds the images, and
          DescribeImages / BatchGetImage / ListImages mirror what it holds
          (exact manifest digests, tags, media type, size). GetAuthorizationToken
          and repositoryUri point at that registry. PutImage on a missing
          repository answers RepositoryNotFoundException instead of a 500.
  dataplane, alb -- what runs: an image from the local registry runs as a
          host process (its WORKDIR extracted once per digest under
          ``<state>/runtime/images``, its Node.js entry run by the host's node,
          health-checked, stopped with SIGTERM then SIGKILL, all stopped at
          shutdown); the control planes call ``dataplane.start_instance``.
          Every HTTP listener of moto's application load balancers is served on
          127.0.0.1 (port >= 1024 as is, else + ASTROLENS_ALB_PORT_OFFSET,
          default 10000), routing by rule priority, path/host/header/method/
          query/source-ip conditions and forward weights, read from moto's
          state on every request; no target -> 503.

  ecs  -- ECS built-in BLUE_GREEN/LINEAR/CANARY service deployments move through
          AWS's lifecycle stages (ecs.py, ecs_deployment.py, ecs_worker.py):
          service revisions, Lambda and PAUSE lifecycle hooks, listener-rule
          weight shifts and containers through the data plane, bake time,
          CloudWatch alarm rollback, List/Describe/Stop/ContinueServiceDeployment,
          DescribeServiceRevisions; CloudFormation AWS::ECS::Service keeps
          deploymentConfiguration and advancedConfiguration.

  lambda_runtime -- Invoke runs ``nodejs*`` functions for real with the host's
          node (code unpacked once per CodeSha256, ESM or CJS handler, context,
          Environment + AWS_ENDPOINT_URL to this server, Timeout -> the
          "Task timed out" error, Unhandled errors, logs to CloudWatch Logs and
          X-Amz-Log-Result); ``lambda_runtime.invoke(...)`` for other modules.
  sagemaker -- UpdateEndpoint with deployment guardrails (ALL_AT_ONCE/CANARY/
          LINEAR steps, bakes, alarm auto-rollback, execution timeout) ending
          InService on the new config or, rolled back, on the old one with a
          FailureReason; PendingDeploymentSummary, LastDeploymentConfig,
          RetainDeploymentConfig. Endpoints serve: variants run through the
          data plane (sagemaker_serving.py) and InvokeEndpoint forwards to
          /invocations by the traffic split. CloudFormation SageMaker
          resources keep explicit names.
          Fault injection: POST /astrolens-api/sagemaker/fail-next-update.

Not modelled (yet, or on purpose):
  - ECR writes through the API (PutImage, BatchDeleteImage) are not copied to
    the registry; only registry -> API is synchronised, on read.
  - Untagged images appear only once asked for by digest (the registry API has
    no way to list untagged manifests); push time is when the extension first
    saw the image; tag immutability is not enforced on pushes (the registry
    accepts them; a warning is logged when an IMMUTABLE tag moved).
  - No registry authentication, replication, lifecycle policies or scanning.
  - Instances: no container isolation (USER, limits, network namespace),
    only Node.js entries, the image's HEALTHCHECK is not run. ALB: no TLS,
    no target health checks (every registered target gets traffic), no
    draining, stickiness, redirects or authentication; bodies are buffered.
  - Alarm evaluation: alarms are read (SetAlarmState), never evaluated.
  - Lambda: warm sandboxes, layers, memory limits, concurrency, async
    retries; non-Node runtimes keep moto's Docker-based Invoke.
  - SageMaker: RollingUpdatePolicy, Creating/Failed endpoints, instance
    counts (one process per variant), serverless/async/shadow variants.
  - ECS: rolling deployments, task objects for blue/green revisions, the
    circuit breaker's retries, stage/deployment time limits (see ecs.py).
"""

from __future__ import annotations

__all__ = ["install"]


def install(*, registry_url: str, state_dir: str | None = None) -> None:
    """Patch moto with every extension. Call once, before the server starts."""
    # Imported here, not at module level, so `python -m astrolens_moto` can
    # check its arguments and port before paying for importing moto.
    from . import ecr

    ecr.install(registry_url=registry_url)

    # Data plane: images run as local processes; ELBv2 listeners serve HTTP.
    # state_dir None: ASTROLENS_STATE_DIR, else .local under the cwd.
    from . import dataplane

    dataplane.install(registry_url=registry_url, state_dir=state_dir)

    # Lambda (Node.js functions run as subprocesses) and SageMaker (UpdateEndpoint
    # guardrails, endpoints served through dataplane); both find the state dir
    # through ASTROLENS_STATE_DIR, which __main__ sets.
    from . import lambda_runtime, sagemaker

    lambda_runtime.install()
    sagemaker.install()

    # ECS blue/green service deployments (stages, hooks, alarms, rollback); runs
    # containers through dataplane and hooks through lambda_runtime.
    from . import ecs

    ecs.install()
