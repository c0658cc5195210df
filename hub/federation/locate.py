"""Line numbers of keys in a TOML text that tomllib has already accepted.

``tomllib`` returns plain dicts without positions, so this walks the text once
and records, for every key, array element and table header, the 1-based line
where it starts. Paths mirror the parsed data: ``("node", 2, "parent")`` is the
``parent`` key of the third ``[[node]]`` table, ``("node", 0, "sources", 1)``
the header (or inline table) of that node's second source.

The walk trusts the text to be valid TOML (it runs only after ``tomllib``
parsed it), so it tracks only what moves lines and paths: headers, keys,
strings, comments, inline tables and arrays.
"""

from __future__ import annotations

import tomllib

KeyPath = tuple[str | int, ...]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Map every key path in ``text`` to the line where it first appears."""
    return _Walker(text).walk()


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest located ancestor when it is absent."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.table: KeyPath = ()
        self.array_tables: dict[KeyPath, int] = {}  # [[x]] path -> elements so far

    def walk(self) -> dict[KeyPath, int]:
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if not char:
                return self.lines
            if char == "[":
                self.header()
            else:
                self.key_value(self.table)

    # -- structure -----------------------------------------------------------

    def header(self) -> None:
        line = self.line
        double = self.text.startswith("[[", self.pos)
        self.advance(2 if double else 1)
        keys = self.key()
        self.skip_blank(newlines=False)
        self.advance(2 if double else 1)
        path = (*self.resolve(keys[:-1]), keys[-1])
        if double:
            self.lines.setdefault(path, line)
            index = self.array_tables.get(path, 0)
            self.array_tables[path] = index + 1
            path += (index,)
        self.lines.setdefault(path, line)
        self.table = path

    def resolve(self, keys: list[str]) -> KeyPath:
        """Turn header keys into a path, stepping into the latest [[array]] element."""
        path: KeyPath = ()
        for key in keys:
            path += (key,)
            if path in self.array_tables:
                path += (self.array_tables[path] - 1,)
        return path

    def key_value(self, prefix: KeyPath) -> None:
        line = self.line
        path = prefix
        for key in self.key():
            path += (key,)
            self.lines.setdefault(path, line)
        self.skip_blank(newlines=False)
        self.advance(1)  # "="
        self.skip_blank(newlines=False)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if char == "{":
            self.inline_table(path)
        elif char == "[":
            self.array(path)
        elif char in "\"'":
            self.string()
        else:
            while self.peek() and self.peek() not in _SCALAR_END:
                self.advance(1)

    def inline_table(self, path: KeyPath) -> None:
        self.advance(1)
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if char in ("}", ""):
                self.advance(1)
                return
            if char == ",":
                self.advance(1)
            else:
                self.key_value(path)

    def array(self, path: KeyPath) -> None:
        self.advance(1)
        index = 0
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if char in ("]", ""):
                self.advance(1)
                return
            if char == ",":
                self.advance(1)
                continue
            self.lines.setdefault((*path, index), self.line)
            self.value((*path, index))
            index += 1

    # -- tokens --------------------------------------------------------------

    def key(self) -> list[str]:
        """A dotted key, as its decoded parts."""
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in "\"'":
                start = self.pos
                self.string()
                parts.append(tomllib.loads(f"k = {self.text[start : self.pos]}")["k"])
            else:
                start = self.pos
                while self.peek() and self.peek() in _BARE_KEY:
                    self.advance(1)
                parts.append(self.text[start : self.pos])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance(1)

    def string(self) -> None:
        for quote in ('"""', "'''", '"', "'"):
            if self.text.startswith(quote, self.pos):
                self.advance(len(quote))
                self.advance(self.string_length(quote))
                return

    def string_length(self, quote: str) -> int:
        """Characters from here to just past the closing ``quote``."""
        end = self.pos
        while end < len(self.text):
            if quote[0] == '"' and self.text[end] == "\\":
                end += 2
                continue
            if self.text.startswith(quote, end):
                end += len(quote)
                # a multi-line string may end with one or two quotes of content
                while len(quote) == 3 and self.text.startswith(quote[0], end):
                    end += 1
                return end - self.pos
            end += 1
        return end - self.pos

    def skip_blank(self, *, newlines: bool) -> None:
        blank = " \t\r\n" if newlines else " \t"
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                while self.peek() and self.peek() != "\n":
                    self.advance(1)
            elif char in blank:
                self.advance(1)
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self, count: int) -> None:
        chunk = self.text[self.pos : self.pos + count]
        self.line += chunk.count("\n")
        self.pos += len(chunk)
