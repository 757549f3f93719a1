#!/usr/bin/env bash
# istio/ztunnel#1901 (also istio/istio#44256): "ztunnel does not enforce `principals`". The client
# was an ingress gateway outside the mesh, so its connections reached the destination ztunnel as
# plaintext (inbound port 15006) with no peer identity; a `principals` (or `namespaces`) rule can
# never match an empty identity, so ALLOW denies it ("allow policies exist, but none allowed").
# Closed as not a bug: only `ipBlocks` can admit an out-of-mesh client.
# Run: ambient run topologies/repro/ztunnel-1901-plaintext-principals/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log ztunnel ambient-worker2: starting proxy

# The out-of-mesh client: a namespace without the ambient label, as the reporter's gateway was.
kubectl apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: ingress
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gateway
  namespace: ingress
spec:
  selector:
    matchLabels:
      app: gateway
  template:
    metadata:
      labels:
        app: gateway
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: curl
        image: curlimages/curl
        command: ["/bin/sleep", "infinity"]
EOF
kubectl rollout status deploy/gateway -n ingress --timeout=60s
# expect: contains successfully rolled out

# The reporter's policy: only the gateway's identity (and sleep's) may reach httpbin.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-gateway
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/ingress/sa/default
        - cluster.local/ns/ambient-demo/sa/sleep
EOF
# expect: contains authorizationpolicy.security.istio.io/allow-gateway created

# sleep, in the mesh, arrives over HBONE with its identity and is allowed.
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# retry: 10
# expect: contains 200

# The gateway, outside the mesh, arrives as plaintext with no identity: its principal never
# matches, and ztunnel closes the connection (curl exit 56).
kubectl exec deploy/gateway -n ingress -- curl -s httpbin.ambient-demo:8000/get
# retry: 10
# expect: exit 56
# expect: contains command terminated with exit code 56
# expect-log ztunnel ambient-worker2: src.workload="gateway-
# expect-log ztunnel ambient-worker2: error="connection closed due to policy rejection: allow policies exist, but none allowed"

# The destination ztunnel logged the connection without any src.identity.
ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}')
kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep 'src.workload="gateway-' | tail -1
# expect: contains direction="inbound"
# expect: not contains src.identity=

# What does admit it: the source address, which plaintext connections do carry.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-gateway-ip
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks:
        - $(kubectl get pod -n ingress -l app=gateway -o jsonpath='{.items[0].status.podIP}')/32
EOF
# expect: contains authorizationpolicy.security.istio.io/allow-gateway-ip created

kubectl exec deploy/gateway -n ingress -- curl -s -o /dev/null -w '%{http_code}\n' httpbin.ambient-demo:8000/get
# retry: 10
# expect: contains 200

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy allow-gateway allow-gateway-ip -n ambient-demo
kubectl delete namespace ingress
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
