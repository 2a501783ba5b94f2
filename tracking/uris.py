"""Tracking URIs without MLflow (cheap to import): where the store is, and credentials in a URI
(`http://user:pass@host`): shown masked, stored without, sent from the environment.

The one place that knows the URI syntax of a credential; every message that shows a URI goes
through `masked`, everything that stores one through `without_credentials`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """MLflow's fluent API (Model.log, pyfunc.load_model, a local registry's `models:/m-...` sources)
    pointed at `uri` for the block, then put back as it was.

    mlflow.set_tracking_uri/set_registry_uri are process-global and also export MLFLOW_TRACKING_URI/
    MLFLOW_REGISTRY_URI, which every later subprocess inherits: left set, one promote would send the
    next command's registry writes to the wrong store. MLflow's getters say where it points, not
    whether a URI was set, so each is unset first and set again only where unset points elsewhere.
    """
    import mlflow

    variables = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved_environment = {name: os.environ.get(name) for name in variables}
    saved_tracking, saved_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()

    def restore_environment() -> None:
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets it, as MLflow handles
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        restore_environment()
        if mlflow.get_tracking_uri() != saved_tracking:
            mlflow.set_tracking_uri(saved_tracking)
        if mlflow.get_registry_uri() != saved_registry:
            mlflow.set_registry_uri(saved_registry)
        restore_environment()  # the setters export what they set
