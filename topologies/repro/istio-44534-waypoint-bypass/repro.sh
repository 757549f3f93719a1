#!/usr/bin/env bash
# istio/istio#44534 ("L7 routing doesn't work with waypoint if source pod not in the ambient mesh")
# and #57704 (traffic went straight to the pod's 15008, skipping the waypoint): a service waypoint
# only sees traffic that meshed clients address to the service. A client outside the mesh, or one
# that addresses the pod IP, goes directly to the pod and skips the waypoint's L7 policy.
# Documented behaviour (istio.io data-plane page; istio.io PR #17520): "To require that traffic
# traverses the waypoint, pair the waypoint policy with an AuthorizationPolicy enforced by ztunnel
# that admits only the waypoint's identity." Both the bypass and that remedy are reproduced.
# Run: ambient run topologies/repro/istio-44534-waypoint-bypass/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled

istioctl waypoint apply -n ambient-demo --enroll-namespace --wait
kubectl rollout status deploy/waypoint -n ambient-demo --timeout=60s
# expect: contains waypoint ambient-demo/waypoint applied

# A client outside the mesh.
kubectl apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: outside
---
apiVersion: v1
kind: Pod
metadata:
  name: outsider
  namespace: outside
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: curl
    image: curlimages/curl
    command: ["/bin/sleep", "infinity"]
EOF
kubectl wait --for=condition=Ready pod/outsider -n outside --timeout=60s
# expect: contains pod/outsider condition met

# The waypoint's L7 policy: httpbin answers only sleep's GETs.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin-viewer
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/ambient-demo/sa/sleep
    to:
    - operation:
        methods: ["GET"]
EOF
# expect: contains authorizationpolicy.security.istio.io/httpbin-viewer created

# Through the service, the waypoint enforces it: sleep's POST gets a 403.
kubectl exec deploy/sleep -n ambient-demo -- curl -s -X POST httpbin:8000/post
# retry: 30
# expect: contains RBAC: access denied

# The bypasses: sleep addressing the pod IP, and the client outside the mesh, both POST freely.
HTTPBIN_POD_IP=$(kubectl get pod -n ambient-demo -l app=httpbin -o jsonpath='{.items[0].status.podIP}')
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w 'sleep to the pod IP: %{http_code}\n' -X POST http://$HTTPBIN_POD_IP:8080/post
kubectl exec outsider -n outside -- curl -s -o /dev/null -w 'outside the mesh: %{http_code}\n' -X POST httpbin.ambient-demo:8000/post
# expect: contains sleep to the pod IP: 200
# expect: contains outside the mesh: 200

# The remedy: a ztunnel policy on httpbin that admits only the waypoint's identity.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin-only-via-waypoint
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/ambient-demo/sa/waypoint
EOF
# expect: contains authorizationpolicy.security.istio.io/httpbin-only-via-waypoint created

# Both bypasses are now refused by httpbin's ztunnel (curl exit 56)...
HTTPBIN_POD_IP=$(kubectl get pod -n ambient-demo -l app=httpbin -o jsonpath='{.items[0].status.podIP}')
kubectl exec deploy/sleep -n ambient-demo -- curl -s -X POST http://$HTTPBIN_POD_IP:8080/post; echo "sleep to the pod IP: exit $?"
kubectl exec outsider -n outside -- curl -s -X POST httpbin.ambient-demo:8000/post; echo "outside the mesh: exit $?"
# retry: 15
# expect: contains sleep to the pod IP: exit 56
# expect: contains outside the mesh: exit 56

# ...while sleep's GET through the waypoint still works.
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# expect: contains 200

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy httpbin-viewer httpbin-only-via-waypoint -n ambient-demo
kubectl delete namespace outside
istioctl waypoint delete --all -n ambient-demo
kubectl label namespace ambient-demo istio.io/use-waypoint- istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
