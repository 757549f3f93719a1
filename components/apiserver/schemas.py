"""The fields of the built-in kinds, for strict decoding (Kubernetes v1.30's core/v1 and apps/v1).

Structures that manifests rarely spell out in full (cloud volume sources, claims) are checked only
as objects; everything a pod spec of Istio's samples and charts uses is checked field by field.
"""

from __future__ import annotations

from components.apiserver.decoding import (BASE64, BOOL, FREE_OBJECT, INT32, INT64, INT_OR_STRING,
                                           QUANTITY, STRING, TIME, ListOf, MapOf, Schema, Struct)

STRINGS = ListOf(STRING)
STRING_MAP = MapOf(STRING)
RESOURCE_LIST = MapOf(QUANTITY, "v1.ResourceList")


def _struct(name: str, /, **fields: Schema) -> Struct:
    return Struct(name, fields)


class _LooseStruct(Struct):
    """A structure checked only for being an object."""

    def __init__(self, name: str):
        super().__init__(name, {})

    def walk(self, value: object, where: str, struct: str, path: str, unknown: list[str]) -> None:
        FREE_OBJECT.walk(value, where, struct, path, unknown)


def _object(name: str) -> Struct:
    return _LooseStruct(name)


# -- metadata -------------------------------------------------------------------------------------

OWNER_REFERENCE = _struct("OwnerReference", apiVersion=STRING, kind=STRING, name=STRING, uid=STRING,
                          controller=BOOL, blockOwnerDeletion=BOOL)
MANAGED_FIELDS = _struct("ManagedFieldsEntry", manager=STRING, operation=STRING, apiVersion=STRING, time=TIME,
                         fieldsType=STRING, fieldsV1=FREE_OBJECT, subresource=STRING)
OBJECT_META = _struct(
    "ObjectMeta", name=STRING, generateName=STRING, namespace=STRING, selfLink=STRING, uid=STRING,
    resourceVersion=STRING, generation=INT64, creationTimestamp=TIME, deletionTimestamp=TIME,
    deletionGracePeriodSeconds=INT64, labels=STRING_MAP, annotations=STRING_MAP,
    ownerReferences=ListOf(OWNER_REFERENCE), finalizers=STRINGS, managedFields=ListOf(MANAGED_FIELDS))
LABEL_SELECTOR_REQUIREMENT = _struct("LabelSelectorRequirement", key=STRING, operator=STRING, values=STRINGS)
LABEL_SELECTOR = _struct("LabelSelector", matchLabels=STRING_MAP,
                         matchExpressions=ListOf(LABEL_SELECTOR_REQUIREMENT))
LOCAL_OBJECT_REFERENCE = _struct("LocalObjectReference", name=STRING)
OBJECT_REFERENCE = _struct("ObjectReference", kind=STRING, namespace=STRING, name=STRING, uid=STRING,
                           apiVersion=STRING, resourceVersion=STRING, fieldPath=STRING)
CONDITION = _struct("Condition", type=STRING, status=STRING, observedGeneration=INT64, lastTransitionTime=TIME,
                    reason=STRING, message=STRING)

# -- containers -----------------------------------------------------------------------------------

OBJECT_FIELD_SELECTOR = _struct("ObjectFieldSelector", apiVersion=STRING, fieldPath=STRING)
RESOURCE_FIELD_SELECTOR = _struct("ResourceFieldSelector", containerName=STRING, resource=STRING, divisor=QUANTITY)
KEY_SELECTOR = {"name": STRING, "key": STRING, "optional": BOOL}
ENV_VAR_SOURCE = _struct(
    "EnvVarSource", fieldRef=OBJECT_FIELD_SELECTOR, resourceFieldRef=RESOURCE_FIELD_SELECTOR,
    configMapKeyRef=Struct("ConfigMapKeySelector", KEY_SELECTOR),
    secretKeyRef=Struct("SecretKeySelector", KEY_SELECTOR),
    fileKeyRef=_object("FileKeySelector"))
