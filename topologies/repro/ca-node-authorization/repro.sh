#!/usr/bin/env bash
# The CA refusing an identity from another node (istio/istio#41379's node authorization; seen as a
# bug in istio/istio#44530, where a ztunnel hairpinning for a waypoint asked for the source pod's
# identity on the wrong node: "istiod refuses to sign the cert, as the source pod is not in the
# destination ztunnel's node"). ztunnel authenticates as itself (sa/ztunnel) and asks for its pods'
# identities with the ImpersonatedIdentity metadata; "Requests for identities not running on the
# node are rejected." Behaviour as designed, reproduced.
# The request below is ztunnel's own (a CSR for the identity, its token, the mesh root), sent with
# curl and openssl from the ztunnel pod of ambient-worker, where notsleep runs and httpbin does not.
# Run: ambient run topologies/repro/ca-node-authorization/repro.sh
# topology: ../../ambient.yaml

kubectl label namespace ambient-demo istio.io/dataplane-mode=ambient
# expect: contains namespace/ambient-demo labeled
# expect-log ztunnel ambient-worker: starting proxy

# httpbin runs on ambient-worker2 only; notsleep on ambient-worker.
kubectl get pods -n ambient-demo -o wide
# expect: matches ^httpbin-\S+\s+1/1\s+Running\s.*\sambient-worker2\s
# expect: matches ^notsleep-\S+\s+1/1\s+Running\s.*\sambient-worker\s

# ambient-worker's ztunnel asks the CA for httpbin's identity: refused, naming the node. The same
# request for notsleep, which runs on ambient-worker, is signed.
ZTUNNEL_WORKER=$(kubectl get pod -n istio-system -l app=ztunnel --field-selector spec.nodeName=ambient-worker -o jsonpath='{.items[0].metadata.name}')
for sa in httpbin notsleep; do
  echo "--- certificate for sa/$sa, asked by $ZTUNNEL_WORKER"
  kubectl exec $ZTUNNEL_WORKER -n istio-system -- sh -c '
    id=spiffe://cluster.local/ns/ambient-demo/sa/$1
    csr=$(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null \
          -subj "/O=cluster.local" -addext "subjectAltName=critical,URI:$id" 2>/dev/null | awk "{printf \"%s\\\\n\", \$0}")
    curl -s --http2 --cacert /var/run/secrets/istio/root-cert.pem -D - \
      -H "authorization: Bearer $(cat /var/run/secrets/tokens/istio-token)" -H "content-type: application/json" \
      -d "{\"csr\": \"$csr\", \"validityDuration\": 3600, \"metadata\": {\"ImpersonatedIdentity\": \"$id\"}}" \
      https://istiod.istio-system.svc:15012/istio.v1.auth.IstioCertificateService/CreateCertificate' sh $sa
  echo
done
# expect: matches --- certificate for sa/httpbin, .*\n(.*\n)*grpc-status: 16\s(.*\n)*.*"status": "Unauthenticated", "message": "request impersonation authentication failure: no instances of \\"ambient-demo/httpbin\\" found on node \\"ambient-worker\\""
# expect: matches --- certificate for sa/notsleep, .*\n(.*\n)*grpc-status: 0\s(.*\n)*\{"certChain": \["-----BEGIN CERTIFICATE-----

# istiod logged the refusal.
kubectl logs deploy/istiod -n istio-system | grep 'impersonat' | tail -1
# expect: contains no instances of "ambient-demo/httpbin" found on node "ambient-worker"

# The ztunnels hold certificates for their own node's pods only.
istioctl ztunnel-config certificates --node ambient-worker
# retry: 10
# expect: contains spiffe://cluster.local/ns/ambient-demo/sa/notsleep
# expect: not contains spiffe://cluster.local/ns/ambient-demo/sa/httpbin

# Leave the cluster as the topology made it.
kubectl label namespace ambient-demo istio.io/dataplane-mode-
# expect: contains namespace/ambient-demo unlabeled
