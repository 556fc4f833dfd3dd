"""``--config job.toml``: a TOML table of option values, validated exactly like the command line.

The keys are the flag names users type (``reg-param``, ``no-intercept``, ``max-iter``). The table
is turned into command-line tokens (``--reg-param=0.1,1``) that are placed before the user's own
flags, and the whole command line is parsed once by the same argparse parser: a config value is
therefore checked by the very code that checks the flag, and a flag given on the command line wins
because argparse keeps the last value it sees.

TOML values map to tokens as follows:

- an on/off flag (``no-intercept``, ``overwrite``, ``one-pass``, ...) takes a TOML boolean only:
  ``true`` gives the flag, ``false`` leaves it out. A string such as ``"false"`` is an error naming
  the key (never truthy), since quoting a boolean is the usual slip and guessing hides it;
- a string, integer or float becomes the flag's value (floats by ``repr``, which round-trips);
- a list is accepted only by the options that take a comma-separated list (``features``,
  ``reg-param``, sweep's ``k``), joined with commas (``"a,b"`` works there too), and by the
  repeatable options (``conf``), one flag per item.

Nothing here imports Spark: a bad config file costs no JVM start.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from sparkml_jobs.errors import InputError

# options that make no sense in a file: the file itself, and argparse's --help
NOT_IN_CONFIG = frozenset({"config", "help"})


def config_path(argv: Sequence[str]) -> str | None:
    """The value of the last ``--config`` flag in ``argv`` (``None`` when there is none)."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--config="):
            found = arg.split("=", 1)[1]
    return found


def read_table(path: str) -> dict[str, Any]:
    """Read the TOML file at ``path`` (a local file read by the driver before Spark starts)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError as exc:
        raise InputError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"config file {path} cannot be read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file {path} is not valid TOML: {exc}") from exc


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's long options by key (``--reg-param`` → ``reg-param``)."""
    return {
        option[2:]: action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option[2:] not in NOT_IN_CONFIG
    }


def _check_keys(table: dict[str, Any], known: Collection[str]) -> None:
    unknown = [key for key in table if key not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key.replace("_", "-"), list(known), n=1, cutoff=0.8)
        hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise InputError(
        f"unknown option(s) {', '.join(hints)}; the keys are the command's flag names "
        "without the leading --"
    )


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        raise InputError(f"'{key}' takes a value, not true/false")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise InputError(f"'{key}' must be a string, a number or a list, got {type(value).__name__}")


def _list(key: str, items: list[Any]) -> str:
    if not items:
        raise InputError(f"'{key}' is an empty list")
    if any(isinstance(item, bool) or not isinstance(item, (str, int, float)) for item in items):
        raise InputError(f"'{key}': list items must be strings or numbers")
    texts = [_scalar(key, item) for item in items]
    for text in texts:
        if "," in text:
            # the list reaches the option as one comma-separated value
            raise InputError(f"'{key}': item '{text}' contains a comma")
    return ",".join(texts)


def _tokens(
    table: dict[str, Any], options: dict[str, argparse.Action], list_types: Collection[Callable]
) -> list[str]:
    tokens = []
    for key, value in table.items():
        action = options[key]
        if action.nargs == 0:  # an on/off flag: store_true / store_false
            if not isinstance(value, bool):
                raise InputError(
                    f"'{key}' is an on/off flag: write true or false (unquoted), got {value!r}"
                )
            tokens += [f"--{key}"] if value else []
        elif isinstance(value, list) and isinstance(action, argparse._AppendAction):
            # a repeatable option (--conf KEY=VALUE): one token per item
            tokens += [f"--{key}={_scalar(key, item)}" for item in value]
        elif isinstance(value, list):
            if action.type not in list_types:
                raise InputError(f"'{key}' takes one value, not a list")
            tokens.append(f"--{key}={_list(key, value)}")
        else:
            # --key=value: a value starting with '-' is not mistaken for a flag
            tokens.append(f"--{key}={_scalar(key, value)}")
    return tokens


def config_tokens(
    path: str, parser: argparse.ArgumentParser, list_types: Collection[Callable] = ()
) -> list[str]:
    """The command-line tokens equivalent to the TOML file at ``path``, checked by ``parser``.

    Parameters
    ----------
    path : str
        The ``--config`` file.
    parser : argparse.ArgumentParser
        The parser of the action being run (``linreg fit``...); its errors must raise
        :class:`InputError` (as :class:`~sparkml_jobs.cli.UsageParser` does).
    list_types : collection of callables
        The argparse ``type`` functions that parse a comma-separated list: only their options
        accept a TOML list.

    Returns
    -------
    list of str
        ``--key=value`` / ``--flag`` tokens, to be placed before the user's own flags.

    Raises
    ------
    InputError
        Naming the file and the key: unknown key, wrong TOML type, or a value the option's own
        validation refuses.
    """
    table = read_table(path)
    options = _options(parser)
    try:
        _check_keys(table, options)
        tokens = _tokens(table, options, list_types)
        _parse_alone(parser, tokens)
    except InputError as exc:
        raise InputError(f"config file {path}: {exc}") from None
    return tokens


def _parse_alone(parser: argparse.ArgumentParser, tokens: list[str]) -> None:
    """Parse the config's tokens on their own, so that an invalid value is blamed on the file.

    Required options are relaxed meanwhile: they may come from the command line.
    """
    required = [action for action in parser._actions if action.required]
    required += [group for group in parser._mutually_exclusive_groups if group.required]
    for item in required:  # an argument, or a group such as --input | --input-table
        item.required = False
    try:
        parser.parse_args(tokens)
    finally:
        for item in required:
            item.required = True


def with_config(
    argv: Sequence[str],
    parsers: dict[str, argparse.ArgumentParser],
    list_types: Collection[Callable] = (),
) -> list[str]:
    """``argv`` with the ``--config`` file's tokens inserted after the subcommand words.

    ``parsers`` maps the subcommand words (``"linreg fit"``, ``"demo"``) to their parsers. Without
    a ``--config`` flag, or for an unknown subcommand (left for argparse to report), ``argv`` is
    returned unchanged.
    """
    argv = list(argv)
    path = config_path(argv)
    words = 1 if argv[:1] in (["demo"], ["export"]) else 2
    parser = parsers.get(" ".join(argv[:words]))
    if path is None or parser is None:
        return argv
    return [*argv[:words], *config_tokens(path, parser, list_types), *argv[words:]]