ENV_VAR = _struct("EnvVar", name=STRING, value=STRING, valueFrom=ENV_VAR_SOURCE)
ENV_FROM = _struct("EnvFromSource", prefix=STRING,
                   configMapRef=_struct("ConfigMapEnvSource", name=STRING, optional=BOOL),
                   secretRef=_struct("SecretEnvSource", name=STRING, optional=BOOL))
CONTAINER_PORT = _struct("ContainerPort", name=STRING, hostPort=INT32, containerPort=INT32, protocol=STRING,
                         hostIP=STRING)
RESOURCE_REQUIREMENTS = _struct("ResourceRequirements", limits=RESOURCE_LIST, requests=RESOURCE_LIST,
                                claims=ListOf(_struct("ResourceClaim", name=STRING, request=STRING)))
VOLUME_MOUNT = _struct("VolumeMount", name=STRING, readOnly=BOOL, recursiveReadOnly=STRING, mountPath=STRING,
                       subPath=STRING, mountPropagation=STRING, subPathExpr=STRING)
HTTP_HEADER = _struct("HTTPHeader", name=STRING, value=STRING)
EXEC_ACTION = _struct("ExecAction", command=STRINGS)
HTTP_GET_ACTION = _struct("HTTPGetAction", path=STRING, port=INT_OR_STRING, host=STRING, scheme=STRING,
                          httpHeaders=ListOf(HTTP_HEADER))
TCP_SOCKET_ACTION = _struct("TCPSocketAction", port=INT_OR_STRING, host=STRING)
PROBE = _struct(
    "Probe", exec=EXEC_ACTION, httpGet=HTTP_GET_ACTION, tcpSocket=TCP_SOCKET_ACTION,
    grpc=_struct("GRPCAction", port=INT32, service=STRING), initialDelaySeconds=INT32, timeoutSeconds=INT32,
    periodSeconds=INT32, successThreshold=INT32, failureThreshold=INT32, terminationGracePeriodSeconds=INT64)
LIFECYCLE_HANDLER = _struct("LifecycleHandler", exec=EXEC_ACTION, httpGet=HTTP_GET_ACTION, tcpSocket=TCP_SOCKET_ACTION,
                            sleep=_struct("SleepAction", seconds=INT64))
LIFECYCLE = _struct("Lifecycle", postStart=LIFECYCLE_HANDLER, preStop=LIFECYCLE_HANDLER, stopSignal=STRING)
SE_LINUX_OPTIONS = _struct("SELinuxOptions", user=STRING, role=STRING, type=STRING, level=STRING)
WINDOWS_OPTIONS = _struct("WindowsSecurityContextOptions", gmsaCredentialSpecName=STRING, gmsaCredentialSpec=STRING,
                          runAsUserName=STRING, hostProcess=BOOL)
SECCOMP_PROFILE = _struct("SeccompProfile", type=STRING, localhostProfile=STRING)
APP_ARMOR_PROFILE = _struct("AppArmorProfile", type=STRING, localhostProfile=STRING)
SECURITY_CONTEXT = _struct(
    "SecurityContext", capabilities=_struct("Capabilities", add=STRINGS, drop=STRINGS), privileged=BOOL,
    seLinuxOptions=SE_LINUX_OPTIONS, windowsOptions=WINDOWS_OPTIONS, runAsUser=INT64, runAsGroup=INT64,
    runAsNonRoot=BOOL, readOnlyRootFilesystem=BOOL, allowPrivilegeEscalation=BOOL, procMount=STRING,
    seccompProfile=SECCOMP_PROFILE, appArmorProfile=APP_ARMOR_PROFILE)
CONTAINER_FIELDS: dict[str, Schema] = dict(
    name=STRING, image=STRING, command=STRINGS, args=STRINGS, workingDir=STRING, ports=ListOf(CONTAINER_PORT),
    envFrom=ListOf(ENV_FROM), env=ListOf(ENV_VAR), resources=RESOURCE_REQUIREMENTS,
    resizePolicy=ListOf(_struct("ContainerResizePolicy", resourceName=STRING, restartPolicy=STRING)),
    restartPolicy=STRING, restartPolicyRules=ListOf(_object("ContainerRestartRule")),
    volumeMounts=ListOf(VOLUME_MOUNT),
    volumeDevices=ListOf(_struct("VolumeDevice", name=STRING, devicePath=STRING)), livenessProbe=PROBE,
    readinessProbe=PROBE, startupProbe=PROBE, lifecycle=LIFECYCLE, terminationMessagePath=STRING,
    terminationMessagePolicy=STRING, imagePullPolicy=STRING, securityContext=SECURITY_CONTEXT, stdin=BOOL,
    stdinOnce=BOOL, tty=BOOL)
