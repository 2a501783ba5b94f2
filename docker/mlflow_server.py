"""The mlflow service's entrypoint: `mlflow server ARGS`, its PostgreSQL URI built here from the
environment (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_ADDRESS, POSTGRES_DB) and handed over in
MLFLOW_BACKEND_STORE_URI, which `mlflow server` reads. The password never reaches a command line:
anyone on the host can read a process's argv (`ps`), only its own user its environment."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

PARTS = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_ADDRESS", "POSTGRES_DB")


def backend_store_uri(env: dict[str, str]) -> str:
    """postgresql://USER:PASSWORD@ADDRESS/DB, user, password and database percent-encoded."""
    user, password, address, database = (env[name] for name in PARTS)
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{address}/{quote(database, safe='')}"


def main() -> None:
    env = dict(os.environ)
    unset = [name for name in PARTS if not env.get(name)]
    if unset:
        sys.exit(f"mlflow_server.py: set {', '.join(unset)} in the service's environment")
    env["MLFLOW_BACKEND_STORE_URI"] = backend_store_uri(env)
    del env["POSTGRES_PASSWORD"]  # the URI carries it; one copy fewer in the server's environment
    os.execve(sys.executable, [sys.executable, "-m", "mlflow", "server", *sys.argv[1:]], env)


if __name__ == "__main__":
    main()
