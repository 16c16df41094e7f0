#!/usr/bin/env python3
"""Checks the tianshan chart offline: lints it, renders it for each case below and validates every
rendered manifest against the Kubernetes 1.33 schemas of kubernetes-validate in strict mode
(unknown fields are errors).

The custom resources (KEDA ScaledObject, Prometheus Operator ServiceMonitor) have no schema in
kubernetes-validate and none is vendored here: they are checked against the chart's own resources
instead (the StatefulSet they scale, the Service port they scrape, string trigger metadata). Any
other kind without a schema fails. The ConfigMap's tianshan.toml is parsed and checked against the
pod (listen ports, mounted token and TLS files, the Kafka group KEDA watches) and against the
StatefulSet (cluster.peers are its pods under the headless Service, each pod names itself as
node-id, and with more than one node the chart's tokens.csv holds a peer row).

Usage: python3 helm/check.py [--write-configs DIR]
  --write-configs DIR  writes each case's rendered tianshan.toml as DIR/<case>.toml and the
                       TIANSHAN__* variables of its first pod as DIR/<case>.env (NAME=VALUE lines),
                       for tests that feed them to the binary.
Exits 0 when everything passes, 1 naming each failing case and resource, 2 when the pinned
packages are missing.
"""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import io
import importlib.metadata
import sys
import tomllib
from pathlib import Path

PINNED = {"helm-python-sdk": "0.2.2", "kubernetes-validate": "1.37.0"}
INSTALL_HINT = "python3 -m pip install " + " ".join(f"'{p}=={v}'" for p, v in PINNED.items())

try:
    import helm_python as helm
    import kubernetes_validate
    import yaml  # PyYAML, a dependency of kubernetes-validate
except ImportError as missing:
    print(f"helm/check.py: {missing}; install the pinned packages with:\n  {INSTALL_HINT}", file=sys.stderr)
    sys.exit(2)

KUBERNETES_VERSION = "1.33.0"
RELEASE = "warn"
NAMESPACE = "hazards"
CHART = Path(__file__).resolve().parent / "tianshan"
# Custom resources without a schema in kubernetes-validate; checked by `check_custom_resources`.
CUSTOM_RESOURCES = {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor")}
KEDA_METADATA = ("bootstrapServers", "consumerGroup", "topic", "lagThreshold")


def production_values() -> dict:
    return helm.values_from_yaml((CHART / "values-production.yaml").read_text())


def merged(base: dict, overrides: dict) -> dict:
    """Returns `base` with `overrides` merged in key by key (as later -f files merge in Helm)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


INLINE_SECRETS = {
    "tokens": {"existingSecret": "", "csv": "token,principal,role,department,unit\n"},
    "tls": {
        "existingSecret": "",
        "cert": "-----BEGIN CERTIFICATE-----\n",
        "key": "-----BEGIN PRIVATE KEY-----\n",
        "ca": "-----BEGIN CERTIFICATE-----\n",
    },
}

# Every optional value of values.yaml set once, so each branch of the templates renders.
OPTIONS = {
    "imagePullSecrets": [{"name": "regcred"}],
    "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
    "service": {"type": "LoadBalancer", "annotations": {"example.invalid/internal": "true"}},
    "podAnnotations": {"example.invalid/team": "hazards"},
    "podLabels": {"example.invalid/tier": "warning"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "hazards", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "tianshan"}}},
    }]}},
    "topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}},
    }],
    "keda": {"enabled": True, "authenticationRef": "kafka-sasl"},
    "serviceMonitor": {"enabled": True},
    "tokens": {"csv": "token,principal,role,department,unit\n"},
}

# (name, values, kinds the render must contain)
CASES = [
    ("default", {}, {"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"}),
    ("production", production_values(), {"ScaledObject", "ServiceMonitor", "PodDisruptionBudget"}),
    ("production-inline-secrets", merged(production_values(), INLINE_SECRETS), {"Secret"}),
    ("hpa", {"autoscaling": {"enabled": True}}, {"HorizontalPodAutoscaler"}),
    ("options", OPTIONS, {"Secret", "ScaledObject", "ServiceMonitor"}),
]

# (name, values, a fragment of the error the render must fail with)
REFUSALS = [
    ("two-autoscalers", {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}, "exclude each other"),
    ("config-sets-listen-address", {"config": '[node]\ngrpc-addr = "0.0.0.0:1"\n'}, "may not set node.grpc-addr"),
    ("config-not-toml", {"config": "[kafka\n"}, "config is not valid TOML"),
    ("tls-without-certificate", {"tls": {"enabled": True}}, "tls.enabled needs"),
    ("pdb-both-bounds", {"podDisruptionBudget": {"minAvailable": 2}}, "exactly one of"),
    ("config-sets-peers", {"config": '[cluster]\npeers = ["node-1:50051"]\n'}, "may not set cluster.peers"),
    (
        "tls-between-nodes-without-ca",
        {"replicaCount": 3, "tls": {"enabled": True, "cert": "-----BEGIN CERTIFICATE-----\n", "key": "k"}},
        "tls.ca is needed",
    ),
]


def check_versions() -> list[str]:
    failures = []
    for package, wanted in PINNED.items():
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            installed = "none"
        if installed != wanted:
            failures.append(f"{package} {installed} is installed, the check pins {wanted}: {INSTALL_HINT}")
    return failures


def lint(case: str, values: dict) -> list[str]:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBERNETES_VERSION}")
    # Severity 1 is info (e.g. "icon is recommended"); warnings and errors fail.
    findings = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
    return [f"{case}: lint: {finding}" for finding in findings + report["errors"]]


def render(values: dict) -> list[tuple[str, dict]]:
    """Returns (template, resource) for every resource the chart renders with `values`."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        (template, resource)
        for template, text in sorted(manifests.items())
        if not template.endswith("NOTES.txt")
        for resource in yaml.safe_load_all(text)
        if resource
    ]