CONTAINER = Struct("Container", CONTAINER_FIELDS)
EPHEMERAL_CONTAINER = Struct("EphemeralContainer", {**CONTAINER_FIELDS, "targetContainerName": STRING})

# -- volumes --------------------------------------------------------------------------------------

KEY_TO_PATH = _struct("KeyToPath", key=STRING, path=STRING, mode=INT32)
DOWNWARD_API_FILE = _struct("DownwardAPIVolumeFile", path=STRING, fieldRef=OBJECT_FIELD_SELECTOR,
                            resourceFieldRef=RESOURCE_FIELD_SELECTOR, mode=INT32)
VOLUME_PROJECTION = _struct(
    "VolumeProjection",
    secret=_struct("SecretProjection", name=STRING, items=ListOf(KEY_TO_PATH), optional=BOOL),
    downwardAPI=_struct("DownwardAPIProjection", items=ListOf(DOWNWARD_API_FILE)),
    configMap=_struct("ConfigMapProjection", name=STRING, items=ListOf(KEY_TO_PATH), optional=BOOL),
    serviceAccountToken=_struct("ServiceAccountTokenProjection", audience=STRING, expirationSeconds=INT64,
                                path=STRING),
    clusterTrustBundle=_object("ClusterTrustBundleProjection"), podCertificate=_object("PodCertificateProjection"))
VOLUME = _struct(
    "Volume", name=STRING,
    hostPath=_struct("HostPathVolumeSource", path=STRING, type=STRING),
    emptyDir=_struct("EmptyDirVolumeSource", medium=STRING, sizeLimit=QUANTITY),
    secret=_struct("SecretVolumeSource", secretName=STRING, items=ListOf(KEY_TO_PATH), defaultMode=INT32,
                   optional=BOOL),
    configMap=_struct("ConfigMapVolumeSource", name=STRING, items=ListOf(KEY_TO_PATH), defaultMode=INT32,
                      optional=BOOL),
    projected=_struct("ProjectedVolumeSource", sources=ListOf(VOLUME_PROJECTION), defaultMode=INT32),
    downwardAPI=_struct("DownwardAPIVolumeSource", items=ListOf(DOWNWARD_API_FILE), defaultMode=INT32),
    persistentVolumeClaim=_struct("PersistentVolumeClaimVolumeSource", claimName=STRING, readOnly=BOOL),
    csi=_struct("CSIVolumeSource", driver=STRING, readOnly=BOOL, fsType=STRING, volumeAttributes=STRING_MAP,
                nodePublishSecretRef=LOCAL_OBJECT_REFERENCE),
    image=_struct("ImageVolumeSource", reference=STRING, pullPolicy=STRING),
    **{name: _object(go) for name, go in (
        ("gcePersistentDisk", "GCEPersistentDiskVolumeSource"),
        ("awsElasticBlockStore", "AWSElasticBlockStoreVolumeSource"), ("gitRepo", "GitRepoVolumeSource"),
        ("nfs", "NFSVolumeSource"), ("iscsi", "ISCSIVolumeSource"), ("glusterfs", "GlusterfsVolumeSource"),
        ("rbd", "RBDVolumeSource"), ("flexVolume", "FlexVolumeSource"), ("cinder", "CinderVolumeSource"),
        ("cephfs", "CephFSVolumeSource"), ("flocker", "FlockerVolumeSource"), ("fc", "FCVolumeSource"),
        ("azureFile", "AzureFileVolumeSource"), ("vsphereVolume", "VsphereVirtualDiskVolumeSource"),
        ("quobyte", "QuobyteVolumeSource"), ("azureDisk", "AzureDiskVolumeSource"),
        ("photonPersistentDisk", "PhotonPersistentDiskVolumeSource"), ("portworxVolume", "PortworxVolumeSource"),
        ("scaleIO", "ScaleIOVolumeSource"), ("storageos", "StorageOSVolumeSource"),
        ("ephemeral", "EphemeralVolumeSource"))})

