#!/usr/bin/env bash
# Seed 001, Istio's "Getting started with ambient mesh", with the guide's own commands.
# Run it with: ambient run topologies/walkthroughs/seed001.sh
# The topology (topologies/bookinfo.yaml) is the guide's kind cluster with Istio's ambient
# profile (and its ingress gateway) installed, Bookinfo, sleep and notsleep applied in `default`,
# not yet in the mesh. Steps are separated by blank lines; `# retry:` re-runs a step while the
# config it depends on is still reaching the proxies.
# topology: ../bookinfo.yaml

# Install Istio with the ambient profile (already installed at bring-up: this reconciles).
istioctl install --set profile=ambient --set "components.ingressGateways[0].enabled=true" --set "components.ingressGateways[0].name=istio-ingressgateway" --skip-confirmation
# expect: contains ✔ Istiod installed
# expect: contains ✔ CNI installed
# expect: contains ✔ Ingress gateways installed
# expect: contains ✔ Installation complete

kubectl get pod -n istio-system
# expect: matches ^istio-cni-node-\S+\s+1/1\s+Running
# expect: matches ^istio-ingressgateway-\S+\s+1/1\s+Running
# expect: matches ^istiod-\S+\s+1/1\s+Running
# expect: matches ^ztunnel-\S+\s+1/1\s+Running

# Deploy the application (already applied at bring-up: unchanged) and the two curl clients.
kubectl apply -f samples/bookinfo/platform/kube/bookinfo.yaml
# expect: contains deployment.apps/productpage-v1

kubectl apply -f https://raw.githubusercontent.com/linsun/sample-apps/main/sleep/sleep.yaml
# expect: contains deployment.apps/sleep

kubectl apply -f https://raw.githubusercontent.com/linsun/sample-apps/main/sleep/notsleep.yaml
# expect: contains deployment.apps/notsleep

# Expose productpage through the ingress gateway.
kubectl apply -f samples/bookinfo/networking/bookinfo-gateway.yaml
# expect: contains gateway.networking.istio.io/bookinfo-gateway
# expect: contains virtualservice.networking.istio.io/bookinfo

# The application works with and without the gateway, before the mesh.
kubectl exec deploy/sleep -- curl -s http://istio-ingressgateway.istio-system/productpage | head -n1
# retry: 10
# expect: contains <!DOCTYPE html>

kubectl exec deploy/sleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

kubectl exec deploy/notsleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

# Add the namespace to the ambient mesh: no restart.
kubectl label namespace default istio.io/dataplane-mode=ambient
# expect: contains namespace/default labeled

kubectl exec deploy/sleep -- curl -s http://istio-ingressgateway.istio-system/productpage | head -n1
# retry: 10
# expect: contains <!DOCTYPE html>

kubectl exec deploy/sleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

kubectl exec deploy/notsleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

# The seed's look at the sleep identity's certificate was written for the Envoy-based ztunnel of
# 2022. istioctl 1.24 reads a ztunnel's /config_dump as Envoy's and finds no secrets in it.
istioctl pc secret ds/ztunnel -n istio-system -o json | jq -r '.dynamicActiveSecrets[0].secret.tlsCertificate.certificateChain.inlineBytes' | base64 --decode | openssl x509 -noout -text -in /dev/stdin
# expect: exit 1
# expect: contains Error: sidecar doesn't support secrets: config dump has no configuration type type.googleapis.com/envoy.admin.v3.SecretsConfigDump
# expect: not contains Certificate:

# The same certificate the 1.24 way: from the ztunnel of sleep's node, issued by the cluster's CA.
istioctl zc certificates --node "$(kubectl get pod -l app=sleep -o jsonpath='{.items[0].spec.nodeName}')" -o json | jq -r '.[] | select(.identity | endswith("/ns/default/sa/sleep")) | .certChain[0].pem' | base64 --decode | openssl x509 -noout -text -in /dev/stdin
# expect: matches Issuer: O ?= ?cluster\.local
# expect: contains URI:spiffe://cluster.local/ns/default/sa/sleep

# L4 authorization: only sleep and the ingress gateway may call productpage.
kubectl apply -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
 name: productpage-viewer
 namespace: default
