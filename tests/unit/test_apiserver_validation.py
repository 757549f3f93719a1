"""What the apiserver refuses and fills in: strict decoding, field validation, pod admission,
defaults and ClusterIP allocation, with the messages real Kubernetes prints."""

from __future__ import annotations

import ipaddress

from components.common.apiclient import ApiClient
from tests.unit.test_apiserver_support import (api, apiserver, deployment, error_of, pod, raw,  # noqa: F401
                                               signing_key)


def service(name: str, namespace: str = "default", **spec) -> dict:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


async def test_unknown_fields_are_refused(api: ApiClient):
    manifest = deployment("web")
    manifest["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    error = await error_of(api.create(manifest))
    assert (error.code, error.reason) == (400, "BadRequest")
    assert str(error) == ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
                          'unknown field "spec.template.spec.containers[0].imagee"')
    manifest = pod("p")
    manifest["spec"]["nodeSelectr"] = {}
    manifest["metadata"]["lables"] = {}
    error = await error_of(api.create(manifest))
    assert str(error) == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                          'unknown field "metadata.lables", unknown field "spec.nodeSelectr"')


async def test_wrong_types_are_refused(api: ApiClient):
    manifest = deployment("web")
    manifest["spec"]["replicas"] = "3"
    error = await error_of(api.create(manifest))
    assert str(error) == ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
                          'string into Go struct field DeploymentSpec.spec.replicas of type int32')
    manifest = pod("p")
    manifest["spec"]["containers"][0]["ports"] = [{"containerPort": 80.5}]
    error = await error_of(api.create(manifest))
    assert str(error).endswith("json: cannot unmarshal number 80.5 into Go struct field "
                               "ContainerPort.spec.containers.ports.containerPort of type int32")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
              "data": {"key": "not base64!"}}
    error = await error_of(api.create(secret))
    assert str(error) == 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'


async def test_istio_sample_pod_specs_decode(api: ApiClient):
    manifest = deployment(
        "ztunnel-like", serviceAccountName="default", hostNetwork=False, priorityClassName="system-node-critical",
        terminationGracePeriodSeconds=30, nodeSelector={"kubernetes.io/os": "linux"},
        tolerations=[{"effect": "NoSchedule", "operator": "Exists"},
                     {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["sleep"]}]},
             "topologyKey": "kubernetes.io/hostname"}]}},
        volumes=[{"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
                 {"name": "cni", "hostPath": {"path": "/var/run/istio-cni"}}, {"name": "tmp", "emptyDir": {}}],
        containers=[{
            "name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.24.0", "imagePullPolicy": "IfNotPresent",
            "args": ["proxy", "ztunnel"], "workingDir": "/",
            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
            "ports": [{"containerPort": 15020, "name": "ztunnel-stats", "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"cpu": 2}},
            "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "SYS_ADMIN", "NET_RAW"]},
                                "readOnlyRootFilesystem": True, "runAsGroup": 1337, "runAsNonRoot": False,
                                "runAsUser": 0},
            "readinessProbe": {"httpGet": {"port": 15021, "path": "/healthz/ready"}},
            "livenessProbe": {"tcpSocket": {"port": "ztunnel-stats"}, "initialDelaySeconds": 5},
            "volumeMounts": [{"mountPath": "/var/run/secrets/tokens", "name": "istio-token"},
                             {"mountPath": "/var/run/ztunnel", "name": "cni"}, {"mountPath": "/tmp", "name": "tmp"}]}])
    manifest["spec"]["template"]["metadata"]["annotations"] = {"sidecar.istio.io/inject": "false"}
    created = await api.create(manifest)
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {"httpGet": {"port": 15021, "path": "/healthz/ready", "scheme": "HTTP"},
                                           "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                                           "failureThreshold": 3}
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


async def test_kinds_without_a_schema_are_stored_as_written(api: ApiClient):
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "reviews", "namespace": "default"},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
                      "anything": {"goes": True}}}
    assert (await api.create(route))["spec"]["anything"] == {"goes": True}


async def test_deployment_selector_must_exist_and_match_the_template(api: ApiClient):
    manifest = deployment("web")
    del manifest["spec"]["selector"]
    error = await error_of(api.create(manifest))
    assert (error.code, error.reason) == (422, "Invalid")
    assert str(error) == ('Deployment.apps "web" is invalid: [spec.selector: Required value, '
                          'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
                          '`selector` does not match template `labels`]')
    assert error.status["details"]["kind"] == "Deployment" and error.status["details"]["group"] == "apps"
    assert [c["field"] for c in error.status["details"]["causes"]] == ["spec.selector", "spec.template.metadata.labels"]
    manifest = deployment("web", replicas=-1)
    error = await error_of(api.create(manifest))
    assert str(error) == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater '
                          'than or equal to 0')


async def test_pod_containers_need_names_and_images(api: ApiClient):
    error = await error_of(api.create(pod("p", containers=[{"name": "a"}, {"image": "b"}])))
    assert str(error) == ('Pod "p" is invalid: [spec.containers[0].image: Required value, '
                          'spec.containers[1].name: Required value]')
    error = await error_of(api.create(pod("p", containers=[])))
    assert str(error) == 'Pod "p" is invalid: spec.containers: Required value'
    error = await error_of(api.create(pod("p", containers=[{"name": "a", "image": "i", "volumeMounts": [
        {"name": "missing", "mountPath": "/x"}]}])))
    assert str(error) == 'Pod "p" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "missing"'