# -- scheduling -----------------------------------------------------------------------------------

NODE_SELECTOR_REQUIREMENT = _struct("NodeSelectorRequirement", key=STRING, operator=STRING, values=STRINGS)
NODE_SELECTOR_TERM = _struct("NodeSelectorTerm", matchExpressions=ListOf(NODE_SELECTOR_REQUIREMENT),
                             matchFields=ListOf(NODE_SELECTOR_REQUIREMENT))
POD_AFFINITY_TERM = _struct("PodAffinityTerm", labelSelector=LABEL_SELECTOR, namespaces=STRINGS, topologyKey=STRING,
                            namespaceSelector=LABEL_SELECTOR, matchLabelKeys=STRINGS, mismatchLabelKeys=STRINGS)
WEIGHTED_POD_AFFINITY_TERM = _struct("WeightedPodAffinityTerm", weight=INT32, podAffinityTerm=POD_AFFINITY_TERM)
POD_AFFINITY_FIELDS: dict[str, Schema] = {
    "requiredDuringSchedulingIgnoredDuringExecution": ListOf(POD_AFFINITY_TERM),
    "preferredDuringSchedulingIgnoredDuringExecution": ListOf(WEIGHTED_POD_AFFINITY_TERM)}
AFFINITY = _struct(
    "Affinity",
    nodeAffinity=Struct("NodeAffinity", {
        "requiredDuringSchedulingIgnoredDuringExecution": _struct("NodeSelector",
                                                                  nodeSelectorTerms=ListOf(NODE_SELECTOR_TERM)),
        "preferredDuringSchedulingIgnoredDuringExecution": ListOf(
            _struct("PreferredSchedulingTerm", weight=INT32, preference=NODE_SELECTOR_TERM))}),
    podAffinity=Struct("PodAffinity", POD_AFFINITY_FIELDS),
    podAntiAffinity=Struct("PodAntiAffinity", POD_AFFINITY_FIELDS))
TOLERATION = _struct("Toleration", key=STRING, operator=STRING, value=STRING, effect=STRING, tolerationSeconds=INT64)
TOPOLOGY_SPREAD_CONSTRAINT = _struct(
    "TopologySpreadConstraint", maxSkew=INT32, topologyKey=STRING, whenUnsatisfiable=STRING,
    labelSelector=LABEL_SELECTOR, minDomains=INT32, nodeAffinityPolicy=STRING, nodeTaintsPolicy=STRING,
    matchLabelKeys=STRINGS)

# -- pods -----------------------------------------------------------------------------------------

POD_SECURITY_CONTEXT = _struct(
    "PodSecurityContext", seLinuxOptions=SE_LINUX_OPTIONS, windowsOptions=WINDOWS_OPTIONS, runAsUser=INT64,
    runAsGroup=INT64, runAsNonRoot=BOOL, supplementalGroups=ListOf(INT64), supplementalGroupsPolicy=STRING,
    fsGroup=INT64, sysctls=ListOf(_struct("Sysctl", name=STRING, value=STRING)), fsGroupChangePolicy=STRING,
    seccompProfile=SECCOMP_PROFILE, appArmorProfile=APP_ARMOR_PROFILE, seLinuxChangePolicy=STRING)
