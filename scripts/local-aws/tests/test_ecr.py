"""ECR API <-> local registry, against real processes (docker-registry + python -m astrolens_moto).

Run: PYTHONPATH=scripts/local-aws .local/venv/bin/python -m pytest scripts/local-aws/tests
"""

from __future__ import annotations

import base64
import socket
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from botocore.exceptions import ClientError

from localaws import (
    DOCKER_MANIFEST_V2,
    OCI_MANIFEST,
    free_port,
    make_image,
    push_image,
    server_command,
    server_env,
    start_registry,
    start_server,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("moto"), registry.url)
    yield srv
    srv.stop()


@pytest.fixture
def ecr(server):
    return server.ecr()


def repo_name(prefix: str = "app") -> str:
    # registry and moto state live for the module: each test gets its own repository
    return f"astrolens/{prefix}-{uuid.uuid4().hex[:8]}"


def tags_by_digest(ecr, name: str) -> dict[str, set[str]]:
    details = ecr.describe_images(repositoryName=name)["imageDetails"]
    return {d["imageDigest"]: set(d.get("imageTags", [])) for d in details}


def test_authorization_token_points_at_registry_and_expires_in_12h(ecr, registry):
    before = datetime.now(timezone.utc)
    data = ecr.get_authorization_token()["authorizationData"]

    assert len(data) == 1
    assert data[0]["proxyEndpoint"] == registry.url
    user, _, password = base64.b64decode(data[0]["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password
    expires = data[0]["expiresAt"]
    assert before + timedelta(hours=12) - timedelta(seconds=5) <= expires
    assert expires <= datetime.now(timezone.utc) + timedelta(hours=12) + timedelta(seconds=5)


def test_repository_uri_is_the_registry_and_moto_settings_are_kept(ecr, registry):
    name = repo_name()
    created = ecr.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
    )["repository"]
    host = registry.url.removeprefix("http://")

    assert created["repositoryUri"] == f"{host}/{name}"
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    described = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert [r["repositoryUri"] for r in described] == [f"{host}/{name}"]
    assert described[0]["repositoryArn"].endswith(f":repository/{name}")


def test_pushed_image_appears_with_registry_digest_tags_media_type_and_size(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    image = make_image("v1")
    push_image(registry.url, name, image, "v1")

    details = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert len(details) == 1
    d = details[0]
    assert d["imageDigest"] == image.digest  # sha256 of the manifest bytes pushed
    assert d["imageTags"] == ["v1"]
    assert d["imageManifestMediaType"] == DOCKER_MANIFEST_V2
    assert d["imageSizeInBytes"] == image.size
    assert d["repositoryName"] == name
    assert isinstance(d["imagePushedAt"], datetime)

    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == []
    assert len(got["images"]) == 1
    assert got["images"][0]["imageId"]["imageDigest"] == image.digest
    assert got["images"][0]["imageManifest"] == image.manifest.decode()
    assert got["images"][0]["imageManifestMediaType"] == DOCKER_MANIFEST_V2

    listed = ecr.list_images(repositoryName=name)["imageIds"]
    assert listed == [{"imageDigest": image.digest, "imageTag": "v1"}]


def test_oci_manifest_keeps_its_media_type(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    image = make_image("oci", oci=True)
    push_image(registry.url, name, image, "oci")

    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "oci"}])["images"]
    assert [i["imageId"]["imageDigest"] for i in got] == [image.digest]
    assert got[0]["imageManifestMediaType"] == OCI_MANIFEST
    assert got[0]["imageManifest"] == image.manifest.decode()


def test_each_synced_action_syncs_by_itself(server, registry):
    # a fresh ECR view per action: BatchGetImage and ListImages see a push
    # without a DescribeImages first
    name = repo_name()
    ecr = server.ecr()
    ecr.create_repository(repositoryName=name)
    a, b = make_image("list-first"), make_image("get-first")
    push_image(registry.url, name, a, "a")
    assert ecr.list_images(repositoryName=name)["imageIds"] == [{"imageDigest": a.digest, "imageTag": "a"}]
    push_image(registry.url, name, b, "b")
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "b"}])
    assert [i["imageId"]["imageDigest"] for i in got["images"]] == [b.digest]


