"""The local AWS data plane: container images run as local processes, load balancers serve HTTP.

moto records ECS tasks, SageMaker endpoints and ELBv2 load balancers but runs nothing.
There is no container engine on this machine either, so an image from the local
registry runs as a host process ("instance") and moto's ELBv2 load balancers proxy
to such processes. The control planes (ecs.py, sagemaker.py, lambda_runtime.py) call
this module; nothing here is reachable through an AWS API by itself.

Interface (all functions thread-safe):

    from astrolens_moto import dataplane

    inst = dataplane.start_instance(image_uri, environment, label,
                                    health_path="/ping", timeout=60)
        # -> Instance: .url ("http://127.0.0.1:PORT"), .port, .pid, .image_digest,
        #    .label, .log_path, .image_uri; .poll() -> exit code or None; .log_tail()
        # Blocks until GET health_path answers 200. Raises InstanceError on failure.
    dataplane.stop_instance(inst, grace=10.0)   # SIGTERM, SIGKILL after `grace` s; idempotent
    dataplane.pull_image(image_uri) -> PulledImage  # resolve + extract only ("pulling")
    dataplane.listener_url(listener_arn) -> "http://127.0.0.1:PORT"   # see alb.py
    # (raises alb.ListenerNotServed, a LookupError; GET /astrolens-api/alb/listeners lists them)
    GET /astrolens-api/dataplane/instances   # on the server: label, url, pid, image, log of each
    dataplane.InstanceError: .code is one of
        "CannotPullContainerError"   image or registry missing (AWS's stoppedReason prefix)
        "CannotStartContainerError"  the image cannot run here (not a Node entry, no node, ...)
        "EssentialContainerExited"   the process exited before it was healthy
        "HealthCheckTimeout"         no 200 from health_path within `timeout`
      .log_tail: the last lines of the instance's log ("" before it ran).
      .reason: "<code>: <message>" without the log, e.g.
        "CannotPullContainerError: pull image manifest has been retried 1 time(s):
         failed to resolve ref <uri>: <uri>: not found"; str(err) is reason + log tail.

How an image becomes a process:
  * ``image_uri`` is ``host:port/repo:tag`` or ``host:port/repo@sha256:...``; the host
    must be the local registry's (ECR's repositoryUri points there, see ecr.py). The
    manifest (Docker v2 schema 2 or OCI; from a manifest list/index the linux entry
    for this machine's architecture), the config and the layers are fetched and
    their digests checked.
  * Layers are read twice: once to build the final file index (whiteouts and opaque
    directories applied as the OCI layer spec says), once to extract only what the
    command needs: the WORKDIR tree, the entry script's directory if it lies
    elsewhere, and the symlinks on the way to both (e.g. ``/usr/local/bin/serve`` ->
    ``/opt/astrolens/serve.js``, rewritten as relative links so they stay inside the
    tree). The base OS (Debian, node itself) is never extracted: the host's ``node``
    runs the entry. Result: ``<state>/runtime/images/sha256-<hex>/rootfs`` (':' is
    '-' because ':' separates PATH-like variables that point into the tree), built
    in a temporary directory under an flock and renamed into place, so concurrent
    callers (threads or processes) extract once and never see half a tree.
  * The command is Entrypoint + Cmd. Supported: ``node ARGS`` and an executable whose
    ``#!`` line names node (``#!/usr/bin/env node``), found through the image's PATH
    as the kernel would. Anything else is CannotStartContainerError naming the image.
    Absolute arguments that point into the extracted tree are mapped onto it.
  * The environment is the image's Env, overlaid with ``environment``; values (or
    ':'-separated parts) that are absolute paths into the extracted tree are mapped
    onto it, in both, because both name paths inside the container. The host's
    environment is *not* inherited (a container's is not). PATH gains the host node's
    directory if missing. PORT is always the instance's own free port, even when
    ``environment`` sets one: on AWS every task has its own network namespace, so a
    task definition's PORT=8080 cannot clash; here all instances share one.
  * cwd is the extracted WORKDIR; stdout+stderr go to
    ``<state>/runtime/logs/<label>-<time>-<rand>.log`` (kept after the process ends).
    Each instance leads its own process group; stop signals the whole group, as
    ``docker stop`` ends everything in the container. A pid file per instance lets a
    later server kill instances orphaned by a server that died by SIGKILL.

Not modelled: image USER (runs as the server's user), HEALTHCHECK (the caller's
health_path is used), EXPOSE, volumes, resource limits, network isolation, non-Node
entries, native code beyond what the host's node loads (an image's native addons
must suit this machine; a foreign-architecture image fails as on AWS), zstd layers.
The image cache is never pruned: delete ``<state>/runtime/images`` to reclaim space.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import platform
import posixpath
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import requests

from .ecr import MANIFEST_ACCEPT

log = logging.getLogger("astrolens_moto.dataplane")

__all__ = [
    "Instance",
    "InstanceError",
    "PulledImage",
    "install",
    "configure",
    "listener_url",
    "pull_image",
    "start_instance",
    "stop_instance",
    "stop_all",
]

HTTP_TIMEOUT = 30.0  # registry requests; layers can be tens of MB
DEFAULT_STOP_GRACE = 10.0
# Docker's default PATH when an image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_NAMES = {"node", "nodejs"}
INDEX_TYPES = {
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
}
IMAGE_MANIFEST_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
}
# tarfile's "r|*" reads plain and gzip'd tar; zstd would need a package we do not have.
LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
}
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
HOST_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
LOG_TAIL_LINES = 40

_registry_url: str | None = None
_state_dir: Path | None = None
_lock = threading.Lock()
_running: dict[int, "Instance"] = {}
_atexit_registered = False


class InstanceError(Exception):
    """An instance could not be pulled, started or made healthy.

    ``code`` is the AWS-style reason prefix (see the module docstring); the message
    already starts with it, so control planes can use ``str(err)`` as a stoppedReason.
    """

    def __init__(self, code: str, message: str, log_tail: str = ""):
        self.code = code
        self.log_tail = log_tail
        self.reason = f"{code}: {message}"  # one line-ish, without the log: a stoppedReason
        text = self.reason
        if log_tail:
            text += f"\n--- last lines of the instance log ---\n{log_tail}"
        super().__init__(text)


@dataclass
class PulledImage:
    """An image resolved and extracted into the cache."""

    image_uri: str
    digest: str  # what image_uri resolves to (an index's digest for an index)
    rootfs: Path
    program: dict[str, Any]  # see _plan(); stored as image.json in the cache entry


@dataclass(eq=False)  # identity: a handle on one process, usable in sets and as a dict key
class Instance:
    url: str
    port: int
    pid: int
    image_digest: str
    label: str
    log_path: Path
    image_uri: str
    _proc: subprocess.Popen = field(repr=False, compare=False)

    def poll(self) -> int | None:
        """The exit code once the process has ended (negative: killed by that signal), else None."""
        return self._proc.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)


# --------------------------------------------------------------------------
# configuration


def default_state_dir() -> Path:
    return Path(os.environ.get("ASTROLENS_STATE_DIR") or Path.cwd() / ".local")


def configure(*, registry_url: str, state_dir: str | os.PathLike[str] | None = None) -> None:
    """Set the registry and state directory for instances (no moto, no threads).

    Enough for code that only runs images; ``install`` also serves load balancers.
    """
    global _registry_url, _state_dir, _atexit_registered
    _registry_url = registry_url.rstrip("/")
    _state_dir = Path(state_dir).resolve() if state_dir is not None else default_state_dir().resolve()
    if not _atexit_registered:
        _atexit_registered = True
        # __main__ turns SIGTERM/SIGINT into a normal return, so this runs on shutdown.
        atexit.register(stop_all)
    _reap_orphans()


def install(*, registry_url: str, state_dir: str | os.PathLike[str] | None = None) -> None:
    """Called by astrolens_moto.install(): instances plus the ALB data plane."""
    configure(registry_url=registry_url, state_dir=state_dir)
    from . import alb

    alb.install()


def listener_url(listener_arn: str) -> str:
    """Where the local ALB serves a listener: ``http://127.0.0.1:PORT`` (see alb.py)."""
    from . import alb

    return alb.listener_url(listener_arn)


