"""Deployment files: no container engine here, so they are read as data and held to what
the app knows (every variable they set is one `Settings.from_env` reads) and to what an
operator expects of them (probes, replicas, a non-root user, hardening)."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import ENV_VARS, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# Variables of the Python runtime, not of the app.
RUNTIME_VARS = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


def kubernetes_objects() -> Iterator[dict[str, Any]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield document


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in kubernetes_objects() if o.get("kind") == kind]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def environment_names(environment: Any) -> set[str]:
    """Compose's `environment` as a mapping or as a list of KEY=value."""
    if isinstance(environment, dict):
        return set(environment)
    return {entry.split("=", 1)[0] for entry in environment or []}


def test_env_vars_is_exactly_what_settings_reads() -> None:
    seen: set[str] = set()

    class Recording(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return super().get(key, default)

    Settings.from_env(Recording())
    assert set(ENV_VARS) == seen
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_compose_sets_only_known_variables_and_runs_postgres() -> None:
    services = compose()["services"]
    app = services["app"]
    assert environment_names(app["environment"]) <= set(ENV_VARS)
    assert app["env_file"]
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"

    db = services["db"]
    assert db["image"].startswith("postgres:")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]
    # The password in the app's DATABASE_URL is the database's.
    assert db["environment"]["POSTGRES_PASSWORD"] in app["environment"]["DATABASE_URL"]


def test_kubernetes_runs_two_probed_non_root_replicas() -> None:
    [deployment] = of_kind("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    port = container["ports"][0]
    assert port["containerPort"] == 3000
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    [service] = of_kind("Service")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_kubernetes_sets_only_known_variables() -> None:
    [deployment] = of_kind("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    names = {entry["name"] for entry in container["env"]}
    assert names <= set(ENV_VARS)
    [secret] = of_kind("Secret")
    assert set(secret["stringData"]) <= set(ENV_VARS)
    assert [source["secretRef"]["name"] for source in container["envFrom"]] == [
        secret["metadata"]["name"]
    ]
    for config_map in of_kind("ConfigMap"):
        assert set(config_map.get("data", {})) <= set(ENV_VARS)


def test_the_secret_template_is_for_postgres_and_parses_as_settings() -> None:
    [secret] = of_kind("Secret")
    values = secret["stringData"]
    assert values["DATABASE_URL"].startswith("postgresql://")
    settings = Settings.from_env(values)
    assert settings.has_github_credentials


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secret.example.yaml"}


def systemd_unit() -> dict[str, list[str]]:
    """`Key=value` lines of the unit (keys repeat, so a list each)."""
    unit: dict[str, list[str]] = {}
    for raw in (DEPLOY / "tembo-dispatch.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        unit.setdefault(key, []).append(value)
    return unit


def test_systemd_unit_sets_only_known_variables_and_is_hardened() -> None:
    unit = systemd_unit()
    names = {
        assignment.split("=", 1)[0]
        for value in unit["Environment"]
        for assignment in shlex.split(value)
    }
    assert names <= set(ENV_VARS)
    assert unit["ExecStart"][0].endswith("python -m bot serve")
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }
    for key, value in hardening.items():
        assert unit[key] == [value], key
    assert unit["DynamicUser"] == ["yes"] or unit.get("User", ["root"]) != ["root"]


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = text.split("\nFROM ")[-1]
    assert re.match(r"python:3\.\d+-slim\b", final)
    users = re.findall(r"^USER (\S+)", final, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthcheck = re.search(r"^HEALTHCHECK .*?(?<!\\)$", final, re.MULTILINE | re.DOTALL)
    assert healthcheck and "/healthz" in healthcheck.group(0)
    assert 'CMD ["python", "-m", "bot", "serve"]' in final
    assert "COPY app.yml" in final  # the setup page's manifest


def test_dockerfile_sets_only_known_variables() -> None:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    names = {
        assignment.split("=", 1)[0]
        for line in text.splitlines()
        if line.startswith("ENV ")
        for assignment in shlex.split(line[4:])
    }
    assert names
    assert names <= set(ENV_VARS) | RUNTIME_VARS | {
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }


def test_env_example_names_only_known_variables_and_parses() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    assert set(values) <= set(ENV_VARS)
    for required in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "DATABASE_URL", "TEMBO_API_KEY"):
        assert required in values
    Settings.from_env(values)  # the defaults it shows are valid


@pytest.mark.parametrize(
    "path", [DEPLOY / "compose.yaml", *sorted(KUBERNETES.glob("*.yaml")), ROOT / "app.yml"]
)
def test_every_yaml_file_parses(path: Path) -> None:
    assert list(yaml.safe_load_all(path.read_text()))


def test_systemd_analyze_accepts_the_unit() -> None:
    import shutil
    import subprocess

    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed: the unit was only parsed")
    result = subprocess.run(  # noqa: S603 - a fixed tool on a file of ours
        [tool, "verify", str(DEPLOY / "tembo-dispatch.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The unit runs a checkout installed under /opt, which this machine does not have.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert problems == []


def locked(path: Path) -> dict[str, list[str]]:
    """{name: [sha256 hashes]} of a `pip --require-hashes` requirements file."""
    found: dict[str, list[str]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            name = re.split(r"[=\s;]", line, maxsplit=1)[0].lower().replace("_", "-")
            assert "==" in line, line
            found[name] = []
        elif "--hash=sha256:" in line:
            found[name].append(line.split("sha256:")[1].split()[0])
    return found


def declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_lock_files_pin_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = declared(project["project"]["dependencies"])
    test = declared(project["project"]["optional-dependencies"]["test"])
    backend = declared(project["build-system"]["requires"])
    app, dev = locked(ROOT / "requirements" / "app.txt"), locked(ROOT / "requirements" / "dev.txt")
    assert runtime | backend <= set(app)
    assert runtime | test | backend <= set(dev)
    assert not {"pytest", "hypothesis", "ruff", "mypy", "playwright"} & set(app)  # no test tools
    for name, hashes in {**app, **dev}.items():
        assert hashes, f"{name} has no hash"
    # uvicorn's [standard] extra is trimmed to what is used.
    assert {"uvloop", "httptools"} <= set(app)
    assert not {"websockets", "watchfiles", "python-dotenv"} & set(app)


def test_dockerfile_installs_the_hashed_lock_and_nothing_unpinned() -> None:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert any("--require-hashes -r requirements/app.txt" in line for line in installs)
    project = [line for line in installs if "requirements" not in line]
    assert project and all("--no-deps" in line for line in project)
