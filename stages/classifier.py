"""Train a small CNN image classifier, the judge of generated samples (stage `sample`).

Reads:  params.yaml (dataset, device, classifier), data/idx.
Writes: models/classifier/ (config.json + model.safetensors),
        metrics/classifier.json (test accuracy), plots/classifier/loss.csv.
"""

from pathlib import Path

from stages.lib import cli, io, params
from stages.lib.data import DATASETS, load_data
from stages.lib.models import config_dict
from stages.lib.runtime import setup
from stages.lib.train import Recipe, history_table, train_classifier


def main() -> None:
    p = params.load()
    c = p.classifier
    device = setup(p.device)
    recipe = Recipe(c.epochs, c.batch_size, c.lr, c.seed, lr_decay=c.lr_decay)
    model, history = train_classifier(*load_data(device), recipe, DATASETS[p.dataset], "classifier")
    test = history[-1]  # fit evaluated the final model on the test set
    with io.transaction() as out:
        out.write_json(Path("metrics/classifier.json"), {
            "device": device.type,
            "test_accuracy": 1.0 - test["test_error"],
            "test_loss": test["test_loss"],
        })  # fmt: skip
        out.write_csv(Path("plots/classifier/loss.csv"), *history_table(history))
        out.save_checkpoint(Path("models/classifier"), model, config_dict(model.config))


if __name__ == "__main__":
    cli.run(main)
