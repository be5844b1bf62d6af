"""CLI, parser: argparse as people expect it of git or ripgrep: a mistyped command or flag gets
"did you mean", and a command's usage (not the top level's) when the mistake is in its flags."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")
_UNKNOWN = "unrecognized arguments: "


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors suggest the nearest command, flag or choice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._argv: list[str] = []

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(self._argv, namespace)

    def error(self, message: str) -> NoReturn:
        target = self._command_parser() if message.startswith(_UNKNOWN) else self
        target.print_usage(sys.stderr)
        self.exit(2, f"{target.prog}: error: {message}{target.hint(message)}\n")

    def hint(self, message: str) -> str:
        """' (did you mean ...?)' for an unknown command, flag or choice, or ''."""
        m = _CHOICE.search(message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            near = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.6)
            return f" (did you mean {near[0]!r}?)" if near else ""
        if message.startswith(_UNKNOWN):
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            unknown = [w.split("=", 1)[0] for w in message[len(_UNKNOWN) :].split() if w.startswith("--")]
            pairs = [(w, difflib.get_close_matches(w, flags, n=1, cutoff=0.6)) for w in unknown]
            said = [(w, near[0]) for w, near in pairs if near]
            if len(unknown) == 1 and said:
                return f" (did you mean {said[0][1]}?)"
            return f" (did you mean {', '.join(f'{n} for {w}' for w, n in said)}?)" if said else ""
        return ""

    def _command_parser(self) -> Parser:
        """The parser of the command named in the argument list (the flags are its), else this one."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word in self._argv:
                    chosen = action.choices.get(word)
                    if isinstance(chosen, Parser):
                        return chosen
        return self
