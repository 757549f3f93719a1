#!/usr/bin/env bash
# Seed 002, "Istio Ambient Mesh の inpod redirection 試してみた", with the post's own commands.
# Run it with: ambient run topologies/walkthroughs/seed002.sh --topology topologies/default.yaml
# (the topology is the post's kind cluster with httpbin, sleep and notsleep already applied).
# Steps are separated by blank lines; each runs in its own bash, so variables such as
# ZTUNNEL_WORKER2 are set again in the step that uses them.

# The cluster before the mesh: httpbin and sleep on ambient-worker2, notsleep on ambient-worker.
kubectl get pods -n ambient-demo -o wide
# expect: matches ^httpbin-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+10\.244\.\d+\.\d+\s+ambient-worker2\s
# expect: matches ^sleep-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+10\.244\.\d+\.\d+\s+ambient-worker2\s
# expect: matches ^notsleep-\S+\s+1/1\s+Running\s+\d+\s+\S+\s+10\.244\.\d+\.\d+\s+ambient-worker\s

# sleep -> httpbin, plain Kubernetes networking.
kubectl exec deploy/sleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1
# expect: contains <title>httpbin.org</title>

# httpbin only listens on 8080 before the mesh.
kubectl debug $(kubectl get pod -l app=httpbin -n ambient-demo -o jsonpath='{.items[0].metadata.name}') -it -n ambient-demo --image nicolaka/netshoot -- ss -ntlp
# expect: matches 0\.0\.0\.0:8080
# expect: not contains 15008

# Install Istio's ambient profile.
istioctl install --set profile=ambient --skip-confirmation
# expect: contains ✔ Istiod installed
# expect: contains ✔ CNI installed
# expect: contains ✔ Ztunnel installed
# expect: contains ✔ Installation complete

kubectl get pod -n istio-system -l app=ztunnel -o wide
# expect: matches ^ztunnel-\S+\s+1/1\s+Running\s.*ambient-worker2\s

# Enroll the namespace: no restarts, istio-cni captures the pods in place.
kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log istio-cni ambient-worker2: Namespace ambient-demo is enabled in ambient mesh
# expect-log istio-cni ambient-worker2: in pod mode - adding pod ambient-demo/httpbin-
# expect-log ztunnel ambient-worker2: starting proxy
# expect-log ztunnel ambient-worker2: address=[::]:15008 component="inbound" transparent=true

# The in-pod rules istio-cni wrote into httpbin's network namespace.
kubectl debug $(kubectl get pod -l app=httpbin -n ambient-demo -o jsonpath='{.items[0].metadata.name}') -it -n ambient-demo --image gcr.io/istio-release/base --profile=netadmin -- iptables-save
# expect: contains -A ISTIO_PRERT -p tcp -m tcp --dport 15008 -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15008 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff
# expect: contains -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001

kubectl debug $(kubectl get pod -l app=httpbin -n ambient-demo -o jsonpath='{.items[0].metadata.name}') -it -n ambient-demo --image gcr.io/istio-release/base --profile=netadmin -- ip rule
# expect: contains from all fwmark 0x111/0xfff lookup 100

kubectl debug $(kubectl get pod -l app=httpbin -n ambient-demo -o jsonpath='{.items[0].metadata.name}') -it -n ambient-demo --image gcr.io/istio-release/base --profile=netadmin -- ip route show table 100
# expect: contains local default dev lo scope host

# ztunnel's listeners now sit inside the pod, next to the app.
kubectl debug $(kubectl get pod -l app=httpbin -n ambient-demo -o jsonpath='{.items[0].metadata.name}') -it -n ambient-demo  --image nicolaka/netshoot -- ss -ntlp
# expect: contains 127.0.0.1:15080
# expect: contains *:15006
# expect: contains *:15001
# expect: contains *:15008
# expect: contains 0.0.0.0:8080

# The same through plain exec.
kubectl exec deploy/httpbin -n ambient-demo -- iptables-save
# expect: contains -A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff

# sleep -> httpbin on the same node, through HBONE.
kubectl exec deploy/sleep -n ambient-demo  -- curl httpbin:8000 -s | grep title -m 1
# expect: contains <title>httpbin.org</title>
# expect-log ztunnel ambient-worker2: src.identity="spiffe://cluster.local/ns/ambient-demo/sa/sleep"

# notsleep -> httpbin across nodes; the destination ztunnel logs both identities.
kubectl exec deploy/notsleep -n ambient-demo  -- curl httpbin:8000 -s | grep title -m 1
ZTUNNEL_WORKER2=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector=spec.nodeName=ambient-worker2 -o=jsonpath='{.items[0].metadata.name}')
kubectl logs $ZTUNNEL_WORKER2 -n istio-system | grep 'direction="inbound"' | grep notsleep | tail -1
# expect: contains <title>httpbin.org</title>
# expect: contains src.identity="spiffe://cluster.local/ns/ambient-demo/sa/notsleep"
# expect: contains dst.identity="spiffe://cluster.local/ns/ambient-demo/sa/httpbin"

# The L4 policy: only sleep's identity may reach httpbin.
kubectl apply -n ambient-demo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
 name: allow-sleep-to-httpbin
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
# expect: contains authorizationpolicy.security.istio.io/allow-sleep-to-httpbin created

istioctl ztunnel-config policies
# expect: contains allow-sleep-to-httpbin Allow  WorkloadSelector

kubectl exec deploy/sleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1
# expect: contains <title>httpbin.org</title>

# notsleep is refused: ztunnel answers the CONNECT with 401 and curl exits 56.
kubectl exec deploy/notsleep -n ambient-demo -- curl httpbin:8000 -s | grep title -m 1
# expect: exit 1
# expect: contains command terminated with exit code 56
# expect: not contains <title>
# expect-log ztunnel ambient-worker: error="http status: 401 Unauthorized"
