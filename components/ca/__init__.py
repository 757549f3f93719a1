"""The mesh CA: istiod's `IstioCertificateService` as its own process.

Signs workload CSRs for SPIFFE identities `spiffe://<trust domain>/ns/<ns>/sa/<sa>`, authenticating
callers by their service-account token (TokenReview) and letting trusted node proxies (ztunnel)
impersonate only identities that have a pod on their own node.
"""
