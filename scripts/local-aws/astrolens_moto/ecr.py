"""ECR: one store for the control-plane API (moto) and the registry (OCI v2).

On AWS, ``docker push`` to a repositoryUri and ``DescribeImages`` see the same
images. moto has only the API, so locally an OCI distribution registry holds the
images and this module makes moto's ECR API reflect it:

* ``GetAuthorizationToken`` points ``proxyEndpoint`` at the registry and expires
  12 hours from now (moto answers with a fixed 2015 date).
* ``repositoryUri`` is ``<registry host:port>/<name>``, so pushing to it works.
* ``DescribeImages``, ``BatchGetImage`` and ``ListImages`` first pull the named
  repository's state from the registry (tags -> manifests -> digests) into
  moto's backend, then let moto answer. Only repositories that exist in ECR are
  synchronised: on AWS nobody can push to a repository that does not exist.
* ``PutImage`` on a missing repository raises ``RepositoryNotFoundException``
  (moto raises a bare Exception there, which the server turns into an HTML 500).

moto internals used (moto 5.2.5): ``moto.ecr.responses.ECRResponse`` (methods are
dispatched by action name), ``ECRResponse.ecr_backend``,
``moto.ecr.models.ECRBackend._get_repository``, ``Repository.images``/``.uri``,
``moto.ecr.models.Image`` (``image_tags``, ``image_tag``, ``_image_digest``,
``get_image_size_in_bytes``) and ``moto.ecr.exceptions``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from base64 import b64encode
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import urljoin, urlsplit

import requests
from moto.core.responses import ActionResult
from moto.ecr import models as ecr_models
from moto.ecr.exceptions import RepositoryNotFoundException
from moto.ecr.models import Image, Repository
from moto.ecr.responses import ECRResponse

log = logging.getLogger("astrolens_moto.ecr")

# Everything `docker push`, buildah and skopeo push today. Schema 1 is left out:
# ECR itself converts it and nothing in this project produces it.
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
TOKEN_LIFETIME = timedelta(hours=12)  # what AWS documents for ECR tokens
HTTP_TIMEOUT = 5.0

_registry_url: str | None = None
# moto's server is threaded; one sync at a time keeps repo.images consistent
# while a request reads it.
_lock = threading.RLock()


class RegistryUnavailable(Exception):
    """The registry could not be asked (connection refused, timeout, 5xx)."""


@dataclass
class _Manifest:
    digest: str
    body: str
    media_type: str | None
    size: int | None
    tags: list[str] = field(default_factory=list)


class RegistryImage(Image):
    """An ECR image whose bytes live in the registry.

    Differs from moto's Image in the size: moto reports only the config blob's
    size; ECR reports the image's size (layers + config), which the registry
    manifest tells us.
    """

    def __init__(self, repo: Repository, m: _Manifest):
        super().__init__(
            account_id=repo.account_id,
            tag=None,  # type: ignore[arg-type]  # tags are set by the sync
            manifest=m.body,
            repository=repo.name,
            image_manifest_mediatype=m.media_type,
            digest=m.digest,
            registry_id=repo.registry_id,
        )
        self.size = m.size

    def get_image_size_in_bytes(self) -> int | None:
        return self.size


# --------------------------------------------------------------------------
# registry client (OCI distribution v2, no auth: the local registry has none)


def registry_url() -> str:
    if _registry_url is None:
        raise RuntimeError("astrolens_moto.ecr.install() was not called")
    return _registry_url


def registry_host() -> str:
    """host:port of the registry, the prefix of every repositoryUri."""
    return urlsplit(registry_url()).netloc


def _get(path: str, **headers: str) -> requests.Response:
    """GET a path (or a Link-header URL, possibly absolute) on the registry."""
    url = urljoin(registry_url() + "/", path)
    try:
        resp = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException as e:
        raise RegistryUnavailable(f"{url}: {e}") from e
    if resp.status_code >= 500:
        raise RegistryUnavailable(f"{url}: HTTP {resp.status_code}")
    return resp


def list_tags(name: str) -> list[str]:
    """All tags of a registry repository; [] when nothing was ever pushed."""
    tags: list[str] = []
    url = f"/v2/{name}/tags/list"
    while url:
        resp = _get(url)
        if resp.status_code == 404:  # NAME_UNKNOWN: nothing pushed yet
            return []
        resp.raise_for_status()
        tags.extend(resp.json().get("tags") or [])  # "tags": null when all deleted
        nxt = resp.links.get("next", {}).get("url")  # pagination (RFC 5988 Link)
        url = nxt or ""
    return tags


def fetch_manifest(name: str, reference: str) -> _Manifest | None:
    """The manifest for a tag or digest, or None when the registry lacks it."""
    resp = _get(f"/v2/{name}/manifests/{reference}", Accept=MANIFEST_ACCEPT)
    if resp.status_code in (400, 404):  # unknown, or not a valid reference
        return None
    resp.raise_for_status()
    body = resp.content
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    digest = resp.headers.get("Docker-Content-Digest", computed)
    if digest != computed:
        # The digest is the image's identity everywhere downstream (task
        # definitions, endpoint configs), so never mirror one we cannot verify.
        log.warning(
            "registry %s:%s: Docker-Content-Digest %s != sha256 of body %s; skipped",
            name, reference, digest, computed,
        )
        return None
    text = body.decode("utf-8")
    parsed: dict[str, Any] = json.loads(text)
    media_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
    if media_type in (None, "application/json", "application/octet-stream"):
        media_type = parsed.get("mediaType")
    size = None
    if "layers" in parsed:  # an image manifest; an index has "manifests" and no size here
        size = int(parsed.get("config", {}).get("size", 0)) + sum(
            int(layer.get("size", 0)) for layer in parsed["layers"]
        )
    return _Manifest(digest=digest, body=text, media_type=media_type, size=size)


# --------------------------------------------------------------------------
# registry -> moto backend


def _set_tags(image: Image, tags: list[str]) -> None:
    image.image_tags = list(tags)
    # moto's Image keeps one "current" tag beside the list; keep it in step.
    image.image_tag = tags[-1] if tags else None  # type: ignore[assignment]


def sync_repository(repo: Repository, wanted_digests: Iterable[str] = ()) -> None:
    """Make ``repo.images`` reflect what the registry holds for ``repo.name``.

    All registry reads happen before the first change, so an unreachable
    registry (RegistryUnavailable) leaves moto's state as it was.
    """
    name = repo.name
    found: dict[str, _Manifest] = {}
    for tag in list_tags(name):
        m = fetch_manifest(name, tag)
        if m is None:
            continue  # manifest deleted (distribution keeps the tag link) or racing a delete
        found.setdefault(m.digest, m).tags.append(tag)

    # Untagged manifests cannot be listed through the registry API: look up the
    # digests the caller asked for, and re-check the ones mirrored before (they
    # stay as untagged images, or vanish if deleted from the registry).
    mirrored = {i.get_image_digest() for i in repo.images if isinstance(i, RegistryImage)}
    gone: set[str] = set()
    for digest in (set(wanted_digests) | mirrored) - set(found):
        m = fetch_manifest(name, digest)
        if m is None:
            gone.add(digest)
        else:
            found[m.digest] = m

    tag_owner = {t: d for d, m in found.items() for t in m.tags}
    _warn_on_moved_immutable_tags(repo, tag_owner)
    for image in list(repo.images):
        digest = image.get_image_digest()
        if digest in found:
            continue
        # An image the registry does not hold: put there by PutImage (moto
        # only), or deleted from the registry. Tags the registry gives to
        # another image move away from it, as a push of that tag would do.
        kept = [t for t in image.image_tags if t not in tag_owner]
        if kept != image.image_tags:
            _set_tags(image, kept)
        if isinstance(image, RegistryImage) and digest in gone:
            repo.images.remove(image)

    for digest, m in found.items():
        existing = next((i for i in repo.images if i.get_image_digest() == digest), None)
        if existing is None:
            image: Image = RegistryImage(repo, m)
            repo.images.append(image)
        elif not isinstance(existing, RegistryImage):
            # Same digest already known to moto (PutImage with imageDigest):
            # the registry's copy wins, keeping moto's push time and scans.
            image = RegistryImage(repo, m)
            image.image_pushed_at = existing.image_pushed_at
            image.last_scan = existing.last_scan
            image.scan_finding_results = existing.scan_finding_results
            image.scan_finding_results_queue = existing.scan_finding_results_queue
            repo.images[repo.images.index(existing)] = image
        else:
            image = existing
        _set_tags(image, m.tags)


def _warn_on_moved_immutable_tags(repo: Repository, tag_owner: dict[str, str]) -> None:
    # The registry does not enforce ECR's tag immutability, so a push that AWS
    # would refuse can happen locally. Mirror it (the registry is the truth)
    # but say so.
    if not repo.is_tag_immutable():
        return
    before = {t: i.get_image_digest() for i in repo.images for t in i.image_tags}
    for tag, digest in tag_owner.items():
        if tag in before and before[tag] != digest:
            log.warning(
                "repository %s is %s but tag %s moved from %s to %s in the registry; "
                "AWS would have rejected that push (ImageTagAlreadyExistsException)",
                repo.name, repo.image_tag_mutability, tag, before[tag], digest,
            )


def _synced(
    original: Callable[[ECRResponse], Any],
) -> Callable[[ECRResponse], Any]:
    """Wrap an ECRResponse action: sync the named repository, then answer."""

    def action(self: ECRResponse) -> Any:
        with _lock:
            name = self._get_param("repositoryName")
            try:
                repo = self.ecr_backend._get_repository(name, self._get_param("registryId"))
            except RepositoryNotFoundException:
                repo = None  # moto's own answer is the right error
            if repo is not None:
                wanted = [
                    i["imageDigest"] for i in self._get_param("imageIds") or [] if i.get("imageDigest")
                ]
                try:
                    sync_repository(repo, wanted)
                except (RegistryUnavailable, requests.HTTPError, ValueError) as e:
                    log.warning(
                        "registry %s unavailable, answering %s from moto's state: %s",
                        registry_url(), original.__name__, e,
                    )
            return original(self)

    action.__name__ = original.__name__
    action.__doc__ = original.__doc__
    return action


# --------------------------------------------------------------------------
# replaced / extra actions


def get_authorization_token(self: ECRResponse) -> ActionResult:
    registry_ids = self._get_param("registryIds") or [self.current_account]
    expires_at = datetime.now(timezone.utc) + TOKEN_LIFETIME
    auth_data = [
        {
            # The local registry has no auth; docker login accepts any
            # credentials against it, so the password only has ECR's shape.
            "authorizationToken": b64encode(f"AWS:{rid}-local-registry".encode()).decode(),
            "expiresAt": expires_at,
            "proxyEndpoint": registry_url(),
        }
        for rid in registry_ids
    ]
    return ActionResult({"authorizationData": auth_data})


def _put_image_with_repo_check(original: Callable[[ECRResponse], Any]) -> Callable[[ECRResponse], Any]:
    def put_image(self: ECRResponse) -> Any:
        # raises RepositoryNotFoundException (400, JSON) like AWS
        self.ecr_backend._get_repository(self._get_param("repositoryName"), self._get_param("registryId"))
        return original(self)

    return put_image


def _repository_uri(self: Repository) -> str:
    return f"{registry_host()}/{self.name}"


def _ignore_uri_assignment(self: Repository, value: str) -> None:
    # moto's Repository.__init__ assigns the AWS-shaped URI; the URI is derived
    # from the registry instead, so every path (API, CloudFormation GetAtt
    # RepositoryUri) reports the pushable one.
    pass


_installed = False


def install(*, registry_url: str) -> None:
    """Patch moto's ECR. Idempotent; the registry URL may be changed by re-calling."""
    global _registry_url, _installed
    _registry_url = registry_url.rstrip("/")
    if _installed:
        return
    _installed = True
    ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]
    for action in ("describe_images", "batch_get_image", "list_images"):
        setattr(ECRResponse, action, _synced(getattr(ECRResponse, action)))
    ECRResponse.put_image = _put_image_with_repo_check(ECRResponse.put_image)  # type: ignore[method-assign]
    ecr_models.Repository.uri = property(_repository_uri, _ignore_uri_assignment)  # type: ignore[assignment]
