"""Deployment files: the Kubernetes manifests, docker-compose.yml and the Grafana dashboard fit the app."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from sentiment.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DASHBOARD = ROOT / "deploy" / "grafana" / "sentiment-dashboard.json"

# Every series the dashboard may query. The HTTP ones come from Litestar's PrometheusMiddleware: names are
# f"{PrometheusConfig.prefix}_..." (the prefix names them, not app_name); labels method, path, status_code,
# app_name. The app must configure prefix="sentiment" for these names to exist.
LITESTAR_HTTP_METRICS = {
    "sentiment_requests_total",
    "sentiment_requests_error_total",
    "sentiment_requests_in_progress",
    "sentiment_request_duration_seconds_bucket",
    "sentiment_request_duration_seconds_count",
    "sentiment_request_duration_seconds_sum",
}
SERVICE_METRICS = {
    "sentiment_batch_size_bucket",
    "sentiment_queue_time_seconds_bucket",
    "sentiment_inference_time_seconds_bucket",
    "sentiment_predictions_total",
    "sentiment_fallbacks_total",
    "sentiment_breaker_state",
    "sentiment_breaker_transitions_total",
    "sentiment_pending_writes",
    "sentiment_journal_bytes",
    "sentiment_dropped_writes_total",
    "sentiment_queue_depth",
    "sentiment_cache_hits_total",
    "sentiment_cache_misses_total",
}
KNOWN_METRICS = LITESTAR_HTTP_METRICS | SERVICE_METRICS
# What the dashboard must show at least.
REQUIRED_METRICS = {
    "sentiment_requests_total",
    "sentiment_request_duration_seconds_bucket",
    "sentiment_batch_size_bucket",
    "sentiment_queue_time_seconds_bucket",
    "sentiment_inference_time_seconds_bucket",
    "sentiment_predictions_total",
    "sentiment_fallbacks_total",
    "sentiment_breaker_state",
    "sentiment_pending_writes",
}


# --- loading --------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")]):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
    return docs


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment() -> dict[str, Any]:
    return one("Deployment", "sentiment")


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_var(c: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in c.get("env", []) if e["name"] == name]
    assert len(found) == 1, f"{name} is not set exactly once in container {c['name']}"
    return found[0]


def resolve_port(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in c["ports"] if p.get("name") == port]
    assert named, f"container has no port named {port!r}"
    return named[0]


def quantity(value: str | float) -> float:
    """A Kubernetes quantity ("500m", "2", "1Gi", "512Mi") as a number of cores or bytes."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels", [])))
    return out


PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
PROMQL_WORDS |= {"by", "without", "on", "ignoring", "group_left", "group_right"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers not functions, labels or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors ([5m], [$__rate_interval])
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):  # a function or an aggregation
            continue
        if match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def dashboard_expressions() -> list[str]:
    panels = all_panels(dashboard()["panels"])
    exprs = [t["expr"] for p in panels for t in p.get("targets", []) if t.get("expr")]
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query" and query:
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
            exprs.append(selector.group(1) if selector else query)
    return exprs


# --- Kubernetes -----------------------------------------------------------------------------------


def test_every_manifest_has_api_version_kind_and_name() -> None:
    docs = manifests()
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc


def test_manifests_define_deployment_service_configmap_secret_hpa_and_migrate_job() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in manifests()}
    for expected in [
        ("Deployment", "sentiment"),
        ("Service", "sentiment"),
        ("ConfigMap", "sentiment-config"),
        ("Secret", "sentiment-secrets"),
        ("HorizontalPodAutoscaler", "sentiment"),
        ("Job", "sentiment-migrate"),
    ]:
        assert expected in kinds


def test_deployment_runs_three_replicas_of_the_image_on_port_8080() -> None:
    dep = deployment()
    c = container(dep)
    assert dep["spec"]["replicas"] == 3
    assert c["image"] == "sentiment:latest"
    assert 8080 in [p["containerPort"] for p in c["ports"]]
    # The selector picks the pods the template makes.
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_deployment_probes_readiness_on_ready_and_liveness_on_health() -> None:
    c = container(deployment())
    readiness, liveness = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/ready" and resolve_port(c, readiness["port"]) == 8080
    assert liveness["path"] == "/health" and resolve_port(c, liveness["port"]) == 8080
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["periodSeconds"] > 0 and c[probe]["failureThreshold"] >= 1


def test_deployment_startup_probe_on_health_allows_for_the_model_load() -> None:
    c = container(deployment())
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/health" and resolve_port(c, startup["httpGet"]["port"]) == 8080
    # The model takes ~30 s to load: the start-up budget must comfortably exceed it.
    budget = startup.get("initialDelaySeconds", 0) + startup["periodSeconds"] * startup["failureThreshold"]
    assert budget >= 60


def test_deployment_requests_and_limits_cpu_and_memory_with_limits_not_below_requests() -> None:
    resources = container(deployment())["resources"]
    for resource in ("cpu", "memory"):
        request, limit = resources["requests"][resource], resources["limits"][resource]
        assert quantity(limit) >= quantity(request) > 0


