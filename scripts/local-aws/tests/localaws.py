"""Real processes for the tests: Debian's docker-registry and `python -m astrolens_moto`.

Plus a tiny OCI distribution client that pushes real images over plain HTTP.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import boto3
import botocore.config
import requests

LOCAL_AWS = Path(__file__).resolve().parents[1]  # scripts/local-aws
REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"  # what buildah pushes by default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Registry:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_registry(workdir: Path) -> Registry:
    port = free_port()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(workdir / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}: {(workdir / 'registry.log').read_text()}")
        try:
            return requests.get(url + "/v2/", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(up, 20, "docker-registry")
    return Registry(url=url, proc=proc)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as the TypeScript side does; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def ecr(self):
        return boto3.client(
            "ecr",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )


def server_command(port: int, registry_url: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "astrolens_moto", "--host", "127.0.0.1", "--port", str(port)]
    if registry_url is not None:
        cmd += ["--registry-url", registry_url]
    return cmd


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ASTROLENS_REGISTRY_URL", None)  # only what the test passes
    env.update(extra)
    env["PYTHONPATH"] = str(LOCAL_AWS) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_server(workdir: Path, registry_url: str | None, **env: str) -> Server:
    port = free_port()
    stderr_path = workdir / f"moto-{port}.stderr"
    proc = subprocess.Popen(
        server_command(port, registry_url),
        env=server_env(**env),
        stdout=subprocess.PIPE,
        stderr=open(stderr_path, "wb"),
        text=True,
    )
    line = proc.stdout.readline()  # blocks until the line or EOF
    if not line:
        proc.wait(timeout=10)
        raise RuntimeError(f"astrolens_moto exited {proc.returncode}: {stderr_path.read_text()}")
    assert line.strip() == f"astrolens-moto listening on http://127.0.0.1:{port}", line
    return Server(url=f"http://127.0.0.1:{port}", proc=proc, stderr_path=stderr_path)


# --------------------------------------------------------------------------
# a real (tiny) image, pushed with the OCI distribution API


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class TinyImage:
    config: bytes
    layer: bytes
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        return len(self.config) + len(self.layer)


def make_image(content: str, oci: bool = False) -> TinyImage:
    """One gzip'd tar layer holding /hello.txt, a config, a Docker v2 schema 2 (or OCI) manifest."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        data = content.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = tar_buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
        },
        separators=(",", ":"),
    ).encode()
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST_V2
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json"
                if oci
                else "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": sha256_digest(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
                    if oci
                    else "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": sha256_digest(layer),
                }
            ],
        },
        indent=3,  # like docker: the digest is of these exact bytes, not of re-serialised JSON
    ).encode()
    return TinyImage(config=config, layer=layer, manifest=manifest, media_type=media_type)


def push_blob(registry: str, name: str, data: bytes) -> str:
    digest = sha256_digest(data)
    r = requests.post(f"{registry}/v2/{name}/blobs/uploads/", timeout=10)
    assert r.status_code == 202, (r.status_code, r.text)
    location = urljoin(registry + "/", r.headers["Location"])
    sep = "&" if "?" in location else "?"
    r = requests.put(
        f"{location}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    return digest


def push_image(registry: str, name: str, image: TinyImage, reference: str) -> str:
    """Push blobs and the manifest under a tag or (for an untagged push) its digest."""
    push_blob(registry, name, image.config)
    push_blob(registry, name, image.layer)
    r = requests.put(
        f"{registry}/v2/{name}/manifests/{reference}",
        data=image.manifest,
        headers={"Content-Type": image.media_type},
        timeout=10,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["Docker-Content-Digest"] == image.digest
    return image.digest


# --------------------------------------------------------------------------
# multi-layer images with symlinks and whiteouts (for the data plane)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class BuiltImage:
    config: bytes
    layers: list[bytes]
    manifest: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def tar_layer(entries: list[tuple]) -> bytes:
    """A gzip'd tar layer. Entries, in order:
    ("file", path, text, mode) | ("dir", path) | ("symlink", path, target)
    | ("whiteout", path) -> .wh.<name> | ("opaque", dir) -> <dir>/.wh..wh..opq
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, *rest in entries:
            path = path.lstrip("/")
            data = b""
            if kind == "whiteout":
                parent, _, name = path.rpartition("/")
                info = tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}")
            elif kind == "opaque":
                info = tarfile.TarInfo(f"{path}/.wh..wh..opq")
            elif kind == "dir":
                info = tarfile.TarInfo(path)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info = tarfile.TarInfo(path)
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "file":
                info = tarfile.TarInfo(path)
                data = rest[0].encode() if isinstance(rest[0], str) else rest[0]
                info.mode = rest[1] if len(rest) > 1 else 0o644
            else:
                raise ValueError(kind)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data) if data else None)
    return gzip.compress(buf.getvalue(), mtime=0)


def build_image(layers: list[bytes], config: dict, oci: bool = False) -> BuiltImage:
    """Config {"config": {...}, ...} plus layers from tar_layer, as Docker v2 schema 2 or OCI."""
    diff_ids = [sha256_digest(gzip.decompress(layer)) for layer in layers]
    full = {"architecture": "amd64", "os": "linux", **config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_bytes = json.dumps(full, separators=(",", ":")).encode()
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST_V2
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip" if oci else "application/vnd.docker.image.rootfs.diff.tar.gzip"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json" if oci else "application/vnd.docker.container.image.v1+json",
                "size": len(config_bytes),
                "digest": sha256_digest(config_bytes),
            },
            "layers": [{"mediaType": layer_type, "size": len(b), "digest": sha256_digest(b)} for b in layers],
        },
        indent=3,
    ).encode()
    return BuiltImage(config=config_bytes, layers=layers, manifest=manifest, media_type=media_type)


def push_built_image(registry: str, name: str, image: BuiltImage, reference: str) -> str:
    for blob in [image.config, *image.layers]:
        push_blob(registry, name, blob)
    r = requests.put(
        f"{registry}/v2/{name}/manifests/{reference}",
        data=image.manifest,
        headers={"Content-Type": image.media_type},
        timeout=10,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    return image.digest


def push_index(registry: str, name: str, entries: list[tuple[BuiltImage, str]], reference: str) -> str:
    """An OCI image index over already pushed images; entries are (image, "os/arch")."""
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": img.media_type,
                    "size": len(img.manifest),
                    "digest": img.digest,
                    "platform": {"os": plat.split("/")[0], "architecture": plat.split("/")[1]},
                }
                for img, plat in entries
            ],
        }
    ).encode()
    r = requests.put(
        f"{registry}/v2/{name}/manifests/{reference}", data=body, headers={"Content-Type": OCI_INDEX}, timeout=10
    )
    assert r.status_code == 201, (r.status_code, r.text)
    return sha256_digest(body)


def aws_client(server: Server, service: str):
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
