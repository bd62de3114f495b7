"""What the HTTP registries publish talks to (MLflow's REST API, a Nexus raw repository) share: the base-URI
check (`https://`, or `http://` to loopback only; no user or password in it; no query, fragment, space or control
character) and an opener with no redirect handler, so a 30x answer is an error and never followed (a redirect
could carry the upload, or its credentials, to another host)."""

from __future__ import annotations

import urllib.parse
import urllib.request


def check_base_uri(uri: str, service: str, credential_hint: str) -> str:
    """`uri` without a trailing slash if it is https:// (or http:// to loopback) without credentials, else
    ValueError naming `service` (and, for credentials, where they belong: `credential_hint`)."""
    from mlsec_actions.oci.reference import is_loopback

    parts = urllib.parse.urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"credentials in the {service} URI are not allowed (use {credential_hint})")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        raise ValueError(f"the {service} URI must be https:// (http:// only to a loopback address)")
    if parts.query or parts.fragment or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise ValueError(f"the {service} URI has a query, fragment, space or control character")
    return uri.rstrip("/")


def opener() -> urllib.request.OpenerDirector:
    """HTTP(S) with error processing and no redirect handler: a 30x raises HTTPError like any non-2xx."""
    out = urllib.request.OpenerDirector()
    for handler in (urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        out.add_handler(handler)
    return out