POD_SPEC = _struct(
    "PodSpec", volumes=ListOf(VOLUME), initContainers=ListOf(CONTAINER), containers=ListOf(CONTAINER),
    ephemeralContainers=ListOf(EPHEMERAL_CONTAINER), restartPolicy=STRING, terminationGracePeriodSeconds=INT64,
    activeDeadlineSeconds=INT64, dnsPolicy=STRING, nodeSelector=STRING_MAP, serviceAccountName=STRING,
    serviceAccount=STRING, automountServiceAccountToken=BOOL, nodeName=STRING, hostNetwork=BOOL, hostPID=BOOL,
    hostIPC=BOOL, shareProcessNamespace=BOOL, securityContext=POD_SECURITY_CONTEXT,
    imagePullSecrets=ListOf(LOCAL_OBJECT_REFERENCE), hostname=STRING, subdomain=STRING, affinity=AFFINITY,
    schedulerName=STRING, tolerations=ListOf(TOLERATION),
    hostAliases=ListOf(_struct("HostAlias", ip=STRING, hostnames=STRINGS)), priorityClassName=STRING,
    priority=INT32,
    dnsConfig=_struct("PodDNSConfig", nameservers=STRINGS, searches=STRINGS,
                      options=ListOf(_struct("PodDNSConfigOption", name=STRING, value=STRING))),
    readinessGates=ListOf(_struct("PodReadinessGate", conditionType=STRING)), runtimeClassName=STRING,
    enableServiceLinks=BOOL, preemptionPolicy=STRING, overhead=RESOURCE_LIST,
    topologySpreadConstraints=ListOf(TOPOLOGY_SPREAD_CONSTRAINT), setHostnameAsFQDN=BOOL,
    os=_struct("PodOS", name=STRING), hostUsers=BOOL, schedulingGates=ListOf(_struct("PodSchedulingGate", name=STRING)),
    resourceClaims=ListOf(_object("PodResourceClaim")), resources=RESOURCE_REQUIREMENTS, hostnameOverride=STRING)
CONTAINER_STATE = _struct(
    "ContainerState",
    waiting=_struct("ContainerStateWaiting", reason=STRING, message=STRING),
    running=_struct("ContainerStateRunning", startedAt=TIME),
    terminated=_struct("ContainerStateTerminated", exitCode=INT32, signal=INT32, reason=STRING, message=STRING,
                       startedAt=TIME, finishedAt=TIME, containerID=STRING))
CONTAINER_STATUS = _struct(
    "ContainerStatus", name=STRING, state=CONTAINER_STATE, lastState=CONTAINER_STATE, ready=BOOL,
    restartCount=INT32, image=STRING, imageID=STRING, containerID=STRING, started=BOOL,
    allocatedResources=RESOURCE_LIST, resources=RESOURCE_REQUIREMENTS,
    volumeMounts=ListOf(_object("VolumeMountStatus")),
    user=_object("ContainerUser"), allocatedResourcesStatus=ListOf(_object("ResourceStatus")), stopSignal=STRING)
POD_IP = _struct("PodIP", ip=STRING)
POD_STATUS = _struct(
    "PodStatus", observedGeneration=INT64, phase=STRING,
    conditions=ListOf(_struct("PodCondition", type=STRING, observedGeneration=INT64, status=STRING,
                              lastProbeTime=TIME, lastTransitionTime=TIME, reason=STRING, message=STRING)),
    message=STRING, reason=STRING, nominatedNodeName=STRING, hostIP=STRING,
    hostIPs=ListOf(_struct("HostIP", ip=STRING)),
    podIP=STRING, podIPs=ListOf(POD_IP), startTime=TIME, initContainerStatuses=ListOf(CONTAINER_STATUS),
    containerStatuses=ListOf(CONTAINER_STATUS), ephemeralContainerStatuses=ListOf(CONTAINER_STATUS),
    qosClass=STRING, resize=STRING, resourceClaimStatuses=ListOf(_object("PodResourceClaimStatus")),
    extendedResourceClaimStatus=_object("PodExtendedResourceClaimStatus"))
POD_TEMPLATE_SPEC = _struct("PodTemplateSpec", metadata=OBJECT_META, spec=POD_SPEC)


def _kind(name: str, /, **fields: Schema) -> Struct:
    return Struct(name, {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META, **fields})


POD = _kind("Pod", spec=POD_SPEC, status=POD_STATUS)

# -- the other core kinds -------------------------------------------------------------------------

