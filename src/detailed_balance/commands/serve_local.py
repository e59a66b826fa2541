"""CLI: placeholder until its issue lands (replaced by the real command)."""


def configure(parser) -> None:
    pass


def run(args) -> int:
    raise SystemExit("not implemented yet")