spec:
 selector:
  matchLabels:
   app: productpage
 action: ALLOW
 rules:
 - from:
   - source:
      principals: ["cluster.local/ns/default/sa/sleep", "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
EOF
# expect: contains authorizationpolicy.security.istio.io/productpage-viewer created

# this should succeed
kubectl exec deploy/sleep -- curl -s http://istio-ingressgateway.istio-system/productpage | head -n1
# expect: contains <!DOCTYPE html>

# this should succeed
kubectl exec deploy/sleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

# this should fail with an empty reply
kubectl exec deploy/notsleep -- curl -s http://productpage:9080/ | head -n1
# retry: 10
# expect: not contains <!DOCTYPE html>

# L7: a waypoint proxy for productpage, running as its service account (the guide's istio-mesh form).
kubectl apply -f - <<EOF
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
 name: productpage
 annotations:
   istio.io/service-account: bookinfo-productpage
spec:
 gatewayClassName: istio-mesh
EOF
# expect: contains gateway.gateway.networking.k8s.io/productpage created

kubectl get gateway productpage -o yaml
# retry: 20
# expect: contains message: Deployed waypoint proxy to "default" namespace for "bookinfo-productpage"
# expect: contains reason: Ready

kubectl rollout status deploy/bookinfo-productpage-waypoint-proxy --timeout=60s
# expect: contains successfully rolled out

# Allow sleep and the ingress gateway to GET productpage, nothing else.
kubectl apply -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
 name: productpage-viewer
 namespace: default
spec:
 selector:
  matchLabels:
   app: productpage
 action: ALLOW
 rules:
 - from:
   - source:
      principals: ["cluster.local/ns/default/sa/sleep", "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]
   to:
   - operation:
      methods: ["GET"]
EOF
# expect: contains authorizationpolicy.security.istio.io/productpage-viewer configured

# this should fail with an RBAC error because it is not a GET operation
kubectl exec deploy/sleep -- curl -s http://productpage:9080/ -X DELETE | head -n1
# retry: 20
# expect: contains RBAC: access denied

# this should fail with an RBAC error because the identity is not allowed
kubectl exec deploy/notsleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains RBAC: access denied

# this should continue to work
kubectl exec deploy/sleep -- curl -s http://productpage:9080/ | head -n1
# expect: contains <!DOCTYPE html>

# The waypoint's L7 metrics: 403s and 200s, with source and destination identities.
kubectl exec deploy/bookinfo-productpage-waypoint-proxy -- curl -s http://localhost:15020/stats/prometheus | grep istio_requests_total
# expect: matches istio_requests_total\{[^}]*source_workload="notsleep"[^}]*destination_workload="productpage-v1"[^}]*response_code="403"[^}]*connection_security_policy="mutual_tls"
# expect: matches istio_requests_total\{[^}]*source_principal="spiffe://cluster\.local/ns/default/sa/notsleep"[^}]*destination_principal="spiffe://cluster\.local/ns/default/sa/bookinfo-productpage"
# expect: matches istio_requests_total\{[^}]*source_workload="sleep"[^}]*response_code="200"

# Traffic control: a waypoint for reviews, then 90% to v1 and 10% to v2.
kubectl apply -f - <<EOF
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
 name: reviews
 annotations:
   istio.io/service-account: bookinfo-reviews
spec:
 gatewayClassName: istio-mesh
EOF
# expect: contains gateway.gateway.networking.k8s.io/reviews created

kubectl apply -f samples/bookinfo/networking/virtual-service-reviews-90-10.yaml
# expect: contains virtualservice.networking.istio.io/reviews created

kubectl apply -f samples/bookinfo/networking/destination-rule-reviews.yaml
# expect: contains destinationrule.networking.istio.io/reviews created

kubectl rollout status deploy/bookinfo-reviews-waypoint-proxy --timeout=60s
# expect: contains successfully rolled out

# About 10% of 100 requests go to reviews-v2 (none to v3).
kubectl exec -it deploy/sleep -- sh -c 'for i in $(seq 1 100); do curl -s http://istio-ingressgateway.istio-system/productpage | grep reviews-v.-; done'
# retry: 20
# expect: matches reviews-v2-
# expect: not contains reviews-v3-

# 200 more requests, counted per version: v1's share is within a binomial tolerance of 90%
# (mean 180 of 200, standard deviation 4.2: 163 to 197 is four deviations either side).
kubectl exec deploy/sleep -- sh -c 'for i in $(seq 1 200); do curl -s http://istio-ingressgateway.istio-system/productpage | grep -o "reviews-v.-"; done' | sort | uniq -c
# expect: matches ^\s*(16[3-9]|1[78]\d|19[0-7]) reviews-v1-$
# expect: matches ^\s*([3-9]|[1-3]\d) reviews-v2-$
# expect: not contains reviews-v3-
