#!/usr/bin/env bash
# An L4 policy that forgets the waypoint's identity (istio.io#16586; the getting-started guide fixed
# in istio.io PR #16091). With a waypoint in the path, the destination ztunnel sees the waypoint's
# identity, not the client's ("waypoint proxies do not impersonate src identity"), so a ztunnel ALLOW
# listing only client service accounts rejects the waypoint's hop and the client gets a 503 from the
# waypoint. Documented behaviour: the policy must also admit cluster.local/ns/<ns>/sa/waypoint.
# Run: ambient run topologies/repro/waypoint-identity-l4-policy/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled

# A waypoint for the namespace's services.
istioctl waypoint apply -n ambient-demo --enroll-namespace --wait
kubectl rollout status deploy/waypoint -n ambient-demo --timeout=60s
# expect: contains waypoint ambient-demo/waypoint applied
# expect: contains namespace ambient-demo labeled with "istio.io/use-waypoint: waypoint"

# sleep -> httpbin now goes through the waypoint (it logs the request).
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/status/204
kubectl logs deploy/waypoint -n ambient-demo | grep -c 'GET /status/204'
# retry: 30
# expect: matches ^204\n[1-9]

# The L4 policy as people first write it: only sleep may reach httpbin.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin-l4
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
# expect: contains authorizationpolicy.security.istio.io/httpbin-l4 created

# Even sleep is refused now: the waypoint's connection to httpbin is denied, and it answers 503.
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
kubectl logs deploy/waypoint -n ambient-demo | grep 'GET /get' | tail -1
# retry: 15
# expect: matches ^503$
# expect: contains 503 UF

# httpbin's ztunnel saw the waypoint's identity, not sleep's, and rejected it.
ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}')
kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep 'direction="inbound"' | grep 'policy rejection' | tail -1
# expect: contains src.identity="spiffe://cluster.local/ns/ambient-demo/sa/waypoint"
# expect: contains dst.workload="httpbin-
# expect: contains allow policies exist, but none allowed

# The guide's fix: admit the waypoint's identity too.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin-l4
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
        - cluster.local/ns/ambient-demo/sa/waypoint
EOF
kubectl exec deploy/sleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# retry: 15
# expect: contains 200

# Leave the cluster as the topology made it.
kubectl delete authorizationpolicy httpbin-l4 -n ambient-demo
istioctl waypoint delete --all -n ambient-demo
kubectl label namespace ambient-demo istio.io/use-waypoint- istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
