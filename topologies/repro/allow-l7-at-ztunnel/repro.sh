#!/usr/bin/env bash
# istio/istio#54334 (and istio.io#16586, the L4 policy page): an ALLOW AuthorizationPolicy with an
# HTTP attribute, enforced by ztunnel (no waypoint). ztunnel cannot see HTTP, so istiod omits every
# rule that holds one; with no rule left the ALLOW matches nothing and ztunnel drops all traffic to
# the workload "as a defensive move": the allowed client gets a reset (curl exit 56), not a 403.
# Documented behaviour; #54334 was about the confusing status, which now says "Within an ALLOW
# policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested."
# Run: ambient run topologies/repro/allow-l7-at-ztunnel/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log ztunnel ambient-worker2: starting proxy

# The getting-started guide's L7 policy, applied without a waypoint: sleep may GET.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-sleep-get
spec:
  selector:
    matchLabels:
      app: httpbin
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
# expect: contains authorizationpolicy.security.istio.io/allow-sleep-get created

kubectl get authorizationpolicy allow-sleep-get -n ambient-demo -o jsonpath='{.status.conditions[0].reason}: {.status.conditions[0].message}{"\n"}'
# retry: 10
# expect: contains UnsupportedValue: ztunnel does not support HTTP attributes (found: methods).
# expect: contains Within an ALLOW policy, rules matching HTTP attributes are omitted. This will be more restrictive than requested.

# Even sleep's GET is refused: the connection is reset (curl exit 56), not answered with a 403.
kubectl exec deploy/sleep -n ambient-demo -- curl -s httpbin:8000/get
# retry: 10
# expect: exit 56
# expect: contains command terminated with exit code 56
# expect: not contains 403
# expect-log ztunnel ambient-worker2: allow policies exist, but none allowed

# The same policy without the HTTP attribute is enforced at L4: sleep gets through again.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-sleep-get
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/ambient-demo/sa/sleep
EOF
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# retry: 10
# expect: contains 200

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy allow-sleep-get -n ambient-demo
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
