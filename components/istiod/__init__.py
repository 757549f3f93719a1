"""istiod: derives the ambient mesh's config (workloads, services, authorizations) from the cluster."""
