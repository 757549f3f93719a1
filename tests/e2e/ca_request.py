"""Run inside a pod: ask the mesh CA for a certificate, print the outcome as one JSON line.

    python ca_request.py TOKEN_FILE_OR_- IDENTITY [--impersonate] [--ttl SECONDS] [--token JWT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import trio

from components.common import caclient

ROOT = Path("/var/run/secrets/istio/root-cert.pem")
CA = "istiod.istio-system.svc:15012"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("identity")
    parser.add_argument("--token-file", default="/var/run/secrets/tokens/istio-token")
    parser.add_argument("--token")
    parser.add_argument("--root", default=str(ROOT))
    parser.add_argument("--impersonate", action="store_true")
    parser.add_argument("--ttl", type=int, default=86400)
    args = parser.parse_args()
    token = args.token or Path(args.token_file).read_text().strip()
    try:
        cert = await caclient.fetch_certificate(CA, Path(args.root).read_bytes(), token, args.identity,
                                                impersonate=args.impersonate, ttl_seconds=args.ttl)
    except caclient.SigningError as exc:
        print(json.dumps({"ok": False, "code": exc.code, "status": exc.status, "message": exc.message,
                          "refused": isinstance(exc, caclient.CertificateRefused)}))
        return
    print(json.dumps({"ok": True, "chain": [p.decode() if isinstance(p, bytes) else p for p in cert.chain_pems]}))


trio.run(main)
