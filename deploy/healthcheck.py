"""Container HEALTHCHECK for the web service: ``GET /healthz`` on the local daphne, the way
the reverse proxy sends it. Exit 0 when it answers 200, 1 otherwise (Docker's contract).

The Host header is the first of DJANGO_ALLOWED_HOSTS (Django answers 400 to a host it does
not serve, and production allows no default host); X-Forwarded-Proto says https as the proxy
does. Standard library only: it runs in the image's Python without loading Django.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    """The first concrete host of a DJANGO_ALLOWED_HOSTS value (``.example.com`` means the
    domain and its subdomains: the domain itself is one of them)."""
    for host in (h.strip() for h in allowed_hosts.split(",")):
        if host and host != "*":
            return host.lstrip(".")
    return "localhost"


def main() -> int:
    port = os.environ.get("QUANTSITE_HEALTHCHECK_PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={
            "Host": probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", "")),
            "X-Forwarded-Proto": "https",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