def named(resource: dict) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


def validate_schemas(case: str, resources: list[tuple[str, dict]]) -> tuple[list[str], int, int]:
    """Returns the failures, the number validated against a schema and the number of custom ones."""
    failures, validated, custom = [], 0, 0
    for template, resource in resources:
        where = f"{case}: {template}: {named(resource)}"
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            failures.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            if (resource["apiVersion"], resource["kind"]) in CUSTOM_RESOURCES:
                custom += 1
            else:
                failures.append(f"{where}: {error.message}")
    return failures, validated, custom


def only(resources: list[dict], kind: str) -> list[dict]:
    return [resource for resource in resources if resource["kind"] == kind]


def node_container(statefulset: dict) -> dict:
    return statefulset["spec"]["template"]["spec"]["containers"][0]


def rendered_config(resources: list[dict]) -> dict:
    (configmap,) = only(resources, "ConfigMap")
    return tomllib.loads(configmap["data"]["tianshan.toml"])


def check_config(case: str, resources: list[dict]) -> list[str]:
    """Checks that the pod serves on the ports the config listens on and mounts the files it names."""
    (statefulset,) = only(resources, "StatefulSet")
    container = node_container(statefulset)
    node = rendered_config(resources)["node"]
    failures = []
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for name, key in (("grpc", "grpc-addr"), ("http", "http-addr")):
        if node[key] != f"0.0.0.0:{ports[name]}":
            failures.append(f"{case}: ConfigMap: node.{key} = {node[key]!r}, container port {name} is {ports[name]}")
    mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
    for key in ("tokens", "tls-cert", "tls-key", "tls-ca"):
        if key in node and not any(node[key].startswith(mount + "/") for mount in mounts):
            failures.append(f"{case}: ConfigMap: node.{key} = {node[key]!r} is not under a volume mount of {named(statefulset)}")
    return failures


def listed_nodes(values: dict) -> int:
    """Returns how many pods cluster.peers must list: the replicas, or an autoscaler's maximum."""
    defaults = helm.values_from_yaml((CHART / "values.yaml").read_text())
    values = merged(defaults, values)
    if values["keda"]["enabled"]:
        return values["keda"]["maxReplicaCount"]
    if values["autoscaling"]["enabled"]:
        return values["autoscaling"]["maxReplicas"]
    return values["replicaCount"]


def check_peers(case: str, values: dict, resources: list[dict]) -> list[str]:
    """Checks cluster.peers against the StatefulSet and its headless Service, the pod's node-id,
    and, with more than one node, the peer token row and the CA the nodes verify each other by."""
    (statefulset,) = only(resources, "StatefulSet")
    name = statefulset["metadata"]["name"]
    where = f"{case}: {named(statefulset)}"
    headless = [s for s in only(resources, "Service") if s["spec"].get("clusterIP") == "None"]
    if [s["metadata"]["name"] for s in headless] != [statefulset["spec"]["serviceName"]]:
        return [f"{where}: serviceName is not the one headless Service {[named(s) for s in headless]}"]
    config = rendered_config(resources)
    port = node_container(statefulset)["ports"][0]["containerPort"]
    nodes = listed_nodes(values)
    wanted = [f"{name}-{ordinal}.{headless[0]['metadata']['name']}.{NAMESPACE}.svc:{port}" for ordinal in range(nodes)]
    failures = []
    if config["cluster"].get("peers") != wanted:
        failures.append(f"{case}: ConfigMap: cluster.peers = {config['cluster'].get('peers')}, not the pods {wanted}")
    env = {variable["name"]: variable.get("value") for variable in node_container(statefulset)["env"]}
    if env.get("TIANSHAN__CLUSTER__NODE_ID") != "$(POD_NAME)" or "POD_NAME" not in env:
        failures.append(f"{where}: the pod does not set cluster.node-id to its name")
    if nodes < 2:
        return failures
    if "tls-cert" in config["node"] and "tls-ca" not in config["node"]:
        failures.append(f"{case}: ConfigMap: nodes serving TLS to each other have no node.tls-ca")
    if "tokens" not in config["node"]:
        failures.append(f"{case}: ConfigMap: {nodes} nodes and no node.tokens for their peer token")
    for secret in only(resources, "Secret"):
        if "tokens.csv" not in secret["data"]:
            continue
        rows = csv.DictReader(io.StringIO(base64.b64decode(secret["data"]["tokens.csv"]).decode()))
        peer_tokens = [row["token"] for row in rows if row["role"] == "peer"]
        if len(peer_tokens) != 1 or len(peer_tokens[0]) < 32:
            failures.append(f"{case}: {named(secret)}: tokens.csv has no single peer row of 32+ characters")
    return failures


