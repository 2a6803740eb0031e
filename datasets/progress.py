"""How the long dataset jobs (release, quantize, from-reviews) report progress without printing themselves.

A job takes a `Progress`: a function that wraps an iterable of work items with a label and returns an iterable
of the same items. The command line passes one that draws a tqdm bar (`service.cli.common.progress_bar`); the
default, `no_progress`, passes the items through, so library callers and tests see no output.

Example:
    >>> seen = []
    >>> def count(items, desc):
    ...     for item in items:
    ...         seen.append(desc)
    ...         yield item
    >>> list(count([1, 2], "val"))
    [1, 2]
    >>> seen
    ['val', 'val']
"""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

__all__ = ["Progress", "no_progress"]

T = TypeVar("T")

Progress = Callable[[Iterable[T], str], Iterable[T]]


def no_progress(items: Iterable[T], desc: str) -> Iterable[T]:
    """The items unchanged (`desc` names the pass; unused)."""
    return items
