"""Fetch the four MNIST files and verify them by SHA-256.

Reads:  data/mnist.sha256 (expected digests of the uncompressed files), $MNIST_MIRROR
        (optional folder or URL, tried before torchvision's official mirrors).
Writes: data/mnist/<name> for each file, uncompressed IDX. Written only if all four pass.
"""

from pathlib import Path

from stages.lib import cli, data, io

MANIFEST = Path("data/mnist.sha256")
OUT_DIR = Path("data/mnist")


def main() -> None:
    manifest = data.read_manifest(MANIFEST)
    sources = data.default_sources()
    files = {name: data.fetch_verified(name, manifest[name], sources) for name in data.FILES}
    for split, (images, labels) in data.SPLITS.items():
        data.check_split(data.parse_idx(files[images], images), data.parse_idx(files[labels], labels), split)
    with io.transaction() as out:
        target = out.directory(OUT_DIR)
        for name, content in files.items():
            (target / name).write_bytes(content)


if __name__ == "__main__":
    cli.run(main)
