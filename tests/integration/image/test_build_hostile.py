"""The build context is hostile: its own containers.conf, registries.conf, storage.conf, policy and auth files, a
HOME and CONTAINERS_* environment pointing into it, workflow-command text in the Dockerfile and in a RUN step's
output, a symlink to a host file. None of it configures buildah, reaches the host, or injects an output line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.oci_layout import Layout, mlsec, service_context

pytestmark = pytest.mark.integration
PLANTED = "PLANTED_BY_THE_TREE=yes"


def _hostile(folder: Path) -> Path:
    ctx = service_context(folder, secret=False)
    conf = f'[containers]\nenv = ["{PLANTED}"]\nvolumes = ["/etc:/host-etc"]\n'
    for where in (ctx, ctx / ".config" / "containers", ctx / "etc" / "containers"):
        where.mkdir(parents=True, exist_ok=True)
        (where / "containers.conf").write_text(conf)
        (where / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{ctx}/evil-storage"\n'
                                            f'runroot = "{ctx}/evil-run"\n')
        (where / "registries.conf").write_text('unqualified-search-registries = ["evil.example"]\n')
        (where / "policy.json").write_text('{"default": [{"type": "reject"}]}\n')
        (where / "auth.json").write_text('{"auths": {"evil.example": {"auth": "ZXZpbDpldmls"}}}\n')
    (ctx / ".containerignore").write_text("../\n!../../etc/shadow\n")
    (ctx / "hostname-link").symlink_to("/etc/hostname")
    (ctx / "Containerfile").write_text(
        "# ::error file=Containerfile,line=1::injected from a comment\n"
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo ::error::from-run; echo ::set-output name=digest::sha256:evil; '
        'echo ok > /ran"]\n'
        "USER 65532\n")
    return ctx


def test_the_tree_configures_nothing_and_injects_nothing(tmp_path: Path) -> None:
    ctx = _hostile(tmp_path / "ctx")
    out = tmp_path / "out"
    gh_output = tmp_path / "gh-output"
    gh_output.write_text("")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ctx), "XDG_CONFIG_HOME": str(ctx / ".config"),
           "CONTAINERS_CONF": str(ctx / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(ctx / "storage.conf"),
           "CONTAINERS_REGISTRIES_CONF": str(ctx / "registries.conf"), "REGISTRY_AUTH_FILE": str(ctx / "auth.json"),
           "BUILDAH_ISOLATION": "rootless", "GITHUB_OUTPUT": str(gh_output), "GITHUB_ACTIONS": "true"}
    proc = mlsec("build", str(ctx), "--sarif", str(out / "build.sarif"), "--layout", str(out / "layout"),
                 "--image-json", str(out / "image.json"), "--sbom", str(out / "sbom.json"), env=env, cwd=ctx)
    assert proc.returncode == 0, proc.stderr
    layout = Layout(out / "layout")
    config = layout.config()["config"]
    assert PLANTED not in json.dumps(config) and "Volumes" not in config
    assert layout.files()["ran"] == b"ok\n"
    assert not (ctx / "evil-storage").exists() and not (ctx / "evil-run").exists()
    for stream in (proc.stdout, proc.stderr):
        assert not [ln for ln in stream.splitlines() if ln.lstrip().startswith("::")], stream
    outputs = dict(ln.split("=", 1) for ln in gh_output.read_text().splitlines() if "=" in ln)
    assert outputs["digest"] == layout.manifest_digest() != "sha256:evil"
    assert not Path("/ran").exists()


def test_a_symlink_to_a_host_file_copies_nothing_of_it(tmp_path: Path) -> None:
    ctx = _hostile(tmp_path / "ctx")
    (ctx / "Containerfile").write_text("FROM scratch\nCOPY hostname-link /stolen\nUSER 65532\n")
    out = tmp_path / "out"
    proc = mlsec("build", str(ctx), "--sarif", str(out / "build.sarif"), "--layout", str(out / "layout"),
                 "--image-json", str(out / "image.json"), env={"PATH": "/usr/bin:/bin"})
    # buildah resolves the link inside the context (as if the context were /): /etc/hostname is not there, so the
    # build fails (exit 1, fail closed) and nothing of the host's file is read. buildah words the failure either as
    # "no such file" or, when its copier child exits first, as a broken pipe; both name the link.
    assert proc.returncode == 1, proc.stderr
    assert "buildah failed" in proc.stderr and "hostname-link" in proc.stderr
    assert not (out / "image.json").exists()
    host_name = Path("/etc/hostname").read_bytes().strip()
    if (out / "layout").exists() and host_name:
        for blob in (out / "layout").rglob("*"):
            assert not blob.is_file() or host_name not in blob.read_bytes(), blob
    assert str((ctx / "hostname-link").readlink()) == "/etc/hostname"