def _runtime(sub: str) -> Path:
    """<state>/runtime/<sub>, created on use: deleting the cache while serving is allowed."""
    if _state_dir is None:
        raise RuntimeError("astrolens_moto.dataplane.configure() or install() was not called")
    path = _state_dir / "runtime" / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def _registry() -> str:
    if _registry_url is None:
        raise RuntimeError("astrolens_moto.dataplane.configure() or install() was not called")
    return _registry_url


# --------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class _Ref:
    uri: str
    host: str
    repository: str
    reference: str  # tag or digest


ECR_REGISTRY_RE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$")


def _parse_uri(uri: str) -> _Ref:
    registry_host = _registry().split("://", 1)[-1]
    host, sep, rest = uri.partition("/")
    if not sep or not rest:
        raise InstanceError("CannotPullContainerError", f"invalid image reference {uri!r}: expected host:port/repository:tag or host:port/repository@sha256:...")
    # ECR's own registry names (account.dkr.ecr.region.amazonaws.com), as a CloudFormation
    # template builds them from the repository's ARN, are the local registry here too: the
    # ECR extension makes that registry ECR's data plane.
    if host != registry_host and not ECR_REGISTRY_RE.match(host):
        raise InstanceError(
            "CannotPullContainerError",
            f"image {uri}: registry {host} is not the local registry {registry_host} "
            "(locally, images are pulled only from the registry that ECR's repositoryUri points at)",
        )
    if "@" in rest:
        repo, _, digest = rest.partition("@")
        repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo  # repo:tag@digest: digest wins
        if not DIGEST_RE.match(digest):
            raise InstanceError("CannotPullContainerError", f"image {uri}: {digest!r} is not a sha256 digest")
        reference = digest
    elif ":" in rest.rsplit("/", 1)[-1]:
        repo, _, reference = rest.rpartition(":")
    else:
        repo, reference = rest, "latest"
    if not repo:
        raise InstanceError("CannotPullContainerError", f"invalid image reference {uri!r}: no repository")
    return _Ref(uri=uri, host=host, repository=repo, reference=reference)


