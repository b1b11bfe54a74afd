"""Fetch the four IDX files of the data set that params.yaml names, and verify them by SHA-256.

Reads:  params.yaml (dataset); the data set's mirror variable, if set ($MNIST_MIRROR or
        $FASHION_MNIST_MIRROR: a folder or URL tried before torchvision's official mirrors).
Writes: data/idx/<name> for each file, uncompressed IDX. Written only if all four pass the
        published SHA-256 in stages/lib/data.py.
"""

from stages.lib import cli, data, io, params


def main() -> None:
    dataset = data.DATASETS[params.load().dataset]
    sources = data.default_sources(dataset)
    files = {name: data.fetch_verified(name, dataset.sha256[name], sources) for name in data.FILES}
    for split, (images, labels) in data.SPLITS.items():
        data.check_split(data.parse_idx(files[images], images), data.parse_idx(files[labels], labels), split)
    with io.transaction() as out:
        target = out.directory(data.DATA_DIR)
        for name, content in files.items():
            (target / name).write_bytes(content)


if __name__ == "__main__":
    cli.run(main)
