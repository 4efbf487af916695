"""Check deploy/k8s and deploy/docker offline (`make deploy-check`); exit 1 on any fault.

1. Render every kustomization (the base and each overlay) with ``kubectl kustomize``.
2. Validate each rendered object against the Kubernetes JSON schemas of every version in
   ``KUBERNETES_VERSIONS`` (``kubernetes-validate --strict``: unknown fields are errors too, and
   so is an object of a kind or apiVersion those schemas do not have).
3. Check the rules deploy/k8s/README.md promises: non-root pods with the RuntimeDefault seccomp
   profile, no service account token, read-only root filesystems, no privilege escalation, all
   capabilities dropped, resource requests and limits, liveness and readiness probes (``/healthz``
   and ``/readyz`` on the pacs-cloud services), images with a pinned tag, autoscaling/v2
   HorizontalPodAutoscalers for the api and the exporter, default-deny NetworkPolicies where
   the component is used.
4. Give each pacs-cloud container's environment (its ConfigMaps, Secrets and, for the bridge,
   its configuration file) to that service's own ``Settings``: a configuration the service
   would refuse at start fails here (the overlays; the base references Secrets, authentication
   among them, that only a site's overlay provides).
5. Lint the Dockerfiles with hadolint.

    python scripts/check_manifests.py [--kubectl PATH] [--tools-bin DIR]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
DOCKERFILES = sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile"))
#: The oldest Kubernetes version the manifests are meant for, and the newest schemas known.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
#: pacs-cloud's own services: the Settings class that reads each one's environment.
SERVICES = {
    "pacs-api": "pacs_api.settings:Settings",
    "pacs-dimse-bridge": "pacs_bridge.settings:Settings",
    "pacs-exporter": "pacs_exporter.settings:Settings",
}
AUTOSCALED = {"pacs-api", "pacs-exporter"}
#: Builds a service's Settings in a clean process; faults by name and message, never the values
#: (a Secret's database URL holds a password).
SETTINGS_PROBE = """
from pydantic import ValidationError
from {module} import {cls}
try:
    {cls}()
except ValidationError as exc:
    raise SystemExit("\\n".join(
        f"{{'.'.join(map(str, e['loc'])) or 'settings'}}: {{e['msg']}}" for e in exc.errors()
    ))
except Exception as exc:
    raise SystemExit(f"{{type(exc).__name__}}: {{exc}}")
"""

Obj = dict[str, Any]


def kustomizations() -> list[Path]:
    """The base and every overlay (components are rendered through the overlays using them)."""
    overlays = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    return [K8S / "base", *overlays]


def render(kubectl: str, path: Path) -> str:
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise Fault(f"kubectl kustomize {path.relative_to(ROOT)}: {result.stderr.strip()}")
    return result.stdout


class Fault(Exception):
    """A check that failed."""


def validate_schemas(tools_bin: Path, rendered: str, name: str) -> list[str]:
    faults = []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-") as file:
        file.write(rendered)
        file.flush()
        for version in KUBERNETES_VERSIONS:
            result = subprocess.run(
                [str(tools_bin / "kubernetes-validate"), "--strict", "--quiet"]
                + ["--kubernetes-version", version, file.name],
                capture_output=True,
                text=True,
                check=False,
            )
            output = (result.stdout + result.stderr).strip()
            # An object with no schema (a misspelt kind, a removed apiVersion) is only a
            # warning to kubernetes-validate; pacs-cloud uses no custom resources: a fault.
            unknown = [line for line in output.splitlines() if line.startswith("WARN")]
            if result.returncode != 0 or unknown:
                faults.append(f"Kubernetes {version} schemas:\n{output}")
    return faults


def pod_spec(obj: Obj) -> Obj | None:
    if obj.get("kind") not in WORKLOAD_KINDS:
        return None
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def containers(spec: Obj) -> Iterator[Obj]:
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def check_workload(obj: Obj) -> list[str]:
    """The hardening rules of deploy/k8s/README.md, for one workload."""
    spec = pod_spec(obj)
    if spec is None:
        return []
    name = obj["metadata"]["name"]
    where = f"{obj['kind']}/{name}"
    faults = []
    pod = spec.get("securityContext", {})
    if pod.get("runAsNonRoot") is not True:
        faults.append(f"{where}: securityContext.runAsNonRoot is not true")
    if pod.get("runAsUser") in (None, 0):
        faults.append(f"{where}: securityContext.runAsUser is not a non-root user id")
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        faults.append(f"{where}: securityContext.seccompProfile.type is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        faults.append(f"{where}: automountServiceAccountToken is not false")
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        faults.append(f"{where}: uses the host's network, PID or IPC namespace")
    for container in containers(spec):
        at = f"{where} container {container['name']}"
        sc = container.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            faults.append(f"{at}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            faults.append(f"{at}: readOnlyRootFilesystem is not true")
        if sc.get("privileged"):
            faults.append(f"{at}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            faults.append(f"{at}: capabilities.drop is not [ALL]")
        if sc.get("capabilities", {}).get("add"):
            faults.append(f"{at}: adds capabilities")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(kind, {}))
            if missing:
                faults.append(f"{at}: no resources.{kind} for {', '.join(sorted(missing))}")
        image = container.get("image", "")
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        if "@sha256:" not in image and tag in ("", "latest"):
            faults.append(f"{at}: image {image!r} is not pinned to a tag or digest")
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in container:
                faults.append(f"{at}: no {probe}")
        if name in SERVICES:
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = container.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    faults.append(f"{at}: {probe} is not an HTTP GET of {path} (got {got!r})")
            if spec.get("enableServiceLinks") is not False:
                faults.append(
                    f"{where}: enableServiceLinks is not false (a Service's docker-link "
                    "variables, e.g. PACS_API_PORT=tcp://..., would reach the settings)"
                )
    return faults


def check_objects(objects: list[Obj]) -> list[str]:
    faults: list[str] = []
    for obj in objects:
        faults += check_workload(obj)
        if obj.get("kind") == "ServiceAccount" and obj.get("automountServiceAccountToken") is not (
            False
        ):
            faults.append(f"ServiceAccount/{obj['metadata']['name']}: token automounted")
    found = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    for service in SERVICES:
        if ("Deployment", service) not in found:
            faults.append(f"no Deployment {service}")
        if ("ServiceAccount", service) not in found:
            faults.append(f"no ServiceAccount {service}")
    for service in AUTOSCALED:
        hpa = found.get(("HorizontalPodAutoscaler", service))
        if hpa is None or hpa["apiVersion"] != "autoscaling/v2":
            faults.append(f"no autoscaling/v2 HorizontalPodAutoscaler for {service}")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if policies and not any(is_default_deny(p) for p in policies):
        faults.append("NetworkPolicies without a default deny of ingress and egress")
    return faults


def is_default_deny(policy: Obj) -> bool:
    """A policy that selects every pod and admits nothing, in either direction."""
    spec = policy["spec"]
    return (
        spec.get("podSelector") == {}
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes", []))
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def container_environment(container: Obj, found: dict[tuple[str, str], Obj]) -> dict[str, str]:
    """The environment a container gets from its ConfigMaps, Secrets and literal values."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = found.get(("ConfigMap", source["configMapRef"]["name"]))
            env.update((cm or {}).get("data", {}))
        if "secretRef" in source:
            secret = found.get(("Secret", source["secretRef"]["name"]))
            for key, value in (secret or {}).get("data", {}).items():
                env[key] = base64.b64decode(value).decode()
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env