def _pull_error(ref: _Ref, why: str) -> InstanceError:
    # Shaped like ECS's: "CannotPullContainerError: pull image manifest has been retried
    # 5 time(s): failed to resolve ref <uri>: <uri>: not found"
    return InstanceError(
        "CannotPullContainerError",
        f"pull image manifest has been retried 1 time(s): failed to resolve ref {ref.uri}: {why}",
    )


def _get(ref: _Ref, path: str, accept: str | None = None, stream: bool = False) -> requests.Response:
    url = f"{_registry()}/v2/{ref.repository}/{path}"
    try:
        return requests.get(url, headers={"Accept": accept} if accept else {}, timeout=HTTP_TIMEOUT, stream=stream)
    except requests.RequestException as e:
        raise _pull_error(ref, f"registry {_registry()} unreachable: {e}") from e


def _fetch_manifest(ref: _Ref, reference: str) -> tuple[str, dict[str, Any]]:
    resp = _get(ref, f"manifests/{reference}", MANIFEST_ACCEPT)
    if resp.status_code in (400, 404):
        raise _pull_error(ref, f"{ref.uri}: not found")
    if resp.status_code != 200:
        raise _pull_error(ref, f"registry answered HTTP {resp.status_code} for manifest {reference}")
    digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
    if reference.startswith("sha256:") and digest != reference:
        raise _pull_error(ref, f"manifest content has digest {digest}, not the {reference} asked for")
    manifest = resp.json()
    media_type = manifest.get("mediaType") or resp.headers.get("Content-Type", "").split(";")[0].strip()
    manifest["mediaType"] = media_type
    return digest, manifest


def _fetch_blob(ref: _Ref, digest: str, dest: Path) -> None:
    resp = _get(ref, f"blobs/{digest}", stream=True)
    if resp.status_code == 404:
        raise _pull_error(ref, f"blob {digest}: not found")
    if resp.status_code != 200:
        raise _pull_error(ref, f"registry answered HTTP {resp.status_code} for blob {digest}")
    h = hashlib.sha256()
    with resp, open(dest, "wb") as out:
        for chunk in resp.iter_content(1 << 20):
            h.update(chunk)
            out.write(chunk)
    if "sha256:" + h.hexdigest() != digest:
        raise _pull_error(ref, f"blob {digest} arrived with digest sha256:{h.hexdigest()}")