NAMESPACE = _kind(
    "Namespace", spec=_struct("NamespaceSpec", finalizers=STRINGS),
    status=_struct("NamespaceStatus", phase=STRING,
                   conditions=ListOf(_struct("NamespaceCondition", type=STRING, status=STRING,
                                             lastTransitionTime=TIME, reason=STRING, message=STRING))))
NODE = _kind(
    "Node",
    spec=_struct("NodeSpec", podCIDR=STRING, podCIDRs=STRINGS, providerID=STRING, unschedulable=BOOL,
                 taints=ListOf(_struct("Taint", key=STRING, value=STRING, effect=STRING, timeAdded=TIME)),
                 configSource=_object("NodeConfigSource"), externalID=STRING),
    status=_struct(
        "NodeStatus", capacity=RESOURCE_LIST, allocatable=RESOURCE_LIST, phase=STRING,
        conditions=ListOf(_struct("NodeCondition", type=STRING, status=STRING, lastHeartbeatTime=TIME,
                                  lastTransitionTime=TIME, reason=STRING, message=STRING)),
        addresses=ListOf(_struct("NodeAddress", type=STRING, address=STRING)),
        daemonEndpoints=_struct("NodeDaemonEndpoints",
                                kubeletEndpoint=_struct("DaemonEndpoint", Port=INT32)),
        nodeInfo=_struct("NodeSystemInfo", machineID=STRING, systemUUID=STRING, bootID=STRING, kernelVersion=STRING,
                         osImage=STRING, containerRuntimeVersion=STRING, kubeletVersion=STRING,
                         kubeProxyVersion=STRING, operatingSystem=STRING, architecture=STRING,
                         swap=_object("NodeSwapStatus")),
        images=ListOf(_struct("ContainerImage", names=STRINGS, sizeBytes=INT64)), volumesInUse=STRINGS,
        volumesAttached=ListOf(_object("AttachedVolume")), config=_object("NodeConfigStatus"),
        runtimeHandlers=ListOf(_object("NodeRuntimeHandler")), features=_object("NodeFeatures"),
        declaredFeatures=STRINGS))
SERVICE_PORT = _struct("ServicePort", name=STRING, protocol=STRING, appProtocol=STRING, port=INT32,
                       targetPort=INT_OR_STRING, nodePort=INT32)
SERVICE = _kind(
    "Service",
    spec=_struct(
        "ServiceSpec", ports=ListOf(SERVICE_PORT), selector=STRING_MAP, clusterIP=STRING, clusterIPs=STRINGS,
        type=STRING, externalIPs=STRINGS, sessionAffinity=STRING, loadBalancerIP=STRING,
        loadBalancerSourceRanges=STRINGS, externalName=STRING, externalTrafficPolicy=STRING,
        healthCheckNodePort=INT32, publishNotReadyAddresses=BOOL,
        sessionAffinityConfig=_struct("SessionAffinityConfig",
                                      clientIP=_struct("ClientIPConfig", timeoutSeconds=INT32)),
        ipFamilies=STRINGS, ipFamilyPolicy=STRING, allocateLoadBalancerNodePorts=BOOL, loadBalancerClass=STRING,
        internalTrafficPolicy=STRING, trafficDistribution=STRING),
    status=_struct(
        "ServiceStatus",
        loadBalancer=_struct("LoadBalancerStatus", ingress=ListOf(_struct(
            "LoadBalancerIngress", ip=STRING, hostname=STRING, ipMode=STRING,
            ports=ListOf(_struct("PortStatus", port=INT32, protocol=STRING, error=STRING))))),
        conditions=ListOf(CONDITION)))
ENDPOINT_ADDRESS = _struct("EndpointAddress", ip=STRING, hostname=STRING, nodeName=STRING,
                           targetRef=OBJECT_REFERENCE)
ENDPOINTS = _kind("Endpoints", subsets=ListOf(_struct(
    "EndpointSubset", addresses=ListOf(ENDPOINT_ADDRESS), notReadyAddresses=ListOf(ENDPOINT_ADDRESS),
    ports=ListOf(_struct("EndpointPort", name=STRING, port=INT32, protocol=STRING, appProtocol=STRING)))))
