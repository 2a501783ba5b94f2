"""The mlflow-users service (one-shot, once mlflow is healthy): makes sure the non-admin account that
sweeps log in as exists, with the password from .env, and is no admin. Run again, it only resets that
password, so any number of `docker compose up` succeed.

It needs no grant: with MLflow's basic auth (workspaces off) any user may create experiments and
registered models and gets MANAGE on what it creates; everything else it may only read
(default_permission READ). Talks to the server as the admin (MLFLOW_TRACKING_USERNAME/PASSWORD)."""

from __future__ import annotations

import os
import sys

import requests
from mlflow.exceptions import RestException
from mlflow.server.auth.client import AuthServiceClient

NEEDED = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
SWEEP = ("MLFLOW_SWEEP_USERNAME", "MLFLOW_SWEEP_PASSWORD")


def ensure_user(client: AuthServiceClient, username: str, password: str) -> str:
    """Create `username` as a non-admin, or set its password and drop any admin flag; say which."""
    try:
        client.create_user(username, password)
        return "created"
    except RestException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    client.update_user_password(username, password)
    client.update_user_admin(username, False)
    return "already there: password set from .env"


def can_log_in(uri: str, username: str, password: str) -> bool:
    """The account works: the server names it as the current user, not an admin."""
    response = requests.get(f"{uri.rstrip('/')}/api/2.0/mlflow/users/current", auth=(username, password), timeout=30)
    if not response.ok:
        return False
    user = response.json()["user"]
    return user["username"] == username and not user["is_admin"]


def main() -> None:
    unset = [name for name in (*NEEDED, *SWEEP) if not os.environ.get(name)]
    if unset:
        sys.exit(f"mlflow_users.py: set {', '.join(unset)} in the service's environment")
    uri = os.environ["MLFLOW_TRACKING_URI"]
    username, password = (os.environ[name] for name in SWEEP)
    if username == os.environ["MLFLOW_TRACKING_USERNAME"]:  # ensure_user would strip the admin's own rights
        sys.exit(f"mlflow_users.py: the sweep account must not be the admin ({username!r})")
    outcome = ensure_user(AuthServiceClient(uri), username, password)
    if not can_log_in(uri, username, password):
        sys.exit(f"mlflow_users.py: user {username!r} ({outcome}) cannot log in to {uri} as a non-admin")
    print(f"mlflow_users.py: MLflow user {username!r} {outcome}; not an admin")


if __name__ == "__main__":
    main()
