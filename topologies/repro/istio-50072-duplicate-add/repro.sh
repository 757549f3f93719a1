#!/usr/bin/env bash
# istio/istio#50072 (also #56692, seed 002): adding a pod to the mesh twice. istio-cni applied one
# `iptables-restore --noflush` blob whose line 2 is `-N ISTIO_...`; when the pod already had the
# chains (added twice, agent restarted, rules left behind) the restore aborted with
# "xtables other problem: line 2 failed" and the pod was not enrolled ("failed to add pod to
# ztunnel"). Fixed by istio/istio#53153: the agent first compares what the pod has with what it
# wants (clean, compatible residues, or residues to reconcile).
# Run: ambient run topologies/repro/istio-50072-duplicate-add/repro.sh
# topology: ../../ambient.yaml

# Enroll the namespace: istio-cni adds httpbin and sleep on ambient-worker2, into clean pods.
kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log istio-cni ambient-worker2: in pod mode - adding pod ambient-demo/httpbin-
# expect-log istio-cni ambient-worker2: Clean-state detected, new iptables are needed

# The bug's mechanism, with the real iptables in httpbin's netns: a blob that creates a chain the
# pod already has fails on its line 2.
kubectl exec deploy/httpbin -n ambient-demo -- sh -c 'printf "* nat\n-N ISTIO_OUTPUT\nCOMMIT\n" | iptables-restore --noflush'
# expect: exit 1
# expect: contains iptables-restore: line 2 failed

# Add every pod of the node a second time: restart its istio-cni agent (the DaemonSet starts a new
# one, which finds the pods already enrolled and adds them again).
kubectl delete pod -n istio-system -l k8s-app=istio-cni-node --field-selector spec.nodeName=ambient-worker2
kubectl rollout status ds/istio-cni-node -n istio-system --timeout=60s
# expect: contains successfully rolled out

# The fixed behaviour: the second add finds its own rules and leaves them ("compatible residues").
CNI=$(kubectl get pod -n istio-system -l k8s-app=istio-cni-node --field-selector spec.nodeName=ambient-worker2 -o jsonpath='{.items[0].metadata.name}')
kubectl logs $CNI -n istio-system | grep -A3 'adding pod ambient-demo/httpbin'
# retry: 10
# expect: matches adding pod ambient-demo/httpbin-\S+ to ztunnel\n(.*\n){0,2}.*Found compatible residues of old iptables rules/chains, reconciliation not needed
# expect-no-log istio-cni ambient-worker2: line 2 failed
# expect-no-log istio-cni ambient-worker2: failed to add pod to ztunnel

# httpbin is still in the mesh: notsleep reaches it over HBONE with its identity.
kubectl exec deploy/notsleep -n ambient-demo -- curl -s httpbin:8000/get -o /dev/null -w '%{http_code}\n'
# expect: contains 200
# expect-log ztunnel ambient-worker2: src.identity="spiffe://cluster.local/ns/ambient-demo/sa/notsleep"

# Rules left behind that differ from the agent's: take one rule out of httpbin's nat table.
kubectl exec deploy/httpbin -n ambient-demo -- iptables -t nat -D ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
kubectl exec deploy/httpbin -n ambient-demo -- iptables-save -t nat
# expect: not contains --to-ports 15001

# A new agent reconciles them instead of failing: the rule is back.
kubectl delete pod -n istio-system -l k8s-app=istio-cni-node --field-selector spec.nodeName=ambient-worker2
kubectl rollout status ds/istio-cni-node -n istio-system --timeout=60s
kubectl exec deploy/httpbin -n ambient-demo -- iptables-save -t nat
# retry: 10
# expect: contains -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
# expect-log istio-cni ambient-worker2: Found residues of old iptables rules/chains, reconciliation is recommended
# expect-no-log istio-cni ambient-worker2: line 2 failed

# Leave the cluster as the topology made it.
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
