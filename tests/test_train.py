import copy

import pytest
import torch

from harness.synthetic import digits
from stages.lib import io, progress
from stages.lib.data import Split
from stages.lib.models import (
    VAE,
    AEConfig,
    Autoencoder,
    BatchedAutoencoder,
    BatchedVAE,
    ClassifierConfig,
    ImageClassifier,
    VAEConfig,
    config_dict,
)
from stages.lib.runtime import seed_everything, setup
from stages.lib.train import (
    DivergedError,
    Recipe,
    ae_objective,
    classifier_objective,
    evaluate,
    fit,
    vae_objective,
)


def synthetic(n: int, seed: int) -> Split:
    images, labels = digits(n, seed)
    return Split(torch.from_numpy(images.reshape(n, -1)).float() / 255, torch.from_numpy(labels).long())


TRAIN, TEST = synthetic(256, 0), synthetic(64, 1)


def train_ae(seed: int, epochs: int = 2, latent: int = 2) -> tuple[Autoencoder, list]:
    seed_everything(seed)
    model = Autoencoder(AEConfig(hidden=32, latent=latent))
    history = fit(model, ae_objective, TRAIN, TEST, Recipe(epochs, 32, 1e-3, seed), "test")
    return model, history


def checkpoint_bytes(model, tmp_path) -> bytes:
    with io.transaction() as out:
        out.save_checkpoint(tmp_path / "m", model, config_dict(model.config))
    return (tmp_path / "m" / "model.safetensors").read_bytes()


def test_autoencoder_loss_falls():
    _, history = train_ae(0, epochs=4)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]


def test_each_epoch_prints_the_line_that_the_tools_read(capsys):
    """The campaign's board and benchmarks.timed read fit's stderr through stages.lib.progress."""
    _, history = train_ae(0, epochs=3)
    lines = capsys.readouterr().err.splitlines()
    epochs = [progress.parse(line) for line in lines]
    assert [(e.name, e.epoch, e.epochs) for e in epochs] == [("test", 1, 3), ("test", 2, 3), ("test", 3, 3)]
    assert epochs[-1].summary == f"train_loss {history[-1]['train_loss']:.5f}, test_loss {history[-1]['test_loss']:.5f}"
    assert [progress.line(e) for e in epochs] == lines


def test_vae_loss_falls_and_reports_its_terms():
    seed_everything(0)
    model = VAE(VAEConfig(hidden=32, latent=2))
    history = fit(model, vae_objective, TRAIN, TEST, Recipe(4, 32, 1e-3, 0), "test")
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert set(history[0]) == {"epoch"} | {f"{s}_{t}" for s in ("train", "test") for t in ("loss", "recon", "kl")}


def test_same_seed_same_bytes_different_seed_different_model(tmp_path):
    a, b, c = train_ae(7)[0], train_ae(7)[0], train_ae(8)[0]
    assert checkpoint_bytes(a, tmp_path / "a") == checkpoint_bytes(b, tmp_path / "b")
    assert checkpoint_bytes(a, tmp_path / "a2") != checkpoint_bytes(c, tmp_path / "c")