def test_retag_shows_both_tags_on_one_image(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    image = make_image("retag")
    push_image(registry.url, name, image, "1.0.0")
    assert tags_by_digest(ecr, name) == {image.digest: {"1.0.0"}}

    push_image(registry.url, name, image, "stable")

    assert tags_by_digest(ecr, name) == {image.digest: {"1.0.0", "stable"}}
    listed = ecr.list_images(repositoryName=name)["imageIds"]
    assert sorted((i["imageTag"], i["imageDigest"]) for i in listed) == [
        ("1.0.0", image.digest),
        ("stable", image.digest),
    ]


def test_tag_moves_when_a_different_manifest_is_pushed_under_it(server, ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name, imageTagMutability="MUTABLE")
    old, new = make_image("old"), make_image("new")
    assert old.digest != new.digest
    push_image(registry.url, name, old, "latest")
    assert tags_by_digest(ecr, name) == {old.digest: {"latest"}}

    push_image(registry.url, name, new, "latest")

    # as on ECR: the old image stays, untagged
    assert tags_by_digest(ecr, name) == {new.digest: {"latest"}, old.digest: set()}
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "latest"}])
    assert [i["imageId"]["imageDigest"] for i in got["images"]] == [new.digest]
    assert got["images"][0]["imageManifest"] == new.manifest.decode()
    assert ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"] == [
        {"imageDigest": old.digest}
    ]
    assert f"repository {name} is" not in server.stderr()  # MUTABLE: no immutability warning


def test_immutable_tag_moved_in_registry_is_mirrored_with_a_warning(server, registry):
    name = repo_name()
    ecr = server.ecr()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    first, second = make_image("first"), make_image("second")
    push_image(registry.url, name, first, "prod")
    assert tags_by_digest(ecr, name) == {first.digest: {"prod"}}

    push_image(registry.url, name, second, "prod")  # the registry does not enforce immutability

    assert tags_by_digest(ecr, name) == {second.digest: {"prod"}, first.digest: set()}
    assert f"repository {name} is IMMUTABLE but tag prod moved from {first.digest}" in server.stderr()


