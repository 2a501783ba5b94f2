"""Tracking URIs without MLflow (cheap to import): where the store is, and credentials in a URI
(`http://user:pass@host`): shown masked, stored without, sent from the environment.

The one place that knows the URI syntax of a credential; every message that shows a URI goes
through `masked`, everything that stores one through `without_credentials`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_STORE = "mlruns.db"

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:]*)(?::[^/@]*)?@")
USERNAME_VARIABLE = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VARIABLE = "MLFLOW_TRACKING_PASSWORD"


def masked(uri: str | None) -> str:
    """`uri` fit to print: `http://user:secret@host` -> `http://user:***@host` (a user alone stays)."""
    if not uri:
        return ""
    return _USERINFO.sub(
        lambda m: f"{m['scheme']}{m['user']}:***@" if ":" in m.group(0)[len(m["scheme"]) :] else m.group(0), uri
    )


def without_credentials(uri: str | None) -> str:
    """`uri` fit to store: `http://user:secret@host` -> `http://host`."""
    return _USERINFO.sub(lambda m: m["scheme"], uri or "")


def credentials_to_environment(uri: str) -> str:
    """An HTTP tracking URI's credentials moved into MLFLOW_TRACKING_USERNAME/PASSWORD (where MLflow, and
    Ray workers through the forwarded environment, read them); returns the URI without them."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or parsed.username is None:
        return uri
    os.environ[USERNAME_VARIABLE] = unquote(parsed.username)
    if parsed.password is not None:
        os.environ[PASSWORD_VARIABLE] = unquote(parsed.password)
    return without_credentials(uri)


def resolve_tracking_uri(uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else ./mlruns.db; local paths made absolute.

    Absolute because Ray runs each trial in its own working directory. An HTTP URI's credentials
    move to the environment, so no URI that is stored, pickled or printed carries them.
    """
    uri = credentials_to_environment(uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}")
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///") :]
        if path and not path.startswith("/"):
            return f"sqlite:///{Path(path).resolve()}"
        return uri
    if parsed.scheme in ("", "file"):
        local = parsed.path if parsed.scheme == "file" else uri
        return Path(local).resolve().as_uri()
    return uri


def is_local_store(uri: str) -> bool:
    return urlparse(uri).scheme in ("sqlite", "file", "")