def _resolve_image_manifest(ref: _Ref) -> tuple[str, str, dict[str, Any]]:
    """(digest the URI names, digest of the platform image manifest, that manifest)."""
    digest, manifest = _fetch_manifest(ref, ref.reference)
    if manifest["mediaType"] in INDEX_TYPES:
        for entry in manifest.get("manifests", []):
            plat = entry.get("platform") or {}
            if plat.get("os") == "linux" and plat.get("architecture") == HOST_ARCH:
                image_digest, image_manifest = _fetch_manifest(ref, entry["digest"])
                break
        else:
            # Docker's wording for the same situation
            raise _pull_error(ref, f"no matching manifest for linux/{HOST_ARCH} in the manifest list entries")
    else:
        image_digest, image_manifest = digest, manifest
    if image_manifest["mediaType"] not in IMAGE_MANIFEST_TYPES:
        raise _pull_error(ref, f"unsupported manifest media type {image_manifest['mediaType']!r}")
    return digest, image_digest, image_manifest


# --------------------------------------------------------------------------
# the layer index: the image's final file tree, without the file contents

DIR, FILE, SYMLINK, HARDLINK, OTHER = "dir", "file", "symlink", "hardlink", "other"


@dataclass
class _Entry:
    layer: int
    kind: str
    mode: int
    linkname: str = ""  # symlink: raw target; hardlink: in-image path of the target


def _norm(name: str) -> str:
    """A tar member name as an absolute in-image path; '..' cannot climb above '/'."""
    p = posixpath.normpath("/" + name)
    return "/" + p.lstrip("/") if p.startswith("//") else p


