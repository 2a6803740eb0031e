"""The Docker image and the compose file, checked without Docker: what they name exists and fits together.

No Docker daemon runs where these tests run (nor does the image get built here): they parse the Dockerfile and
deploy/compose.yaml and check every file, service, volume, variable, port and command they refer to.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from service.cli import build_parser
from sqlalchemy import make_url

from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")


def dockerfile_instructions(path: Path = REPO_ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1].strip()}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile_instructions() if word == name]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list; the shell form is refused (signals would go to a shell)."""
    assert args.startswith("["), f"not exec form: {args}"
    return json.loads(args)


def dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str) -> bool:
    # Docker's patterns: fnmatch-like, `**` any depth; a pattern also excludes everything below a match.
    parts = relative.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", ""))
               for pattern in dockerignore_patterns() for p in prefixes)


def env_fields(node: object) -> list[str]:
    """The variable names of every ``*_env`` field (a secret read from the environment) in parsed settings."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if str(k).endswith("_env")] + [n for v in node.values()
                                                                        for n in env_fields(v)]
    if isinstance(node, list):
        return [n for v in node for n in env_fields(v)]
    return []


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


# --- Dockerfile -----------------------------------------------------------------------------------------

def test_base_image_user_and_no_training_extra():
    assert instruction("FROM") == ["python:3.11-slim"]
    [user] = instruction("USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    installs = " ".join(a for a in instruction("RUN") if "pip install" in a)
    assert "pip install" in installs and "train" not in installs
    assert "fonts-noto-cjk" in " ".join(instruction("RUN"))


def test_copy_sources_exist_and_are_in_the_build_context():
    copies = instruction("COPY")
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            path = REPO_ROOT / source
            assert path.exists(), f"Dockerfile: COPY {source}: no such file in the repository"
            assert not ignored(source), f"Dockerfile: COPY {source}: excluded by .dockerignore"


def test_models_are_baked_in_and_found():
    env = " ".join(instruction("ENV"))
    match = re.search(r"STREETWATCH_MODELS=(\S+)", env)
    assert match, "Dockerfile: ENV STREETWATCH_MODELS (models are not under site-packages)"
    [workdir] = instruction("WORKDIR")
    destinations = {str(Path(workdir) / shlex.split(a)[-1]).rstrip("/") for a in instruction("COPY")}
    assert str(Path(match.group(1))) in {str(Path(d).resolve()) if d.startswith("/") else d for d in destinations}
    cards = [p for p in (REPO_ROOT / "models").glob("*/card.yaml")
             if not ignored(str(p.parent.relative_to(REPO_ROOT)))]
    files = [yaml.safe_load(c.read_text())["file"] for c in cards]
    # The shipped models' files are in the repository (the third-party COCO ones name ${STREETWATCH_SHARED}: not
    # baked in, as that data is not redistributed with the code).
    shipped = [c.parent / f for c, f in zip(cards, files) if "${" not in f]
    assert {p.parent.name for p in shipped} >= {"street", "aerial"} and all(p.is_file() for p in shipped)
    assert not ignored("models/street/street.onnx") and ignored("models/street/street.pt")


@pytest.mark.parametrize("path, excluded", [
    (".venv/bin/python", True), (".git/HEAD", True), ("var/streetwatch.sqlite3", True), ("tests/x.py", True),
    ("deploy/.env", True), ("service/app.py", False), ("examples/config.yaml", False),
    ("service/__pycache__/app.cpython-311.pyc", True),
])
def test_dockerignore(path, excluded):
    assert ignored(path) is excluded


def test_command_is_a_real_cli_command_on_the_exposed_and_checked_port(capsys):
    [entrypoint] = instruction("ENTRYPOINT")
    [cmd] = instruction("CMD")
    argv = exec_form(entrypoint) + exec_form(cmd)
    assert argv[0] == "streetwatch"
    args = build_parser().parse_args(argv[1:])  # the options exist and parse
    assert args.command == "serve" and args.host == "0.0.0.0"
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([argv[1], "--help"])
    assert exc.value.code == 0 and "--settings" in capsys.readouterr().out
    assert instruction("EXPOSE") == [str(args.port)]
    [healthcheck] = instruction("HEALTHCHECK")
    assert f"127.0.0.1:{args.port}/health" in healthcheck
    assert args.settings == "/etc/streetwatch/settings.yaml"


# --- compose --------------------------------------------------------------------------------------------

def test_services_and_their_references(compose):
    services = compose["services"]
    assert set(services) == {"streetwatch", "postgres", "mosquitto"}
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name}: depends_on {dependency}: no such service"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: bind mount {source}: no such file"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes") or []}
    assert declared <= used, f"declared but unused volumes: {declared - used}"
    build = services["streetwatch"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == REPO_ROOT / "Dockerfile"


def test_every_variable_is_in_the_env_example_and_no_secret_is_written_down(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    variables = set(_VAR.findall(text))
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert variables and variables == set(example)
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "KEY", "SECRET")):
                assert _VAR.fullmatch(str(value)), f"{key}: a secret written into compose.yaml"


def test_the_mounted_settings_are_valid_and_fit_the_compose_file(compose, monkeypatch):
    service = compose["services"]["streetwatch"]
    [settings_mount] = [v for v in service["volumes"] if v.endswith("/etc/streetwatch/settings.yaml:ro")]
    raw = yaml.safe_load((DEPLOY / settings_mount.split(":")[0]).read_text(encoding="utf-8"))
    # Every variable the settings read is set by compose for the service.
    env_names = set(env_fields(raw))
    assert env_names and env_names <= set(service["environment"])
    for i, name in enumerate(sorted(env_names)):
        monkeypatch.setenv(name, f"test-secret-{i}-" + "x" * 24)
    settings = Settings.model_validate(raw)
    # The database and the broker are the compose services; the password is libpq's, from the environment.
    url = make_url(settings.database_url)
    pg = compose["services"]["postgres"]["environment"]
    assert url.host in compose["services"] and url.password is None
    assert (url.username, url.database) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    assert "PGPASSWORD" in service["environment"]
    assert settings.outbox.mqtt is not None and settings.outbox.mqtt.host in compose["services"]
    # Data lives in the volume mounted on the data folder, and the configuration there is seeded by the image.
    data_mount = next(v for v in service["volumes"] if v.startswith("streetwatch-data:"))
    data_dir = Path(data_mount.split(":")[1])
    assert data_dir in Path(settings.evidence_dir).parents and Path(settings.config_path).parent == data_dir
    assert any(shlex.split(a)[-1] == str(settings.config_path) for a in instruction("COPY"))
    # The published port reaches the port the image serves on.
    [cmd] = instruction("CMD")
    port = exec_form(cmd)[exec_form(cmd).index("--port") + 1]
    assert any(p.endswith(f":{port}") for p in service["ports"])


def test_the_seeded_camera_configuration_is_valid():
    from service.pipeline import validate_config_file

    assert validate_config_file(DEPLOY / "config.yaml") == []
