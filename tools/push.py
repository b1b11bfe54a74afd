"""Push a clone's results so that another clone restores them instead of running them again.

    python -m tools.push [-r REMOTE]      # make push

`dvc push --run-cache` sends the workspace's outputs and the run cache's entries, but not the
outputs that an entry names and git keeps (`cache: false`: metrics, curves, figures; DVC
3.67.1), so another clone's `dvc repro --pull` cannot restore such an entry and runs its stage
again (docs/caching.md). This sends those too, and the entries last, each checked on the
remote: DVC logs an entry that fails to copy and goes on. A campaign's point pushes the same way,
its own entries only (tools/campaign/node.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def entries(dvc_repo, keys: list[str] | None = None) -> list[tuple[str, str]]:
    """The run cache's entries as (stage hash, entry name): of the stages ``keys`` where given,
    else every one."""
    cache = dvc_repo.stage_cache
    if keys is None:
        keys = sorted(p.name for p in Path(cache.cache_dir).glob("*/*") if p.is_dir())
    return [(key, value.name) for key in keys for value in sorted(Path(cache._get_cache_dir(key)).glob("*"))]


def push_entries(dvc_repo, remote: str | None, found: list[tuple[str, str]]):
    """To the DVC remote: the objects of ``found``'s outputs that this cache holds (an entry
    fetched from a remote may lack them here: DVC then runs its stage), then the entries.
    Returns DVC's transfer result; raises RuntimeError where an object or entry did not arrive."""
    from dvc.exceptions import CollectCacheError

    cache = dvc_repo.stage_cache
    objs = set()
    for entry in found:
        try:
            used = cache.get_used_objs([entry])
        except CollectCacheError:
            continue
        objs |= {obj for held in used.values() for obj in held if dvc_repo.cache.local.exists(obj.value)}
    result = dvc_repo.cloud.push(objs, remote=remote)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} objects of the run cache failed to push")
    odb = dvc_repo.cloud.get_remote_odb(remote, "push --run-cache", hash_name="md5-dos2unix")
    for key, value in found:
        target = odb.fs.join(odb.path, "runs", key[:2], key, value)
        if not odb.fs.exists(target):
            odb.fs.makedirs(odb.fs.parent(target), exist_ok=True)
            odb.fs.put_file(os.path.join(cache._get_cache_dir(key), value), target)
    missing = [key for key, value in found if not odb.fs.exists(odb.fs.join(odb.path, "runs", key[:2], key, value))]
    if missing:
        raise RuntimeError(f"{len(missing)} run-cache entries failed to push")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--remote", help="the DVC remote (default: the default remote)")
    args = parser.parse_args(argv)
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as dvc_repo:
            pushed = dvc_repo.push(remote=args.remote)
            found = entries(dvc_repo)
            result = push_entries(dvc_repo, args.remote, found)
    except (DvcException, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"pushed to the DVC remote: {pushed + len(result.transferred)} objects, {len(found)} run-cache entries there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
