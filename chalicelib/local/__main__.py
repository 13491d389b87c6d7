"""`python -m chalicelib.local run|token|ddb`: the local server, a local token, or only fetching DynamoDB Local."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from chalicelib.local.dynamodb_local import (
    DynamoDBLocalError,
    ensure_emulator,
    find_java,
)
from chalicelib.local.environment import (
    DEFAULTS,
    GENERATED_SECRETS,
    data_dir,
    persisted_secret,
)


def _run(args: argparse.Namespace) -> int:
    from chalicelib.local.server import run

    return run(host=args.host, port=args.port, app_module=args.app)


def _token(args: argparse.Namespace) -> int:
    # Same secret as the server: the environment's, else the one persisted under DATA_DIR (created if needed).
    if not os.environ.get("AUTH_JWT_SECRET"):
        filename, make = GENERATED_SECRETS["AUTH_JWT_SECRET"]
        os.environ["AUTH_JWT_SECRET"] = persisted_secret(data_dir() / filename, make)
    os.environ.setdefault("AUTH_ISSUER", DEFAULTS["AUTH_ISSUER"])
    from chalicelib.config import reset_settings
    from chalicelib.tokens import mint_token

    reset_settings()
    portal = args.scope == "portal" or args.client_id is not None
    if args.role is not None:
        roles = [r.strip() for r in args.role.split(",") if r.strip()]
    else:
        roles = None if portal else ["admin"]
    if portal and not args.client_id:
        print("a portal token needs --client-id", file=sys.stderr)
        return 2
    kwargs = {"sub": args.sub, "client_id": args.client_id, "scope": "portal" if portal else args.scope}
    if args.ttl:
        kwargs["ttl"] = args.ttl
    print(mint_token(args.tenant, roles, **kwargs))
    return 0


def _ddb(args: argparse.Namespace) -> int:
    print(f"DynamoDB Local is in {ensure_emulator()}")
    find_java()  # fetched fine, but say now if it could not run
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the API on HOST:PORT with DynamoDB Local and the event sources")
    run.add_argument("--host", default=None, help="default: $HOST or 127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    run.add_argument("--app", default="app", help="module holding the Chalice `app` (default: app)")
    run.set_defaults(func=_run)

    token = commands.add_parser("token", help="print a bearer token signed with the local secret")
    token.add_argument("--tenant", default="demo")
    token.add_argument("--role", default=None, help="comma list, e.g. admin or agent,viewer (default: admin)")
    token.add_argument("--sub", default=None, help="user id (contact id for portal tokens)")
    token.add_argument("--client-id", default=None, help="portal token for this client")
    token.add_argument("--scope", default=None, choices=["portal"])
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    token.set_defaults(func=_token)

    ddb = commands.add_parser("ddb", help="fetch DynamoDB Local into .cache/ and check for Java")
    ddb.set_defaults(func=_ddb)

    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Both announce routine facts (settings file, credentials found) at INFO on every start.
    for noisy in ("pynamodb", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except DynamoDBLocalError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
