#!/usr/bin/env bash
# istio/istio#51556: an AuthorizationPolicy with a `selector` in one namespace was also attached by
# ztunnel to pods of another namespace that carried the same labels (a DENY in namespace A blocked
# a workload in namespace B). Fixed by istio/istio#51557/#51577 ("ambient: filter cross-namespace
# authz policies"): a selector selects only workloads of the policy's own namespace (the root
# namespace, istio-system, selects in every namespace).
# Run: ambient run topologies/repro/istio-51556-cross-namespace-selector/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled

# A second httpbin, with the same labels, in another namespace of the mesh.
kubectl apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: other
  labels:
    istio.io/dataplane-mode: ambient
---
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: other
spec:
  ports:
  - name: http
    port: 8000
    targetPort: 8080
  selector:
    app: httpbin
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
  namespace: other
spec:
  selector:
    matchLabels:
      app: httpbin
  template:
    metadata:
      labels:
        app: httpbin
    spec:
      containers:
      - name: httpbin
        image: docker.io/mccutchen/go-httpbin:v2.15.0
        ports:
        - containerPort: 8080
EOF
kubectl rollout status deploy/httpbin -n other --timeout=60s
# expect: contains successfully rolled out

# The issue's policy: deny everything to app=httpbin, in namespace ambient-demo.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: httpbin-deny-all
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - {}
EOF
# expect: contains authorizationpolicy.security.istio.io/httpbin-deny-all created

# ambient-demo's httpbin is denied...
kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000/get
# retry: 10
# expect: exit 56
# expect-log ztunnel ambient-worker2: explicitly denied by: ambient-demo/httpbin-deny-all

# ...while the httpbin of namespace other, same labels, is not (the fixed behaviour).
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin.other:8000/get
# expect: contains 200

# ztunnel attaches the policy to ambient-demo's httpbin only.
istioctl ztunnel-config workloads -o json | grep -c '"ambient-demo/httpbin-deny-all"'
# expect: matches ^1$

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy httpbin-deny-all -n ambient-demo
kubectl delete namespace other
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
