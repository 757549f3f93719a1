#!/usr/bin/env bash
# istio/istio#61126: a DENY AuthorizationPolicy whose only rule holds HTTP (L7) attributes, applied
# to a workload with no waypoint. ztunnel enforces L4 only: istiod drops the L7 fields, the rule is
# left empty, and an empty rule never matches, so the DENY never fires (requests get 200). istiod's
# status then said the policy would be "more restrictive than requested"; istio/istio#61166 fixed
# the message only ("...has no enforceable rules at ztunnel and will have no effect"). A DENY that
# mixes L4 and L7 fields in one operation keeps its L4 part and denies more than asked.
# Run: ambient run topologies/repro/istio-61126-deny-l7-only/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log ztunnel ambient-worker2: starting proxy

# The issue's policy: deny requests without a JWT (no RequestAuthentication, so none has one).
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - from:
    - source:
        notRequestPrincipals: ["*"]
EOF
# expect: contains authorizationpolicy.security.istio.io/require-jwt created

# httpbin's ztunnel has the policy...
istioctl ztunnel-config policies --node ambient-worker2
# retry: 10
# expect: matches ambient-demo\s+require-jwt\s+Deny\s+WorkloadSelector

# ...and istiod's status says what ztunnel does with it (the text of the fix, istio/istio#61166).
kubectl get authorizationpolicy require-jwt -n ambient-demo -o jsonpath='{.status.conditions[0].reason}: {.status.conditions[0].message}{"\n"}'
# retry: 10
# expect: contains UnsupportedValue: ztunnel does not support HTTP attributes (found: notRequestPrincipals).
# expect: contains this DENY policy has no enforceable rules at ztunnel and will have no effect

# The DENY never fires: a request with no JWT gets through (the bug's data-plane behaviour).
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# expect: contains 200
# expect-log ztunnel ambient-worker2: src.identity="spiffe://cluster.local/ns/ambient-demo/sa/sleep"

# The contrast: L7 mixed with L4 in one operation. ztunnel keeps `ports` and drops `methods`, so a
# DENY of POST on 8080 denies every connection to 8080, GET included.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: deny-post
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["8080"]
        methods: ["POST"]
EOF
# expect: contains authorizationpolicy.security.istio.io/deny-post created

kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000/get
# retry: 10
# expect: exit 56
# expect: contains command terminated with exit code 56
# expect-log ztunnel ambient-worker2: explicitly denied by: ambient-demo/deny-post

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy require-jwt deny-post -n ambient-demo
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