def test_batched_sweep_equals_separate_training():
    """Same initial weights and batch order: the batched members end where separate models end."""
    sizes = (2, 3, 5)
    seed_everything(3)
    models = [Autoencoder(AEConfig(hidden=32, latent=k)) for k in sizes]
    separate = [copy.deepcopy(m) for m in models]
    batched = BatchedAutoencoder(models)
    recipe = Recipe(2, 32, 1e-3, seed=11)
    history = fit(batched, ae_objective, TRAIN, TEST, recipe, "batched")
    for i, model in enumerate(separate):
        single = fit(model, ae_objective, TRAIN, TEST, recipe, f"single {i}")
        assert history[-1]["test_loss"][i] == pytest.approx(single[-1]["test_loss"], rel=1e-4)
        for got, want in zip(batched.member(i).parameters(), model.parameters(), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # Padded latent units never move: member 0 (latent 2) keeps zeros beyond its size.
    assert batched.w2[0, :, 2:].abs().max() == 0 and batched.w3[0, 2:].abs().max() == 0


def test_batched_members_with_their_own_batch_order_end_where_single_models_end():
    """Each member draws its batches from its own seed: member i ends where a model trained
    alone with seed i ends, and two members with other seeds end elsewhere."""
    seed_everything(5)
    models = [Autoencoder(AEConfig(hidden=32, latent=2)) for _ in range(2)]
    separate, initial = [copy.deepcopy(m) for m in models], [copy.deepcopy(m) for m in models]
    seeds = (21, 22)
    batched = BatchedAutoencoder(models)
    history = fit(batched, ae_objective, TRAIN, TEST, Recipe(2, 32, 1e-3, seed=0, member_seeds=seeds), "batched")
    for i, (model, seed) in enumerate(zip(separate, seeds, strict=True)):
        single = fit(model, ae_objective, TRAIN, TEST, Recipe(2, 32, 1e-3, seed=seed), f"single {i}")
        assert history[-1]["train_loss"][i] == pytest.approx(single[-1]["train_loss"], rel=1e-4)
        for got, want in zip(batched.member(i).parameters(), model.parameters(), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    shared_order = BatchedAutoencoder(initial)  # both members on seed 21's batches
    fit(shared_order, ae_objective, TRAIN, TEST, Recipe(2, 32, 1e-3, seed=seeds[0]), "shared order")
    torch.testing.assert_close(shared_order.member(0).encoder[0].weight, batched.member(0).encoder[0].weight)
    assert not torch.allclose(shared_order.member(1).encoder[0].weight, batched.member(1).encoder[0].weight)


def test_a_batched_vae_trains_each_member():
    seed_everything(0)
    batched = BatchedVAE([VAE(VAEConfig(hidden=32, latent=2)) for _ in range(3)])
    history = fit(batched, vae_objective, TRAIN, TEST, Recipe(3, 32, 1e-3, seed=0, member_seeds=(1, 2, 3)), "vaes")
    first, last = history[0]["test_loss"], history[-1]["test_loss"]
    assert len(last) == 3 and all(b < a for a, b in zip(first, last, strict=True))


@pytest.mark.parametrize("lr_decay", [1.0, 0.5])
def test_fit_multiplies_the_learning_rate_by_the_decay_once_per_epoch(monkeypatch, lr_decay):
    """Every step of epoch e runs at lr * decay ** (e - 1): what ``fit`` does between epochs,
    seen by the optimiser it builds."""
    seen: list[float] = []

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    seed_everything(0)
    model = Autoencoder(AEConfig(hidden=8, latent=2))
    fit(model, ae_objective, TRAIN, TEST, Recipe(3, 64, 1e-2, 0, lr_decay=lr_decay), "decay")
    steps = len(TRAIN) // 64
    assert seen == [1e-2 * lr_decay**e for e in range(3) for _ in range(steps)]


def test_classifier_learns_the_synthetic_digits():
    seed_everything(0)
    model = ImageClassifier(ClassifierConfig())
    history = fit(model, classifier_objective, TRAIN, TEST, Recipe(3, 32, 1e-3, 0), "classifier")
    assert history[-1]["test_error"] < 0.1 < history[0]["train_error"]


def test_evaluate_gives_one_value_per_member():
    batched = BatchedAutoencoder([Autoencoder(AEConfig(hidden=8, latent=k)) for k in (2, 4)])
    assert evaluate(batched, ae_objective, TEST)["loss"].shape == (2,)


def test_bf16_autocast_trains():
    seed_everything(0)
    model = Autoencoder(AEConfig(hidden=32, latent=2))
    history = fit(model, ae_objective, TRAIN, TEST, Recipe(2, 32, 1e-3, 0, "bf16"), "bf16")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a GPU machine)")
@pytest.mark.parametrize(
    ("kind", "precision", "lr_decay"),
    [
        ("ae", "fp32", 1.0),
        ("ae", "bf16", 1.0),
        ("batched", "fp32", 1.0),
        ("vae", "fp32", 1.0),
        ("classifier", "fp32", 0.5),
    ],
)
def test_cuda_graph_replay_gives_the_eager_result(kind, precision, lr_decay):
    """Replaying captured steps must not change the result: same weights and losses, bit for bit.

    Batch 48 over 256 images leaves a smaller last batch (run eagerly); three epochs replay the
    graph after warm-up and capture; the classifier's decaying learning rate forces recaptures.
    """
    device = setup("cuda")
    train, test = (Split(s.images.to(device), s.labels.to(device)) for s in (TRAIN, TEST))
    build_model = {
        "ae": lambda: Autoencoder(AEConfig(hidden=32, latent=2)),
        "batched": lambda: BatchedAutoencoder([Autoencoder(AEConfig(hidden=32, latent=k)) for k in (2, 5)]),
        "vae": lambda: VAE(VAEConfig(hidden=32, latent=2)),
        "classifier": lambda: ImageClassifier(ClassifierConfig()),
    }[kind]
    objective = {"vae": vae_objective, "classifier": classifier_objective}.get(kind, ae_objective)
    results = []
    for graphs in (False, True):
        seed_everything(0)
        model = build_model().to(device)
        recipe = Recipe(3, 48, 1e-3, 0, precision, lr_decay=lr_decay, cuda_graphs=graphs)
        history = fit(model, objective, train, test, recipe, f"graphs={graphs}")
        results.append((history, [p.detach().cpu() for p in model.parameters()]))
    (eager_history, eager_params), (graph_history, graph_params) = results
    assert graph_history == eager_history
    for got, want in zip(graph_params, eager_params, strict=True):
        assert torch.equal(got, want)


def test_a_loss_that_turns_nan_stops_training_naming_the_model_and_the_epoch():
    def diverging(model, x, y):
        loss = ae_objective(model, x, y)["loss"]
        return {"loss": loss * float("nan") if model.steps >= 5 else loss}

    seed_everything(0)
    model = Autoencoder(AEConfig(hidden=16, latent=2))
    model.steps = 0
    model.register_forward_hook(lambda m, i, o: setattr(m, "steps", m.steps + m.training))
    recipe = Recipe(epochs=3, batch_size=64, lr=1e-3, seed=0)
    with pytest.raises(DivergedError, match=r"^my model: train_loss is nan at epoch 2;"):
        fit(model, diverging, TRAIN, TEST, recipe, "my model")