def missing_secrets(container: Obj, found: dict[tuple[str, str], Obj]) -> list[str]:
    """The Secrets *container* takes its environment from that the render does not hold."""
    names = [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]
    return [name for name in names if ("Secret", name) not in found]


def check_settings(objects: list[Obj]) -> list[str]:
    """Each service's Settings accept the environment (and the bridge its file) rendered here."""
    found = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    faults = []
    for service, settings in SERVICES.items():
        deployment = found.get(("Deployment", service))
        if deployment is None:
            continue
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            absent = missing_secrets(container, found)
            if absent:
                # The base references Secrets each site provides (authentication among them):
                # its settings are checked through the overlays that define them.
                print(
                    f"  {service}: settings not checked here (Secrets {', '.join(absent)} "
                    "are not part of this kustomization)"
                )
                continue
            env = container_environment(container, found)
            with tempfile.TemporaryDirectory() as tmp:
                # ConfigMap volumes: their files at a local path, the variables pointed there.
                for mount in container.get("volumeMounts", []):
                    volume = volumes.get(mount["name"], {})
                    if "configMap" not in volume:
                        continue
                    cm = found.get(("ConfigMap", volume["configMap"]["name"]), {})
                    local = Path(tmp) / mount["name"]
                    local.mkdir()
                    for file, text in cm.get("data", {}).items():
                        (local / file).write_text(text)
                    for key, value in env.items():
                        if value.startswith(mount["mountPath"].rstrip("/") + "/"):
                            env[key] = str(local) + value[len(mount["mountPath"].rstrip("/")) :]
                module, _, cls = settings.partition(":")
                code = SETTINGS_PROBE.format(module=module, cls=cls)
                base = {k: v for k, v in os.environ.items() if not k.startswith("PACS_")}
                result = subprocess.run(
                    [sys.executable, "-c", code],
                    env=base | env,
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd=tmp,
                )
            if result.returncode != 0:
                faults.append(
                    f"{service}'s settings refuse the rendered configuration:\n  "
                    + "\n  ".join(result.stderr.strip().splitlines()[-12:])
                )
    return faults


def lint_dockerfiles(tools_bin: Path) -> list[str]:
    if not DOCKERFILES:
        return ["no Dockerfiles in deploy/docker"]
    result = subprocess.run(
        [str(tools_bin / "hadolint"), "--no-color", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        return [f"hadolint:\n{(result.stdout + result.stderr).strip()}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    parser.add_argument(
        "--tools-bin",
        type=Path,
        default=ROOT / ".tools" / "deploy-check" / "bin",
        help="where kubernetes-validate and hadolint are",
    )
    args = parser.parse_args()

    faults: list[str] = []
    for path in kustomizations():
        name = str(path.relative_to(ROOT))
        try:
            rendered = render(args.kubectl, path)
        except Fault as exc:
            faults.append(str(exc))
            continue
        objects = [o for o in yaml.safe_load_all(rendered) if o]
        checks = (
            validate_schemas(args.tools_bin, rendered, path.name)
            + check_objects(objects)
            + check_settings(objects)
        )
        faults += [f"{name}: {fault}" for fault in checks]
        status = "ok" if not checks else f"{len(checks)} fault(s)"
        versions = ", ".join(KUBERNETES_VERSIONS)
        print(f"{name}: {len(objects)} objects, schemas of Kubernetes {versions}: {status}")
    docker = lint_dockerfiles(args.tools_bin)
    faults += docker
    print(f"hadolint: {len(DOCKERFILES)} Dockerfiles: {'ok' if not docker else 'faults'}")
    for fault in faults:
        print(f"FAULT {fault}", file=sys.stderr)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
