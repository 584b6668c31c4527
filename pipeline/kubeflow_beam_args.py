"""The Beam args `mtrec compile` passes to every task (everything after its `--`).

What the pods run Beam on: the given args, with the in-pod default runner kept when
they name none (`with_default_runner`); mtrec's own flags typed after `--` refused
(`check_beam_args`); notes for args that compile but leave remote workers without
mtrec (`beam_notes`). No TFX here: these run before it loads.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

RUNNER = "--runner"


def flag_name(arg: str) -> str:
    """`--name` of `--name=value` or `--name`."""
    return arg.split("=", 1)[0]


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The last value of `flag` (`--flag=value` or `--flag value`) in `args`, or None."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def with_default_runner(
    beam_args: Sequence[str] | None, defaults: Sequence[str]
) -> tuple[str, ...]:
    """`beam_args`, or `defaults` without them (None). Args that name no `--runner`
    (`-- --direct_num_workers=4`, a bare `--`) get the defaults they do not set,
    runner first: without one Beam picks its DirectRunner, which tries Prism, a
    download from GitHub, in every pod (pipeline/configs.py)."""
    if beam_args is None:
        return tuple(defaults)
    given = tuple(beam_args)
    if flag_value(given, RUNNER) is not None:
        return given
    named = {flag_name(arg) for arg in given if arg.startswith("--")}
    return (*(arg for arg in defaults if flag_name(arg) not in named), *given)


def check_beam_args(beam_args: Sequence[str] | None, own_flags: Collection[str]) -> None:
    """ValueError for one of `mtrec compile`'s own flags (`own_flags`, as `--no-baseline`,
    or written `--no_baseline`, its spelling before the flags were dashed) after `--`:
    Beam ignores what it does not know, so `-- --no-baseline` compiled the baseline in."""
    for arg in beam_args or ():
        if not arg.startswith("--"):
            continue
        name = flag_name(arg)
        flag = name.replace("_", "-")
        if flag in own_flags and flag not in ("--help",):
            own = "own flag" if flag == name else f"{flag} (dashed since `mtrec compile`)"
            raise ValueError(
                f"{name} after `--` is mtrec compile's {own}, which Beam would silently "
                f"ignore: put it before `--` (everything after `--` goes to Beam)"
            )


def beam_notes(beam_args: Sequence[str] | None, image: str) -> list[str]:
    """Warnings for Beam args that compile but leave remote workers without mtrec."""
    args = list(beam_args or ())
    runner = flag_value(args, RUNNER) or ""
    named = any(a.startswith(("--sdk_container_image", "--worker_harness_container_image"))
                for a in args)  # fmt: skip
    if runner.split(".")[-1] in ("DataflowRunner", "dataflow") and not named:
        return [
            "Dataflow workers run Beam's stock container, without mtrec and the locked "
            f"TF/TFX stack: add --sdk_container_image={image} after `--` (docs/kubeflow.md §7)"
        ]
    return []