SERVICE_ACCOUNT = _kind("ServiceAccount", secrets=ListOf(OBJECT_REFERENCE),
                        imagePullSecrets=ListOf(LOCAL_OBJECT_REFERENCE), automountServiceAccountToken=BOOL)
CONFIG_MAP = _kind("ConfigMap", immutable=BOOL, data=STRING_MAP, binaryData=MapOf(BASE64))
SECRET = _kind("Secret", immutable=BOOL, data=MapOf(BASE64), stringData=STRING_MAP, type=STRING)

# -- apps -----------------------------------------------------------------------------------------

ROLLING_UPDATE = {"maxUnavailable": INT_OR_STRING, "maxSurge": INT_OR_STRING}
APPS_CONDITION_FIELDS: dict[str, Schema] = dict(type=STRING, status=STRING, lastUpdateTime=TIME,
                                                lastTransitionTime=TIME, reason=STRING, message=STRING)
DEPLOYMENT = _kind(
    "Deployment",
    spec=_struct(
        "DeploymentSpec", replicas=INT32, selector=LABEL_SELECTOR, template=POD_TEMPLATE_SPEC,
        strategy=_struct("DeploymentStrategy", type=STRING,
                         rollingUpdate=Struct("RollingUpdateDeployment", ROLLING_UPDATE)),
        minReadySeconds=INT32, revisionHistoryLimit=INT32, paused=BOOL, progressDeadlineSeconds=INT32),
    status=_struct(
        "DeploymentStatus", observedGeneration=INT64, replicas=INT32, updatedReplicas=INT32, readyReplicas=INT32,
        availableReplicas=INT32, unavailableReplicas=INT32, terminatingReplicas=INT32,
        conditions=ListOf(Struct("DeploymentCondition", APPS_CONDITION_FIELDS)), collisionCount=INT32))
DAEMON_SET = _kind(
    "DaemonSet",
    spec=_struct(
        "DaemonSetSpec", selector=LABEL_SELECTOR, template=POD_TEMPLATE_SPEC,
        updateStrategy=_struct("DaemonSetUpdateStrategy", type=STRING,
                               rollingUpdate=Struct("RollingUpdateDaemonSet", ROLLING_UPDATE)),
        minReadySeconds=INT32, revisionHistoryLimit=INT32),
    status=_struct(
        "DaemonSetStatus", currentNumberScheduled=INT32, numberMisscheduled=INT32, desiredNumberScheduled=INT32,
        numberReady=INT32, observedGeneration=INT64, updatedNumberScheduled=INT32, numberAvailable=INT32,
        numberUnavailable=INT32, collisionCount=INT32,
        conditions=ListOf(Struct("DaemonSetCondition", {k: v for k, v in APPS_CONDITION_FIELDS.items()
                                                        if k != "lastUpdateTime"}))))

class _OpenStruct(Struct):
    """An object whose listed fields are checked and whose other fields are kept as they are."""

    def walk(self, value: object, where: str, struct: str, path: str, unknown: list[str]) -> None:
        if isinstance(value, dict):
            known = {k: v for k, v in value.items() if k in self.fields}
            super().walk(known, where, struct, path, unknown)
        else:
            super().walk(value, where, struct, path, unknown)


def schema_for(group_kind: tuple[str, str]) -> Struct:
    """The schema of a kind; kinds without one (Istio's, the Gateway API's) get their metadata checked."""
    return SCHEMAS.get(group_kind) or _OpenStruct(group_kind[1], {"apiVersion": STRING, "kind": STRING,
                                                                  "metadata": OBJECT_META})


SCHEMAS: dict[tuple[str, str], Struct] = {
    ("", "Namespace"): NAMESPACE, ("", "Node"): NODE, ("", "Pod"): POD, ("", "Service"): SERVICE,
    ("", "Endpoints"): ENDPOINTS, ("", "ServiceAccount"): SERVICE_ACCOUNT, ("", "ConfigMap"): CONFIG_MAP,
    ("", "Secret"): SECRET, ("apps", "Deployment"): DEPLOYMENT, ("apps", "DaemonSet"): DAEMON_SET,
}