def test_push_by_digest_only_is_visible_when_asked_for(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    tagged, untagged = make_image("tagged"), make_image("untagged")
    push_image(registry.url, name, tagged, "v1")
    push_image(registry.url, name, untagged, untagged.digest)

    # the registry API cannot list untagged manifests: not seen until named
    assert tags_by_digest(ecr, name) == {tagged.digest: {"v1"}}

    details = ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": untagged.digest}])
    assert [d["imageDigest"] for d in details["imageDetails"]] == [untagged.digest]
    assert "imageTags" not in details["imageDetails"][0]
    assert details["imageDetails"][0]["imageManifestMediaType"] == DOCKER_MANIFEST_V2

    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": untagged.digest}])
    assert got["images"][0]["imageManifest"] == untagged.manifest.decode()
    # once seen it stays listed, like any untagged ECR image
    assert tags_by_digest(ecr, name) == {tagged.digest: {"v1"}, untagged.digest: set()}


def test_unknown_digest_is_image_not_found(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    missing = "sha256:" + "0" * 64
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": missing}])
    assert e.value.response["Error"]["Code"] == "ImageNotFoundException"
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": missing}])
    assert got["images"] == [] and got["failures"][0]["failureCode"] == "ImageNotFound"


def test_registry_repository_without_ecr_repository_is_not_created(ecr, registry):
    name = repo_name("ghost")
    push_image(registry.url, name, make_image("ghost"), "v1")

    assert name not in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    for call, kwargs in [
        (ecr.describe_images, {}),
        (ecr.list_images, {}),
        (ecr.batch_get_image, {"imageIds": [{"imageTag": "v1"}]}),
    ]:
        with pytest.raises(ClientError) as e:
            call(repositoryName=name, **kwargs)
        assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_missing_repository_errors_are_400_json(ecr):
    # moto 5.2.5 raises a bare Exception (HTML 500) in PutImage; the extension fixes it
    image = make_image("nowhere")
    calls = [
        (ecr.put_image, {"repositoryName": "astrolens/nowhere", "imageManifest": image.manifest.decode(), "imageTag": "v1"}),
        (ecr.describe_repositories, {"repositoryNames": ["astrolens/nowhere"]}),
    ]
    for call, kwargs in calls:
        with pytest.raises(ClientError) as e:
            call(**kwargs)
        assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "astrolens/nowhere" in e.value.response["Error"]["Message"]


def test_put_image_into_existing_repository_still_works(ecr):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    image = make_image("api-put")
    put = ecr.put_image(
        repositoryName=name, imageManifest=image.manifest.decode(), imageTag="api", imageDigest=image.digest
    )
    assert put["image"]["imageId"] == {"imageDigest": image.digest, "imageTag": "api"}
    # not in the registry (PutImage is not written through), but kept in moto's state
    assert tags_by_digest(ecr, name) == {image.digest: {"api"}}


def test_registry_push_takes_a_tag_from_an_api_only_image(ecr, registry):
    # PutImage is not written through to the registry, so that image exists in
    # moto only; a registry push of the same tag moves the tag, as on AWS.
    name = repo_name()
    ecr.create_repository(repositoryName=name, imageTagMutability="MUTABLE")
    api_only, pushed = make_image("api-only"), make_image("pushed")
    ecr.put_image(
        repositoryName=name, imageManifest=api_only.manifest.decode(), imageTag="edge", imageDigest=api_only.digest
    )
    assert tags_by_digest(ecr, name) == {api_only.digest: {"edge"}}

    push_image(registry.url, name, pushed, "edge")

    assert tags_by_digest(ecr, name) == {pushed.digest: {"edge"}, api_only.digest: set()}


def test_manifest_deleted_from_registry_disappears_from_ecr(ecr, registry):
    name = repo_name()
    ecr.create_repository(repositoryName=name)
    keep, drop = make_image("keep"), make_image("drop")
    push_image(registry.url, name, keep, "keep")
    push_image(registry.url, name, drop, "drop")
    assert tags_by_digest(ecr, name) == {keep.digest: {"keep"}, drop.digest: {"drop"}}

    r = requests.delete(f"{registry.url}/v2/{name}/manifests/{drop.digest}", timeout=10)
    assert r.status_code == 202, r.text

    assert tags_by_digest(ecr, name) == {keep.digest: {"keep"}}
    assert ecr.list_images(repositoryName=name)["imageIds"] == [{"imageDigest": keep.digest, "imageTag": "keep"}]


def test_port_in_use_fails_fast_with_a_clear_message():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cmd = server_command(port, "http://127.0.0.1:1")
        result = subprocess.run(cmd, env=server_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
    assert "listening on" not in result.stdout


def test_registry_down_answers_from_state_with_a_warning_and_sigterm_exits_0(tmp_path):
    reg = start_registry(tmp_path / "reg")
    # registry URL from the environment this time
    srv = start_server(tmp_path, None, ASTROLENS_REGISTRY_URL=reg.url)
    try:
        ecr = srv.ecr()
        name = repo_name()
        ecr.create_repository(repositoryName=name)
        image = make_image("survivor")
        push_image(reg.url, name, image, "v1")
        assert tags_by_digest(ecr, name) == {image.digest: {"v1"}}
        assert "unavailable" not in srv.stderr()

        reg.stop()

        assert tags_by_digest(ecr, name) == {image.digest: {"v1"}}
        listed = ecr.list_images(repositoryName=name)["imageIds"]
        assert listed == [{"imageDigest": image.digest, "imageTag": "v1"}]
        err = srv.stderr()
        assert f"WARNING astrolens_moto.ecr: registry {reg.url} unavailable, answering describe_images" in err
        assert "answering list_images from moto's state" in err
        assert ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"] == reg.url
    finally:
        reg.stop()
        code = srv.stop()
    assert code == 0