async def test_names_must_be_dns_names(api: ApiClient):
    error = await error_of(api.create(pod("Foo_bar")))
    assert str(error) == (
        'Pod "Foo_bar" is invalid: metadata.name: Invalid value: "Foo_bar": a lowercase RFC 1123 subdomain must '
        "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    error = await error_of(api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}))
    assert "a lowercase RFC 1123 label must consist of" in str(error)
    error = await error_of(api.create(service("1svc")))
    assert "a DNS-1035 label must consist of" in str(error)
    error = await error_of(api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}}))
    assert str(error) == 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'
    error = await error_of(api.create(pod("p", labels={"app": "not ok!"})))
    assert "metadata.labels: Invalid value: \"not ok!\": a valid label must be an empty string" in str(error)


async def test_service_ports_need_a_port(api: ApiClient):
    error = await error_of(api.create(service("svc", ports=[{"name": "http", "targetPort": 8080}])))
    assert str(error) == 'Service "svc" is invalid: spec.ports[0].port: Required value'
    error = await error_of(api.create(service("svc", ports=[{"port": 80}, {"port": 81}])))
    assert str(error) == 'Service "svc" is invalid: [spec.ports[0].name: Required value, ' \
                         'spec.ports[1].name: Required value]'
    error = await error_of(api.create(service("svc", ports=[{"port": 70000}])))
    assert str(error) == 'Service "svc" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 ' \
                         'and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be between 1 ' \
                         'and 65535, inclusive]'


async def test_cluster_ips_are_allocated_and_defaults_filled_in(api: ApiClient):
    created = await api.create(service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80}]))
    spec = created["spec"]
    address = ipaddress.ip_address(spec["clusterIP"])
    assert address in ipaddress.ip_network("10.96.0.0/16") and str(address) not in ("10.96.0.0", "10.96.0.1")
    assert spec["clusterIPs"] == [spec["clusterIP"]] and spec["ipFamilies"] == ["IPv4"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    dns = await api.create(service("kube-dns", "kube-system", clusterIP="10.96.0.10",
                                   ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert dns["spec"]["clusterIP"] == "10.96.0.10"
    error = await error_of(api.create(service("other", clusterIP="10.96.0.10")))
    assert (error.code, str(error)) == (422, 'Service "other" is invalid: spec.clusterIP: Invalid value: "10.96.0.10": '
                                             'provided IP is already allocated')
    error = await error_of(api.create(service("outside", clusterIP="10.0.0.1")))
    assert "provided IP is not in the valid range" in str(error)
    headless = await api.create(service("headless", clusterIP="None", ports=[]))
    assert headless["spec"]["clusterIPs"] == ["None"]
    reapplied = await api.apply(service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80}]))
    assert reapplied[0] == "unchanged" and reapplied[1]["spec"]["clusterIP"] == spec["clusterIP"]
    await api.delete("v1", "Service", "kube-system", "kube-dns")
    again = await api.create(service("kube-dns", "kube-system", clusterIP="10.96.0.10",
                                     ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert again["spec"]["clusterIP"] == "10.96.0.10"


async def test_pods_get_defaults_and_need_their_service_account(api: ApiClient):
    created = await api.create(pod("p", containers=[{"name": "app", "image": "curlimages/curl:8.1.0",
                                                     "ports": [{"containerPort": 80}]}]))
    spec = created["spec"]
    assert (spec["serviceAccountName"], spec["restartPolicy"], spec["dnsPolicy"], spec["schedulerName"],
            spec["terminationGracePeriodSeconds"]) == ("default", "Always", "ClusterFirst", "default-scheduler", 30)
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent" and container["ports"][0]["protocol"] == "TCP"
    assert created["status"] == {"phase": "Pending"}
    error = await error_of(api.create(pod("q", serviceAccountName="reviews")))
    assert (error.code, error.reason) == (403, "Forbidden")
    assert str(error) == ('pods "q" is forbidden: error looking up service account default/reviews: serviceaccount '
                          '"reviews" not found')


async def test_pod_specs_are_immutable_but_reapplying_is_fine(api: ApiClient):
    manifest = pod("p", containers=[{"name": "app", "image": "curlimages/curl"}])
    await api.create(manifest)
    assert (await api.apply(manifest))[0] == "unchanged"
    changed = pod("p", containers=[{"name": "app", "image": "curlimages/curl", "args": ["sleep"]}])
    error = await error_of(api.apply(changed))
    assert error.code == 422 and "pod updates may not change fields other than" in str(error)
    new_image = pod("p", containers=[{"name": "app", "image": "curlimages/curl:8.1.0"}])
    assert (await api.apply(new_image))[0] == "configured"


async def test_secrets_take_string_data(api: ApiClient):
    created = await api.create({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "s", "namespace": "default"}, "stringData": {"user": "admin"}})
    assert created["data"] == {"user": "YWRtaW4="} and created["type"] == "Opaque" and "stringData" not in created


async def test_bodies_of_the_wrong_kind_are_refused(api: ApiClient):
    status, body = await raw(api, "POST", "/api/v1/namespaces/default/pods", deployment("web"))
    assert (status, body["message"]) == (400, "the API version in the data (apps/v1) does not match the expected "
                                              "API version (v1)")
    status, body = await raw(api, "POST", "/api/v1/namespaces/default/pods", b"{not json", "application/json")
    assert status == 400 and body["message"].startswith("the object provided is unrecognized (must be of type Pod)")
    status, body = await raw(api, "POST", "/api/v1/namespaces/default/configmaps",
                             b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n", "application/yaml")
    assert status == 201 and body["metadata"]["name"] == "from-yaml"