def check_custom_resources(case: str, resources: list[dict]) -> list[str]:
    """Checks the ScaledObject and ServiceMonitor against the resources they point at."""
    failures = []
    (statefulset,) = only(resources, "StatefulSet")
    kafka = rendered_config(resources)["kafka"]
    for scaled in only(resources, "ScaledObject"):
        where = f"{case}: {named(scaled)}"
        target = scaled["spec"]["scaleTargetRef"]
        if (target.get("kind"), target.get("name")) != ("StatefulSet", statefulset["metadata"]["name"]):
            failures.append(f"{where}: scaleTargetRef {target} is not {named(statefulset)}")
        if "replicas" in statefulset["spec"]:
            failures.append(f"{where}: {named(statefulset)} sets replicas, which KEDA's autoscaler owns")
        for trigger in scaled["spec"]["triggers"]:
            metadata = trigger["metadata"]
            missing = [key for key in KEDA_METADATA if key not in metadata]
            if trigger["type"] != "kafka" or missing:
                failures.append(f"{where}: trigger {trigger.get('name')}: type {trigger['type']}, missing {missing}")
            # KEDA's CRD types metadata as a map of strings: a number is refused by the API server.
            for key, value in metadata.items():
                if not isinstance(value, str):
                    failures.append(f"{where}: trigger {trigger.get('name')}: metadata.{key} is not a string")
            if metadata.get("consumerGroup") != kafka["group-id"]:
                failures.append(f"{where}: consumerGroup {metadata.get('consumerGroup')!r} is not kafka.group-id")
        watched = {trigger["metadata"].get("topic") for trigger in scaled["spec"]["triggers"]}
        observed = {kafka["topics"][key] for key in ("rainfall", "water-level", "deformation", "lightning", "weather")}
        if watched != observed:
            failures.append(f"{where}: triggers watch {sorted(watched)}, the node consumes {sorted(observed)}")
    for monitor in only(resources, "ServiceMonitor"):
        where = f"{case}: {named(monitor)}"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in only(resources, "Service") if wanted.items() <= s["metadata"]["labels"].items()]
        if len(services) != 1:
            failures.append(f"{where}: selector {wanted} matches {len(services)} Services, not 1")
            continue
        port_names = {port["name"] for port in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] not in port_names:
                failures.append(f"{where}: port {endpoint['port']!r} is not a port of {named(services[0])}")
    return failures


def write_configs(directory: Path, case: str, resources: list[dict]) -> None:
    (configmap,) = only(resources, "ConfigMap")
    (statefulset,) = only(resources, "StatefulSet")
    pod = f"{statefulset['metadata']['name']}-0"
    (directory / f"{case}.toml").write_text(configmap["data"]["tianshan.toml"])
    lines = [
        f"{variable['name']}={variable['value'].replace('$(POD_NAME)', pod)}\n"
        for variable in node_container(statefulset)["env"]
        if variable["name"].startswith("TIANSHAN__")
    ]
    (directory / f"{case}.env").write_text("".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-configs", type=Path, metavar="DIR")
    args = parser.parse_args()

    failures = check_versions()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 2
    validated = custom = 0
    for case, values, expected_kinds in CASES:
        failures += lint(case, values)
        try:
            rendered = render(values)
        except helm.HelmError as error:
            failures.append(f"{case}: render: {error}")
            continue
        case_failures, case_validated, case_custom = validate_schemas(case, rendered)
        failures += case_failures
        validated += case_validated
        custom += case_custom
        resources = [resource for _, resource in rendered]
        missing = expected_kinds - {resource["kind"] for resource in resources}
        if missing:
            failures.append(f"{case}: renders no {', '.join(sorted(missing))}")
        failures += check_config(case, resources)
        failures += check_peers(case, values, resources)
        failures += check_custom_resources(case, resources)
        if args.write_configs:
            args.write_configs.mkdir(parents=True, exist_ok=True)
            write_configs(args.write_configs, case, resources)
        print(f"{case}: {len(resources)} resources")
    for case, values, fragment in REFUSALS:
        try:
            render(values)
            failures.append(f"refusal {case}: the chart rendered; it must fail with {fragment!r}")
        except helm.HelmError as error:
            if fragment not in str(error):
                failures.append(f"refusal {case}: failed with {error}, not with {fragment!r}")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print(
        f"helm/check.py: {len(CASES)} cases linted and rendered, {validated} resources valid against "
        f"Kubernetes {KUBERNETES_VERSION} (kubernetes-validate {PINNED['kubernetes-validate']}, strict), "
        f"{custom} custom resources checked against the chart, {len(REFUSALS)} bad values refused; "
        f"{len(failures)} failures"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
