"""buildah: a daemonless image build into an OCI layout, and a push of it to a registry.

buildah reads its configuration from the environment (`CONTAINERS_*`, `REGISTRY_AUTH_FILE`, `BUILDAH_*`,
`XDG_*`), from `$HOME/.config/containers/` and `/etc/containers/`. It runs with every such variable removed,
`HOME` and `XDG_CONFIG_HOME` pointing at a folder of ours, and `CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`,
`CONTAINERS_REGISTRIES_CONF`, the signature policy and the auth file all written by us: nothing in the build
context configures it (only the Dockerfile and `.containerignore`/`.dockerignore`, which define the build).
Storage is `vfs` under a temporary folder outside the context; RUN steps use chroot isolation (buildah's
only isolation without a container runtime and cgroups; it shares the runner's network, so a build runs
only after the first gate, on code that passed it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from mlsec_actions.findings import ToolRun, ToolStatus
from mlsec_actions.tools.base import Execution, Isolation, ToolSpec, execute, safe

SPEC = ToolSpec(
    name="buildah",
    executable="buildah",
    version_args=("--version",),
    version_pattern=r"buildah version (\S+)",
    ok_exit_codes=frozenset({0}),
    install_hint="install Debian's or Ubuntu's buildah package (apt-get install buildah)",
    isolation=Isolation(discovers=("containers.conf", "storage.conf", "registries.conf", "policy.json", "auth.json"),
                        forced_flags=("--root", "--runroot", "--registries-conf"),
                        env_prefixes=("CONTAINERS_", "BUILDAH_", "REGISTRY_AUTH", "DOCKER_", "XDG_", "STORAGE_",
                                      "TMPDIR", "HOME")),
)

_POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'
# Our containers.conf: no extra mounts, env, hooks or helpers from anyone's defaults; the chroot isolation.
_CONTAINERS_CONF = '[containers]\nenv = []\nvolumes = []\nmounts = []\n[engine]\nhooks_dir = []\n'


@dataclass(frozen=True)
class Sandbox:
    """Our own folders and configuration files for one buildah run."""

    base: Path
    """The temporary folder that holds everything below (outside the build context)."""

    @property
    def root(self) -> Path:
        return self.base / "storage"

    @property
    def runroot(self) -> Path:
        return self.base / "run"

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def policy(self) -> Path:
        return self.base / "policy.json"

    @property
    def auth(self) -> Path:
        return self.base / "auth.json"

    @property
    def registries(self) -> Path:
        return self.base / "registries.conf"

    def prepare(self, auth: bytes | None = None) -> Sandbox:
        """Write our configuration; `auth`: the caller's registry credentials (else none)."""
        for folder in (self.root, self.runroot, self.home, self.home / ".config"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.base / "containers.conf").write_text(_CONTAINERS_CONF, encoding="utf-8")
        (self.base / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{self.root}"\n', encoding="utf-8")
        # No search registries: a short name (`FROM alpine`) is an error, never a guess among registries.
        self.registries.write_text('unqualified-search-registries = []\nshort-name-mode = "enforcing"\n',
                                   encoding="utf-8")
        self.policy.write_text(_POLICY, encoding="utf-8")
        self.auth.write_bytes(auth if auth is not None else b'{"auths": {}}\n')
        self.auth.chmod(0o600)
        return self

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_RUNTIME_DIR": str(self.runroot), "TMPDIR": str(self.base),
                "CONTAINERS_CONF": str(self.base / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.base / "storage.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(self.registries), "REGISTRY_AUTH_FILE": str(self.auth),
                "BUILDAH_ISOLATION": "chroot"}

    def global_args(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs",
                "--registries-conf", str(self.registries)]


@dataclass(frozen=True)
class BuildRequest:
    """What to build."""

    context: Path
    """The build context folder (the scanned tree)."""
    dockerfile: Path
    """The Dockerfile/Containerfile, inside the context."""
    tag: str
    """The local image name (`localhost/name:tag`)."""
    build_args: tuple[str, ...] = ()
    """`KEY=VALUE` build arguments."""
    timeout: float = 600.0
    """Seconds for the build, the layout and the push together."""


@dataclass(frozen=True)
class Built:
    """The result of a build."""

    run: ToolRun
    """buildah's record (failed when any step failed)."""
    image_id: str = ""
    """The image (config) digest, `sha256:...`."""
    digest: str = ""
    """The manifest digest of the OCI layout written, `sha256:...`."""
    pushed: tuple[tuple[str, str], ...] = ()
    """(reference, manifest digest) of each push."""


def _read_digest(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return text if text.startswith("sha256:") and len(text) == 71 else ""


def _step(box: Sandbox, args: list[str], request: BuildRequest, deadline: float) -> Execution:
    return execute(SPEC, [*box.global_args(), *args], timeout=max(0.1, deadline - time.monotonic()),
                   workdir=box.base, scanned=request.context, env=box.env())


def build(box: Sandbox, request: BuildRequest, layout: Path, archive: Path | None, push: tuple[tuple[str, bool], ...]
          ) -> Built:
    """Build `request` into local storage, write `layout` (and `archive`), push to each (reference, plain_http)."""
    deadline = time.monotonic() + request.timeout
    iid = box.base / "iid"
    # `=` forms throughout: several of buildah's flags take optional values and would swallow the next word.
    args = ["build", "--isolation=chroot", "--layers=true", "--format=oci",
            "--signature-policy", str(box.policy), "--authfile", str(box.auth), "--pull=missing",
            "--iidfile", str(iid), "--tag", request.tag, "--file", str(request.dockerfile)]
    for arg in request.build_args:
        args += ["--build-arg", arg]
    got = _step(box, [*args, str(request.context)], request, deadline)
    if got.run.status is not ToolStatus.OK:
        return Built(replace(got.run, message=safe(f"build failed: {got.run.message}")))
    image_id = _read_digest(iid)
    digest_file = box.base / "layout.digest"
    common = ["--signature-policy", str(box.policy), "--authfile", str(box.auth), "--format", "oci", "--quiet"]
    ref_name = request.tag.rsplit(":", 1)[1] if ":" in request.tag.rsplit("/", 1)[-1] else "latest"
    got = _step(box, ["push", *common, "--digestfile", str(digest_file), request.tag, f"oci:{layout}:{ref_name}"],
                request, deadline)
    if got.run.status is not ToolStatus.OK:
        return Built(replace(got.run, message=safe(f"writing the OCI layout failed: {got.run.message}")), image_id)
    digest = _read_digest(digest_file)
    if archive is not None:
        got = _step(box, ["push", *common[:-3], "--quiet", request.tag, f"docker-archive:{archive}:{request.tag}"],
                    request, deadline)
        if got.run.status is not ToolStatus.OK:
            return Built(replace(got.run, message=safe(f"writing the archive failed: {got.run.message}")),
                         image_id, digest)
    pushed: list[tuple[str, str]] = []
    for reference, plain_http in push:
        pushed_file = box.base / f"push-{len(pushed)}.digest"
        got = _step(box, ["push", *common, f"--tls-verify={'false' if plain_http else 'true'}", "--digestfile",
                          str(pushed_file), request.tag, f"docker://{reference}"], request, deadline)
        if got.run.status is not ToolStatus.OK:
            return Built(replace(got.run, message=safe(f"push to {reference} failed: {got.run.message}")),
                         image_id, digest, tuple(pushed))
        pushed.append((reference, _read_digest(pushed_file)))
    return Built(got.run, image_id, digest, tuple(pushed))
