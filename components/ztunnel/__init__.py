"""ztunnel: the per-node L4 proxy of the ambient mesh (HBONE, in-pod redirection, L4 policy)."""
