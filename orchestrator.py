"""scenesweep's command line: the parser, dispatch, and errors as one line (exit code 2).

Everything else lives below it: sweep/ assembles and runs a sweep, serving/
predicts, serves and explains, tracking/ reads MLflow. Installed as the
`scenesweep` console script; `python orchestrator.py` works the same.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from sweep.environment import configure_environment

configure_environment()  # before anything imports Ray or MLflow

from sweep.flags import add_cluster_flags, add_output_flags, add_refit_flag, add_sweep_flags  # noqa: E402
from sweep.spec import UsageError, load_spec, spec_from_args, tracking_uri  # noqa: E402
from trainables.core.data import DataError  # noqa: E402

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse with its errors as every other error: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"scenesweep: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="scenesweep",
        description="Hyperparameter sweeps for scene classification "
        "on Ray Tune + Optuna, every trial tracked in MLflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str, *, sweep_arg: bool = False, tracking: bool = True):
        sub = commands.add_parser(name, help=help)
        sub.set_defaults(handler=handler)
        if sweep_arg:
            sub.add_argument("sweep", help="sweep name")
        if tracking:
            sub.add_argument(
                "--tracking-uri",
                default=None,
                help="MLflow tracking URI (default: the one the sweep ran with when run beside its ./sweeps; "
                "else $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)"
                if sweep_arg
                else "MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db)",
            )
        return sub

    sweep = command("sweep", cmd_sweep, "run a hyperparameter sweep")
    add_sweep_flags(sweep)

    resume = command("resume", cmd_resume, "finish an interrupted sweep, searcher state included", sweep_arg=True)
    add_cluster_flags(resume, address_default=None)
    add_refit_flag(resume, default=None)
    add_output_flags(resume)

    command("list", cmd_list, "every sweep in the tracking store: family, state, trials, best, start time")
    command("status", cmd_status, "a sweep's trials, from MLflow", sweep_arg=True)

    best = command("best", cmd_best, "a sweep's best trial(s), from MLflow", sweep_arg=True)
    best.add_argument("--metric", default=None, help="rank by this metric (default: the family's validation metric)")
    best.add_argument("--top", type=int, default=1, help="how many trials to show (default 1)")
    best.add_argument(
        "--pareto", action="store_true", help="list the Pareto front of accuracy against trainable parameters"
    )
    best.add_argument(
        "--params",
        default=None,
        metavar="KEY,...",
        help="param columns to show (default: the first 8 the search varied)",
    )

    promote = command(
        "promote", cmd_promote, "register a sweep's best trial in the MLflow model registry", sweep_arg=True
    )
    promote.add_argument(
        "--metric",
        default=None,
        help="select by this validation/CV metric (default: the family's; never a test metric)",
    )
    promote.add_argument("--model-name", default=None, help="registered model name (default: scenesweep-FAMILY)")
    promote.add_argument("--alias", default="champion", help="alias to point at the new version (default champion)")
    promote.add_argument(
        "--max-params",
        type=int,
        default=None,
        metavar="N",
        help="the most accurate trial with at most N trainable parameters",
    )
    promote.add_argument(
        "--force", action="store_true", help="move the alias even when its current version is better on the same data"
    )

    model_help = "models:/NAME@champion, models:/NAME/VERSION, runs:/RUN_ID/TRIAL_NAME or a model folder"
    predict = command("predict", cmd_predict, "classify image files or folders with a registered model")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    predict.add_argument("--model", required=True, help=model_help)
    predict.add_argument("--top", type=int, default=1, help="print the K most likely classes (default 1)")
    predict.add_argument("--json", action="store_true", help="one JSON document instead of lines")

    serve = command("serve", cmd_serve, "serve a model over HTTP (MLflow's scoring server)")
    serve.add_argument("--model", required=True, help=model_help)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=5001, help="port (default 5001)")

    explain = command("explain", cmd_explain, "Grad-CAM heat map of a CNN model's prediction for one image")
    explain.add_argument("image", help="image file")
    explain.add_argument("--model", required=True, help=model_help)
    explain.add_argument("--out", required=True, help="where to write the heat map (PNG, the image's size)")
    explain.add_argument("--class", dest="target", default=None, help="explain this class instead of the predicted one")

    dashboard = command(
        "dashboard",
        cmd_dashboard,
        "optuna-dashboard on a sweep's study, during the sweep and after (127.0.0.1; SSH-tunnel to it)",
        sweep_arg=True,
    )
    dashboard.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    dashboard.add_argument("--storage", default="sweeps", help="where the sweep's state is (default ./sweeps)")

    ui = command("ui", cmd_ui, "open the MLflow UI on the tracking store")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=5000)
    return parser


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, taken the way Ctrl-C is: whatever runs ends cleanly (its runs closed)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_like_ctrl_c(signum, _frame) -> None:
    raise Stopped(signum)


def stop_like_ctrl_c() -> None:
    """SIGTERM and SIGHUP end a sweep as Ctrl-C does: its Tune run then stops them gracefully
    (tracking.callback), and before it they unwind like Ctrl-C. Only the commands that run a sweep
    take them so; a server (dashboard, serve) keeps the default, which ends it at once."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _stop_like_ctrl_c)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except Exception as exc:
        if not isinstance(exc, _usage_errors()):
            raise
        print(f"scenesweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"scenesweep: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `predict DIR | head`: the reader has had enough, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _usage_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one line. Looked up only in modules already imported (an error of a
    module never imported cannot have been raised): bad input then costs no MLflow import."""
    errors: list[type[Exception]] = [UsageError, DataError]
    for module, name in (("tracking.runs", "TrackingError"), ("serving.explanations", "ExplainError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def cmd_sweep(args) -> int:
    from sweep.run import start_sweep

    stop_like_ctrl_c()
    return start_sweep(spec_from_args(args), output=args.output)


def cmd_resume(args) -> int:
    from sweep.run import run_sweep

    stop_like_ctrl_c()
    spec = load_spec(args.storage, args.sweep, address=args.address, uri=args.tracking_uri, refit=args.refit)
    return run_sweep(spec, resume=True, output=args.output)


def cmd_list(args) -> int:
    from sweep.results import list_report

    print(list_report(args.tracking_uri))
    return 0


def cmd_status(args) -> int:
    from sweep.results import status_report

    print(status_report(args.sweep, args.tracking_uri))
    return 0


def cmd_best(args) -> int:
    from sweep.results import best_report

    print(
        best_report(
            args.sweep, args.tracking_uri, metric=args.metric, top=args.top, params=args.params, pareto=args.pareto
        )
    )
    return 0


def cmd_promote(args) -> int:
    from sweep.results import promote_best

    print(
        promote_best(
            args.sweep,
            args.tracking_uri,
            metric=args.metric,
            model_name=args.model_name,
            alias=args.alias,
            force=args.force,
            max_params=args.max_params,
        )
    )
    return 0


def _open_model(args):
    from serving.models import open_model

    return open_model(args.model, tracking_uri=tracking_uri(args.tracking_uri))


def cmd_predict(args) -> int:
    from serving.predict import print_predictions

    if args.top < 1:
        raise UsageError(f"--top {args.top} must be at least 1")
    failures = print_predictions(_open_model(args), args.paths, top=args.top, as_json=args.json, model_uri=args.model)
    return EXIT_USAGE if failures else 0


def cmd_serve(args) -> int:
    from serving.server import serve
    from sweep.ports import check_listen

    check_listen(args.host, args.port)  # a bad or taken port is a usage error, found before the model loads
    model = _open_model(args)
    url = f"http://{args.host}:{args.port}"
    body = """'{"dataframe_split": {"columns": ["image"], "data": [["'$(base64 -w0 IMAGE.jpg)'"]]}}'"""
    print(
        f"scenesweep: serving {args.model} at {url}/invocations (Ctrl-C to stop); try:\n"
        f"  curl -s {url}/invocations -H 'Content-Type: application/json' -d {body}",
        flush=True,
    )
    try:
        serve(model, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_explain(args) -> int:
    from serving.explanations import explain_image, read_explain_inputs

    image_path, out = Path(args.image), Path(args.out)
    image = read_explain_inputs(image_path, out)  # before the model loads
    print(explain_image(image, image_path, out, _open_model(args), model_uri=args.model, target=args.target))
    return 0


def cmd_dashboard(args) -> int:
    from sweep.dashboard import run_dashboard

    return run_dashboard(args.sweep, uri=args.tracking_uri, storage=args.storage, port=args.port)


def cmd_ui(args) -> int:
    from sweep.ports import check_listen
    from tracking.ui import run_ui

    check_listen(args.host, args.port)

    return run_ui(tracking_uri(args.tracking_uri), host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