def _under(path: str, prefix: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def _drop_subtree(index: dict[str, _Entry], prefix: str, keep_root: bool) -> None:
    for p in [p for p in index if _under(p, prefix)]:
        if p != prefix or not keep_root:
            del index[p]


def _index_layers(layers: list[Path]) -> dict[str, _Entry]:
    index: dict[str, _Entry] = {}
    for i, layer in enumerate(layers):
        adds: list[tuple[str, _Entry]] = []
        whiteouts: list[str] = []
        opaque: list[str] = []
        with tarfile.open(layer, mode="r|*") as tar:
            for m in tar:
                p = _norm(m.name)
                base, parent = posixpath.basename(p), posixpath.dirname(p)
                if base == ".wh..wh..opq":
                    opaque.append(parent)
                elif base.startswith(".wh."):
                    whiteouts.append(posixpath.join(parent, base[4:]))
                elif p != "/":
                    kind = (
                        DIR if m.isdir() else FILE if m.isreg() else SYMLINK if m.issym()
                        else HARDLINK if m.islnk() else OTHER
                    )
                    link = _norm(m.linkname) if kind == HARDLINK else m.linkname if kind == SYMLINK else ""
                    adds.append((p, _Entry(i, kind, m.mode, link)))
        # Whiteouts hide what lower layers put there, never this layer's own entries
        # (OCI image spec, "Whiteouts"), so they apply before this layer's additions.
        for d in opaque:
            _drop_subtree(index, d, keep_root=True)
        for w in whiteouts:
            _drop_subtree(index, w, keep_root=False)
        for p, e in adds:
            old = index.get(p)
            if e.kind != DIR and old is not None and old.kind == DIR:
                _drop_subtree(index, p, keep_root=False)  # a file replacing a directory hides its content
            index[p] = e
    return index


class _LinkLoop(Exception):
    pass


def _resolve(index: dict[str, _Entry], path: str, links: list[str]) -> str:
    """Follow symlinks component by component, as the kernel would inside the image.

    Appends every symlink passed through to ``links``; returns the real path (which
    may not exist).
    """
    pending = [c for c in path.split("/") if c]
    cur, hops = "/", 0
    while pending:
        comp = pending.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            cur = posixpath.dirname(cur)
            continue
        nxt = posixpath.join(cur, comp)
        e = index.get(nxt)
        if e is not None and e.kind == SYMLINK:
            hops += 1
            if hops > 40:  # the kernel's ELOOP limit
                raise _LinkLoop(path)
            links.append(nxt)
            if e.linkname.startswith("/"):
                cur = "/"
            pending = [c for c in e.linkname.split("/") if c] + pending
            continue
        cur = nxt
    return cur


def _read_head(layer: Path, path: str, size: int = 256) -> bytes:
    head = b""
    with tarfile.open(layer, mode="r|*") as tar:
        for m in tar:
            if m.isreg() and _norm(m.name) == path:
                f = tar.extractfile(m)
                head = f.read(size) if f else b""  # last occurrence wins, like extraction
    return head


# --------------------------------------------------------------------------
# what to run: the plan, computed from the index and config before extracting


def _parse_shebang(head: bytes) -> list[str] | None:
    """The interpreter argv of a '#!' line, or None when there is none."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split()
    if parts and posixpath.basename(parts[0]) == "env":
        parts = parts[1:]
        if parts and parts[0] == "-S":  # env -S splits the rest itself
            parts = shlex.split(" ".join(parts[1:]))
    return parts


def _plan(uri: str, index: dict[str, _Entry], config: dict[str, Any], layers: list[Path]) -> dict[str, Any]:
    def refuse(why: str) -> InstanceError:
        return InstanceError("CannotStartContainerError", f"image {uri}: {why}")

    arch = config.get("architecture")
    if arch and arch != HOST_ARCH:
        raise refuse(f"exec format error: the image is for linux/{arch}, this machine runs linux/{HOST_ARCH}")
    cfg = config.get("config") or {}
    argv = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    if not argv:
        raise refuse("no command specified: the image has neither Entrypoint nor Cmd")
    env = dict(kv.split("=", 1) for kv in cfg.get("Env") or [] if "=" in kv)
    workdir = _norm(cfg.get("WorkingDir") or "/")
    links: list[str] = []
    try:
        workdir_real = _resolve(index, workdir, links)
        if posixpath.basename(argv[0]) in NODE_NAMES:
            # `node script.js ...`: the host's node stands in for the image's.
            exec_path, interpreter = None, []
            script_arg = next((a for a in argv[1:] if not a.startswith("-")), None)
            script = _norm(posixpath.join(workdir, script_arg)) if script_arg else None
            args = argv[1:]
        else:
            exec_path = _find_executable(index, argv[0], env.get("PATH", DEFAULT_PATH), workdir, links)
            if exec_path is None:
                raise refuse(f'exec: "{argv[0]}": executable file not found in $PATH')
            real = _resolve(index, exec_path, links)
            entry, content_path = index[real], real
            if entry.kind == HARDLINK and entry.linkname in index:
                content_path = entry.linkname  # the bytes live with the link's target
                entry = index[content_path]
            if not entry.mode & 0o111:
                raise refuse(f"exec: {exec_path}: permission denied (not executable)")
            head = _read_head(layers[entry.layer], content_path)
            shebang = _parse_shebang(head)
            if shebang is None:
                raise refuse(
                    f"{exec_path} (from Entrypoint+Cmd {argv}) is not a Node.js program (no '#!' line; "
                    "a native executable cannot run locally: only Node entries are supported)"
                )
            if not shebang or posixpath.basename(shebang[0]) not in NODE_NAMES:
                raise refuse(
                    f"{exec_path} (from Entrypoint+Cmd {argv}) runs {' '.join(shebang) or 'nothing'!s}, "
                    "not node: only Node.js entries are supported locally"
                )
            interpreter, script, args = shebang[1:], exec_path, argv[1:]
        script_real = _resolve(index, script, links) if script else None
    except _LinkLoop as e:
        raise refuse(f"too many levels of symbolic links resolving {e}") from None

    trees = [workdir_real] if workdir_real != "/" else []
    if script_real and not any(_under(script_real, t) for t in trees):
        parent = posixpath.dirname(script_real)
        trees.append(parent if parent != "/" else script_real)
    return {
        "workdir": workdir_real,
        "trees": trees,
        "links": sorted(set(links)),
        "interpreter_args": interpreter,
        "exec": exec_path,  # None for `node ...`
        "args": args,
        "env": env,
    }


def _find_executable(index: dict[str, _Entry], prog: str, path_var: str, workdir: str, links: list[str]) -> str | None:
    if "/" in prog:
        candidates = [_norm(posixpath.join(workdir, prog))]
    else:
        candidates = [posixpath.join(d, prog) for d in path_var.split(":") if d.startswith("/")]
    for cand in candidates:
        passed: list[str] = []
        real = _resolve(index, cand, passed)
        e = index.get(real)
        if e is not None and e.kind in (FILE, HARDLINK):
            links.extend(passed)
            return cand
    return None


def _kept(plan: dict[str, Any], path: str) -> bool:
    return path in plan["links"] or any(_under(path, t) for t in plan["trees"])


# --------------------------------------------------------------------------
# extraction


def _host_path(rootfs: Path, path: str) -> Path:
    return rootfs / path.lstrip("/")


def _extract(index: dict[str, _Entry], plan: dict[str, Any], layers: list[Path], rootfs: Path) -> None:
    wanted = {p: e for p, e in index.items() if _kept(plan, p)}
    by_layer: dict[int, set[str]] = {}
    for p, e in wanted.items():
        by_layer.setdefault(e.layer, set()).add(p)
    rootfs.mkdir(parents=True)
    deferred: list[tuple[str, _Entry]] = []
    dirs: list[tuple[Path, int]] = []
    for i, paths in sorted(by_layer.items()):
        with tarfile.open(layers[i], mode="r|*") as tar:
            for m in tar:
                p = _norm(m.name)
                if p not in paths:
                    continue
                e = wanted[p]
                dst = _host_path(rootfs, p)
                if e.kind == DIR and m.isdir():
                    dst.mkdir(parents=True, exist_ok=True)
                    dirs.append((dst, m.mode))
                elif e.kind == FILE and m.isreg():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    assert src is not None
                    if dst.is_symlink() or dst.exists():
                        dst.unlink()  # an earlier member of this layer with the same name
                    with open(dst, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    # owner read/write so the cache can be deleted; no setuid/world-write
                    os.chmod(dst, (m.mode & 0o755) | 0o600)
                elif e.kind in (SYMLINK, HARDLINK):
                    deferred.append((p, e))
    # Links last, so no file is ever written through a link.
    for p, e in deferred:
        dst = _host_path(rootfs, p)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if e.kind == SYMLINK:
            # Absolute targets name the image's root: make them relative to the link so
            # they resolve inside the extracted tree (and survive the rename into place).
            base = "/" if e.linkname.startswith("/") else posixpath.dirname(p)
            target = _norm(posixpath.join(base, e.linkname))
            os.symlink(posixpath.relpath(target, posixpath.dirname(p)), dst)
        else:
            src = _host_path(rootfs, e.linkname)
            if src.is_file():
                os.link(src, dst)
            else:
                log.warning("hard link %s -> %s: target not extracted; skipped", p, e.linkname)
    _host_path(rootfs, plan["workdir"]).mkdir(parents=True, exist_ok=True)  # Docker creates WORKDIR
    for d, mode in dirs:
        os.chmod(d, (mode & 0o755) | 0o700)


def pull_image(image_uri: str) -> PulledImage:
    """Resolve ``image_uri`` in the local registry and extract it into the cache (once per digest)."""
    ref = _parse_uri(image_uri)
    digest, image_digest, manifest = _resolve_image_manifest(ref)
    images = _runtime("images")
    final = images / image_digest.replace(":", "-")
    meta_path = final / "image.json"
    if not meta_path.exists():
        with open(images / f"{final.name}.lock", "w") as lock_file:
            # Between processes too (two servers on one state dir); threads each open
            # their own descriptor, so flock serialises them as well.
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                if not meta_path.exists():
                    # Holding the lock, any temporary tree for this digest is a dead
                    # builder's leftover.
                    for stale in images.glob(f".tmp-{final.name}-*"):
                        shutil.rmtree(stale, ignore_errors=True)
                    _build(ref, manifest, images, final)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    meta = json.loads(meta_path.read_text())
    return PulledImage(image_uri=image_uri, digest=digest, rootfs=final / "rootfs", program=meta["program"])


def _build(ref: _Ref, manifest: dict[str, Any], images: Path, final: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=images))
    try:
        cfg_desc = manifest.get("config") or {}
        _fetch_blob(ref, cfg_desc["digest"], tmp / "config.json")
        config = json.loads((tmp / "config.json").read_text())
        layers: list[Path] = []
        (tmp / "layers").mkdir()
        for n, desc in enumerate(manifest.get("layers") or []):
            if desc.get("mediaType") not in LAYER_TYPES:
                raise InstanceError(
                    "CannotPullContainerError",
                    f"image {ref.uri}: layer {desc.get('digest')} has media type {desc.get('mediaType')!r}; "
                    f"the local data plane reads {sorted(LAYER_TYPES)}",
                )
            layers.append(tmp / "layers" / str(n))
            _fetch_blob(ref, desc["digest"], layers[-1])
        try:
            index = _index_layers(layers)
            plan = _plan(ref.uri, index, config, layers)
            _extract(index, plan, layers, tmp / "rootfs")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise InstanceError("CannotPullContainerError", f"image {ref.uri}: cannot unpack its layers: {e}") from e
        (tmp / "image.json").write_text(json.dumps({"digest": final.name.replace("-", ":", 1), "program": plan}, indent=2))
        shutil.rmtree(tmp / "layers")
        (tmp / "config.json").unlink()
        os.rename(tmp, final)  # atomic: readers see no tree or a whole one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------
# running


def _map_value(value: str, rootfs: Path, plan: dict[str, Any]) -> str:
    """Map absolute in-image paths (alone or in a ':'-list) that were extracted onto the tree."""

    def one(part: str) -> str:
        if part.startswith("/") and not part.startswith("//") and _kept(plan, _norm(part)):
            return str(_host_path(rootfs, _norm(part)))
        return part

    return ":".join(one(p) for p in value.split(":"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80] or "instance"


def start_instance(
    image_uri: str,
    environment: dict[str, str],
    label: str,
    *,
    health_path: str = "/ping",
    timeout: float = 60,
) -> Instance:
    """Run ``image_uri`` as a local process and wait until ``GET health_path`` answers 200.

    Raises InstanceError (see the module docstring); on failure nothing is left running.
    """
    for k, v in environment.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"environment must map str to str, got {k!r}: {v!r}")
    image = pull_image(image_uri)
    plan, rootfs = image.program, image.rootfs
    node = shutil.which("node")
    if node is None:
        raise InstanceError(
            "CannotStartContainerError",
            f"image {image_uri}: no `node` on this machine's PATH to run its Node.js entry (install Node.js 20)",
        )
    port = _free_port()
    env = {k: _map_value(v, rootfs, plan) for k, v in plan["env"].items()}
    env.setdefault("PATH", DEFAULT_PATH)
    notes = []
    for k, v in environment.items():
        if k == "PORT":
            notes.append(f"PORT={v} from the caller replaced by {port}: local instances share one network namespace")
            continue
        env[k] = _map_value(v, rootfs, plan)
    env["PORT"] = str(port)
    node_dir = os.path.dirname(node)
    if node_dir not in env["PATH"].split(":"):
        env["PATH"] += ":" + node_dir  # children that spawn `node` find the same one
    argv = [node, *plan["interpreter_args"]]
    if plan["exec"] is not None:
        argv.append(str(_host_path(rootfs, plan["exec"])))
    argv += [_map_value(a, rootfs, plan) if a.startswith("/") else a for a in plan["args"]]

    logs = _runtime("logs")
    log_path = logs / f"{_safe_label(label)}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as out:
        out.write(
            f"# astrolens local instance {label}: {image_uri} ({image.digest})\n"
            f"# argv: {shlex.join(argv)}\n# cwd: {_host_path(rootfs, plan['workdir'])}\n".encode()
            + "".join(f"# note: {n}\n" for n in notes).encode()
        )
        out.flush()
        proc = subprocess.Popen(
            argv,
            cwd=_host_path(rootfs, plan["workdir"]),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop reaches its children too
            close_fds=True,
        )
    inst = Instance(
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=proc.pid,
        image_digest=image.digest,
        label=label,
        log_path=log_path,
        image_uri=image_uri,
        _proc=proc,
    )
    with _lock:
        _running[proc.pid] = inst
    _write_pid_file(inst)
    log.info("instance %s: %s pid %d at %s (log %s)", label, image_uri, proc.pid, inst.url, log_path)
    try:
        _wait_healthy(inst, health_path, timeout)
    except BaseException:
        stop_instance(inst, grace=2.0)
        raise
    return inst


def _wait_healthy(inst: Instance, health_path: str, timeout: float) -> None:
    url = inst.url + ("" if health_path.startswith("/") else "/") + health_path
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        code = inst.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise InstanceError(
                "EssentialContainerExited",
                f"instance {inst.label} ({inst.image_uri}) {how} before GET {health_path} answered 200 "
                f"(log {inst.log_path})",
                _tail(inst.log_path),
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InstanceError(
                "HealthCheckTimeout",
                f"instance {inst.label} ({inst.image_uri}) did not answer GET {health_path} with 200 "
                f"within {timeout:g}s (last: {last}; log {inst.log_path})",
                _tail(inst.log_path),
            )
        try:
            r = requests.get(url, timeout=max(0.1, min(2.0, remaining)))
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = type(e).__name__
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # poll interval


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:  # the group's leader pid was reused by someone else's process
        pass


def stop_instance(instance: Instance, *, grace: float = DEFAULT_STOP_GRACE) -> None:
    """SIGTERM the instance's process group, SIGKILL after ``grace`` seconds. Idempotent."""
    proc = instance._proc
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Like `docker stop`: whatever the entry left behind in its group goes too.
    _signal_group(proc.pid, signal.SIGKILL)
    with _lock:
        _running.pop(proc.pid, None)
    _remove_pid_file(proc.pid)
    log.info("instance %s (pid %d) stopped, exit code %s", instance.label, proc.pid, proc.returncode)


def stop_all(grace: float = DEFAULT_STOP_GRACE) -> None:
    """Stop every running instance, in parallel (at server shutdown)."""
    with _lock:
        instances = list(_running.values())
    threads = [threading.Thread(target=stop_instance, args=(i,), kwargs={"grace": grace}) for i in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------
# orphans: instances of a server that died without running its atexit handlers


def _pid_file(pid: int) -> Path:
    return _runtime("instances") / f"{pid}.json"


def _write_pid_file(inst: Instance) -> None:
    _pid_file(inst.pid).write_text(json.dumps({"pid": inst.pid, "owner": os.getpid(), "label": inst.label}))


def _remove_pid_file(pid: int) -> None:
    try:
        _pid_file(pid).unlink()
    except FileNotFoundError:
        pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _reap_orphans() -> None:
    images = str(_runtime("images"))
    for f in _runtime("instances").glob("*.json"):
        try:
            rec = json.loads(f.read_text())
            pid, owner = int(rec["pid"]), int(rec["owner"])
        except (OSError, ValueError, KeyError):
            continue
        if owner == os.getpid() or _cmdline(owner):
            continue  # its owner still runs (this process, or another server on this state dir)
        # Only a process still running our extracted code: the pid may have been reused.
        if images in _cmdline(pid):
            log.warning("stopping instance %s (pid %d) orphaned by a server that did not shut down", rec.get("label"), pid)
            _signal_group(pid, signal.SIGKILL)
        f.unlink(missing_ok=True)


def _iter_running() -> Iterator[Instance]:  # for tests and diagnostics
    with _lock:
        yield from list(_running.values())


def _list_instances(body: dict[str, Any], query: dict[str, str]) -> tuple[int, Any]:
    """GET /astrolens-api/dataplane/instances: what runs, for people and tests outside the server."""
    return 200, {
        "instances": [
            {"label": i.label, "url": i.url, "pid": i.pid, "imageUri": i.image_uri,
             "imageDigest": i.image_digest, "logPath": str(i.log_path)}
            for i in _iter_running()
        ]
    }


API_ROUTES = {("GET", "instances"): _list_instances}  # served by __main__ under /astrolens-api/dataplane/
