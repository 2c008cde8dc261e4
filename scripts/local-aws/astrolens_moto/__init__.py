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

Not modelled (yet, or on purpose):
  - ECR writes through the API (PutImage, BatchDeleteImage) are not copied to
    the registry; only registry -> API is synchronised, on read.
  - Untagged images appear only once asked for by digest (the registry API has
    no way to list untagged manifests); push time is when the extension first
    saw the image; tag immutability is not enforced on pushes (the registry
    accepts them; a warning is logged when an IMMUTABLE tag moved).
  - No registry authentication, replication, lifecycle policies or scanning.
  - ECS deployments, SageMaker UpdateEndpoint, alarm evaluation, Lambda
    execution: planned as further modules (ecs.py, sagemaker.py, ...).
"""

from __future__ import annotations

__all__ = ["install"]


def install(*, registry_url: str) -> None:
    """Patch moto with every extension. Call once, before the server starts."""
    # Imported here, not at module level, so `python -m astrolens_moto` can
    # check its arguments and port before paying for importing moto.
    from . import ecr

    ecr.install(registry_url=registry_url)
