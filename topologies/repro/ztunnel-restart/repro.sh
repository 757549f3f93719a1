#!/usr/bin/env bash
# A ztunnel restart with live pods: istio/ztunnel#521 ("Ztunnel pod does not capture traffic on
# restart") and istio/istio#42610 ("Restarting ztunnel causes traffic to be proxied using
# Passthrough instead of HBONE"). Fixed by the in-pod design (istio/ztunnel#747,
# ztunnel-cni-lifecycle.md): istio-cni hands the new ztunnel a snapshot of the node's pods, it binds
# its listeners inside each pod again (SO_REUSEPORT), and the pods are neither restarted nor
# re-captured. Fixed behaviour reproduced: after the restart, traffic is HBONE again with both
# identities, and no application pod restarted.
# Run: ambient run topologies/repro/ztunnel-restart/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log ztunnel ambient-worker2: starting proxy

# Before: notsleep (ambient-worker) reaches httpbin (ambient-worker2) over HBONE.
kubectl exec deploy/notsleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
# retry: 10
# expect: contains 200
# expect-log ztunnel ambient-worker2: dst.addr=10.244.

# Restart both ztunnels of the path; the DaemonSet starts new ones.
kubectl delete pod -n istio-system -l app=ztunnel --field-selector spec.nodeName=ambient-worker2
kubectl delete pod -n istio-system -l app=ztunnel --field-selector spec.nodeName=ambient-worker
kubectl rollout status ds/ztunnel -n istio-system --timeout=60s
# expect: contains daemon set "ztunnel" successfully rolled out

# The new ztunnel got the node's pods from istio-cni's snapshot and listens in them again.
ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}')
kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep -E 'starting proxy|address=\[::\]:15008'
# retry: 10
# expect: matches pod received, starting proxy
# expect: matches listener established\s+address=\[::\]:15008 component="inbound" transparent=true
# expect-log istio-cni ambient-worker2: ztunnel connected

# After: the same request, HBONE to httpbin's 15008 with both identities, at the new ztunnel.
kubectl exec deploy/notsleep -n ambient-demo -- curl -s -o /dev/null -w '%{http_code}\n' httpbin:8000/get
ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}')
kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep 'direction="inbound"' | grep notsleep | tail -1
# retry: 15
# expect: contains 200
# expect: matches dst\.addr=10\.244\.\d+\.\d+:15008 dst\.hbone_addr=10\.244\.\d+\.\d+:8080
# expect: contains src.identity="spiffe://cluster.local/ns/ambient-demo/sa/notsleep"
# expect: contains dst.identity="spiffe://cluster.local/ns/ambient-demo/sa/httpbin"

# No application pod was restarted or re-created: each is older than the new ztunnel, never
# restarted, and still enrolled.
ZTUNNEL_CREATED=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.creationTimestamp}')
kubectl get pods -n ambient-demo -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.creationTimestamp} {.status.containerStatuses[0].restartCount} {.metadata.annotations.ambient\.istio\.io/redirection}{"\n"}{end}' |
while read -r name created restarts redirection; do
  [[ "$created" > "$ZTUNNEL_CREATED" ]] && age="created after the new ztunnel" || age="older than the new ztunnel"
  echo "$name: $age, restarts=$restarts, redirection=$redirection"
done
# expect: matches ^httpbin-\S+: older than the new ztunnel, restarts=0, redirection=enabled$
# expect: matches ^sleep-\S+: older than the new ztunnel, restarts=0, redirection=enabled$
# expect: matches ^notsleep-\S+: older than the new ztunnel, restarts=0, redirection=enabled$
# expect: not contains created after

# Leave the cluster as the topology made it.
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
