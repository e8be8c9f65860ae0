"""Recompute a pinned dataset's digest, counts and size from a clone of its repository (no download, no photos read).

    git clone --bare https://github.com/OWNER/REPO /tmp/REPO.git
    python tools/pin_source.py eggs /tmp/REPO.git

prints what `cnn_course.data.registry.DATASETS[NAME].pin` should hold: the digest of
`cnn_course.data.sources.plan` on the commit's tree (`git ls-tree -r -l`: paths, blob ids and sizes), the images per
split, and the size of all the commit's files (the archive is about that). A blob that a partial clone lacks shows no
size: it is counted as too large for a photo (`MAX_PHOTO`), which is what such clones leave out. Exit 1 when the
registry's digest differs.
"""
import argparse, subprocess, sys
from collections import Counter
from cnn_course.core.basics import UnknownNameError
from cnn_course.data.registry import DATASETS, get_dataset
from cnn_course.data.sources import MAX_PHOTO, plan, selection_digest

def tree(git_dir:str, commit:str) -> list:
    "(path, blob id, size) of every file of `commit`."
    out = subprocess.run(['git', '--git-dir', git_dir, 'ls-tree', '-r', '-l', '-z', commit],
                         capture_output=True, check=True).stdout
    rows = []
    for line in out.decode().split('\0'):
        if not line: continue
        meta, path = line.split('\t', 1); mode, kind, blob, size = meta.split()
        if kind == 'blob': rows.append((path, blob, int(size) if size.isdigit() else None))
    return rows

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('name', help='a dataset with a pin, e.g. eggs')
    p.add_argument('git_dir', help='a (bare) clone of its repository holding the pinned commit')
    a = p.parse_args(argv)
    pinned = ', '.join(sorted(n for n, s in DATASETS.items() if s.pin is not None))
    try: spec = get_dataset(a.name)
    except UnknownNameError: p.error(f'unknown dataset {a.name!r}; the pinned ones: {pinned}.')
    pin = spec.pin
    if pin is None: p.error(f'{a.name} has no pinned source; the pinned ones: {pinned}.')
    try: rows = tree(a.git_dir, pin.commit)
    except subprocess.CalledProcessError as e:
        p.error(f'{a.git_dir} does not hold {pin.short} ({e.stderr.decode().strip()}): git clone --bare '
                f'https://github.com/{pin.repo} /tmp/{pin.repo.split("/")[1]}.git and pass that folder.')
    picked = plan(pin, [(p, b, MAX_PHOTO if n is None else n) for p, b, n in rows], spec.classes)
    digest = selection_digest(picked)
    counts = Counter(s for s, *_ in picked)
    absent = sum(n is None for *_, n in rows)
    print(f'{pin.short}: {len(rows)} files, {sum(n or 0 for *_, n in rows):,} bytes'
          + (f' and {absent} absent from this clone' if absent else ''))
    print('per split:', ' / '.join(f'{s} {counts[s]}' for s in ('train', 'valid', 'test')),
          f'({len({c for _, c, *_ in picked})} classes)')
    print('digest:', digest, 'matches the registry' if digest == pin.digest else f'the registry has {pin.digest}')
    return 0 if digest == pin.digest else 1

if __name__ == '__main__': sys.exit(main())