def test_deployment_runs_as_non_root_user_10001_without_privilege_escalation() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    c = container(deployment())
    merged = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    assert merged["runAsNonRoot"] is True
    assert merged["runAsUser"] == 10001
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_read_only_root_filesystem_has_writable_tmp_and_data_volumes() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    c = container(deployment())
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for path in ("/tmp", "/data"):
        assert path in mounts and not mounts[path].get("readOnly", False)
        assert "emptyDir" in volumes[mounts[path]["name"]]


def test_the_journal_outlives_the_pod_and_shutdown_fits_the_grace_period() -> None:
    """Rows a pod could not write by the end of its shutdown stay in a journal on a volume every replica
    mounts (the next to start adopts them), and the grace period covers preStop plus the service's bound."""
    pod = deployment()["spec"]["template"]["spec"]
    c = container(deployment())
    data = one("ConfigMap", "sentiment-config")["data"]
    database_url = one("Secret", "sentiment-secrets")["stringData"]["database-url"]
    settings = Settings.from_env({**data, "DATABASE_URL": database_url})
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volume = {v["name"]: v for v in pod["volumes"]}[mounts[settings.writer.journal_dir]["name"]]
    claim = one("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pre_stop_s = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pre_stop_s + settings.server.shutdown_s < pod["terminationGracePeriodSeconds"]


def test_every_volume_mount_has_a_volume_and_every_claim_exists() -> None:
    claims = {d["metadata"]["name"] for d in manifests() if d["kind"] == "PersistentVolumeClaim"}
    for workload in (deployment(), one("Job", "sentiment-migrate")):
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_admin_token_and_database_url_come_from_the_secret_in_the_manifests() -> None:
    secret = one("Secret", "sentiment-secrets")
    keys = {**secret.get("stringData", {}), **secret.get("data", {})}
    c = container(deployment())
    for name, key in (("SENTIMENT_ADMIN_TOKEN", "admin-token"), ("DATABASE_URL", "database-url")):
        ref = env_var(c, name)["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] == key and key in keys


def test_env_from_references_the_configmap_in_the_manifests() -> None:
    configmaps = {d["metadata"]["name"] for d in manifests() if d["kind"] == "ConfigMap"}
    for workload in (deployment(), one("Job", "sentiment-migrate")):
        refs = [e["configMapRef"]["name"] for e in container(workload)["envFrom"] if "configMapRef" in e]
        assert refs == ["sentiment-config"]
        assert set(refs) <= configmaps


def test_configmap_values_are_strings_and_accepted_by_settings() -> None:
    data = one("ConfigMap", "sentiment-config")["data"]
    assert all(isinstance(v, str) for v in data.values())
    for name in ("PRELOAD_MODEL", "SENTIMENT_MODELS", "OMP_NUM_THREADS"):
        assert name in data
    database_url = one("Secret", "sentiment-secrets")["stringData"]["database-url"]
    settings = Settings.from_env({**data, "DATABASE_URL": database_url})
    assert settings.log_json is True and settings.log_level == "INFO"
    assert settings.host == "0.0.0.0" and settings.port == 8080
    assert settings.torch_threads == 2
    # Replicas never migrate: the Job does, once.
    assert settings.auto_migrate is False
    assert settings.database_url.startswith("postgresql+asyncpg://")


def test_service_targets_port_8080_and_selects_only_the_deployment_pods() -> None:
    service = one("Service", "sentiment")
    c = container(deployment())
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    [port] = service["spec"]["ports"]
    assert port["port"] == 80 and resolve_port(c, port["targetPort"]) == 8080
    selector = service["spec"]["selector"]
    assert selector.items() <= deployment()["spec"]["template"]["metadata"]["labels"].items()
    job_labels = one("Job", "sentiment-migrate")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()


def test_hpa_scales_the_deployment_from_3_to_10_on_cpu_70_percent() -> None:
    hpa = one("HorizontalPodAutoscaler", "sentiment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "sentiment")
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 10
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


def test_migrate_job_runs_sentiment_db_upgrade_with_the_same_image_env_and_database_url() -> None:
    job = one("Job", "sentiment-migrate")
    c = container(job)
    assert [*c.get("command", []), *c.get("args", [])] == ["sentiment", "db", "upgrade"]
    assert c["image"] == container(deployment())["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert env_var(c, "DATABASE_URL") == env_var(container(deployment()), "DATABASE_URL")
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


# --- docker compose -------------------------------------------------------------------------------


def test_compose_builds_the_service_from_the_root_dockerfile_and_publishes_8080() -> None:
    service = compose()["services"]["sentiment"]
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context, dockerfile = build["context"], build.get("dockerfile", "Dockerfile")
    assert (COMPOSE.parent / context / dockerfile).resolve() == ROOT / "Dockerfile"
    assert "8080:8080" in [str(p) for p in service["ports"]]
    assert any(str(v).split(":")[1] == "/models" for v in service["volumes"])


def test_compose_service_uses_the_postgres_service_and_migrates_at_start() -> None:
    services = compose()["services"]
    env = compose_env(services["sentiment"])
    assert env["DATABASE_URL"] == "postgresql+asyncpg://sentiment:sentiment@postgres:5432/sentiment"
    assert env["SENTIMENT_AUTO_MIGRATE"] == "true"
    pg_env = compose_env(services["postgres"])
    assert pg_env == {name: "sentiment" for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")}


def test_compose_admin_token_comes_from_the_host_env_with_a_placeholder_default() -> None:
    env = compose_env(compose()["services"]["sentiment"])
    assert re.fullmatch(r"\$\{SENTIMENT_ADMIN_TOKEN:-[^}]+\}", env["SENTIMENT_ADMIN_TOKEN"])


def test_compose_waits_for_a_healthy_postgres_with_a_named_data_volume() -> None:
    doc = compose()
    assert doc["services"]["sentiment"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    postgres = doc["services"]["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    data = [str(v).split(":")[0] for v in postgres["volumes"] if str(v).endswith(":/var/lib/postgresql/data")]
    assert data and data[0] in (doc.get("volumes") or {})


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """Each stage's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_image_installs_the_package_not_editable_and_runs_from_the_venv_alone() -> None:
    *build, final = dockerfile_stages()
    installs = [line for stage in build for line in stage if re.match(r"RUN\b.*\bpip install\b", line)]
    assert not [line for line in installs if re.search(r"\s(-e|--editable)\b", line)], installs
    checkout = r'\bpip install ("?\./?(\[[a-z,]+\])?"?|\S+\.whl)(\s|$)'
    assert any(re.search(checkout, line) for line in installs), installs
    # With the cluster extra, the same image runs `dask worker` for `sentiment score --cluster`.
    assert any("[cluster]" in line for line in installs), installs
    # The wheel carries templates/ and migrations/: the final stage takes the venv and no source folder.
    copies = [line for line in final if line.startswith("COPY ")]
    assert copies == ["COPY --from=build /opt/venv /opt/venv"]


def test_the_image_takes_uploads_from_admins_and_key_holders_only_with_settings_that_start() -> None:
    *_, final = dockerfile_stages()
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(line for line in final if line.startswith("ENV "))))
    assert env["SENTIMENT_UPLOADS"] == "admin"
    assert Settings.from_env(env).uploads == "admin"


SCRIPTS = ROOT / "scripts"


def test_the_test_script_waits_for_the_apt_lock_and_says_so() -> None:
    script = (SCRIPTS / "test.sh").read_text()
    calls = re.findall(r"\bapt-get\s+(-o\s+\S+|\w+)", script)  # what follows each call of apt-get
    assert len(calls) >= 2 and all(call.startswith("-o DPkg::Lock::Timeout=") for call in calls), calls
    assert re.search(r"echo .*lock.*>&2", script)


# --- Grafana --------------------------------------------------------------------------------------


def test_promql_metric_extractor_ignores_functions_labels_keywords_and_ranges() -> None:
    expr = 'histogram_quantile(0.9, sum by (le, model) (rate(a_bucket{model=~"$m", x="y z"}[$__interval])))'
    assert promql_metric_names(expr) == {"a_bucket"}
    assert promql_metric_names("sum(b) / on (path) group_left c_total > bool 0") == {"b", "c_total"}


def test_dashboard_parses_with_a_prometheus_datasource_variable() -> None:
    dash = dashboard()
    assert 36 <= dash["schemaVersion"] <= 41
    inputs = dash.get("__inputs", [])
    assert any(i["name"] == "DS_PROMETHEUS" and i["pluginId"] == "prometheus" for i in inputs)
    assert any(v["name"] == "DS_PROMETHEUS" and v["type"] == "datasource" for v in dash["templating"]["list"])
    for panel in all_panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
    ids = [p["id"] for p in all_panels(dash["panels"])]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_only_metrics_the_service_exposes() -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_expressions()))
    assert used <= KNOWN_METRICS, f"unknown metrics: {sorted(used - KNOWN_METRICS)}"


def test_dashboard_shows_every_required_metric() -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_expressions()))
    assert REQUIRED_METRICS <= used, f"missing: {sorted(REQUIRED_METRICS - used)}"


def test_dashboard_http_latency_panel_shows_p50_p95_and_p99() -> None:
    exprs = dashboard_expressions()
    for q in ("0.5", "0.95", "0.99"):
        assert any(
            e.startswith(f"histogram_quantile({q},") and "sentiment_request_duration_seconds_bucket" in e
            for e in exprs
        )


def test_dashboard_maps_breaker_state_0_1_2_to_closed_half_open_open() -> None:
    [panel] = [
        p
        for p in all_panels(dashboard()["panels"])
        if any("sentiment_breaker_state" in t["expr"] for t in p.get("targets", []))
    ]
    options: dict[str, Any] = {}
    for mapping in panel["fieldConfig"]["defaults"]["mappings"]:
        if mapping["type"] == "value":
            options.update(mapping["options"])
    assert {k: v["text"] for k, v in options.items()} == {"0": "closed", "1": "half-open", "2": "open"}
