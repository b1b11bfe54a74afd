"""The image classifier as the study's eye: the measures of reconstructions, decoded grids and
sample sets that the judge, sample and robustness stages share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stages.lib import figures, metrics, quality, study
from stages.lib.data import Split
from stages.lib.models import load_model
from stages.lib.runtime import predict


@dataclass(frozen=True)
class Judge:
    """The classifier with the test images it compares against."""

    classifier: nn.Module
    test: Split
    test_energy: float  # gradient energy of the test images: the reference of every sharpness ratio

    @classmethod
    def of(cls, classifier: nn.Module, test: Split) -> Judge:
        return cls(classifier, test, quality.gradient_energy(test.images))

    @classmethod
    def load(cls, path: Path, test: Split) -> Judge:
        return cls.of(load_model(path), test)

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities of (n, 784) images."""
        return torch.softmax(predict(self.classifier, images), 1)

    def judged(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and penultimate features of (n, 784) images, from one pass."""
        features = predict(self.classifier.features, images)
        return torch.softmax(predict(self.classifier.head, features), 1).numpy(), features.numpy()

    def reconstructions(self, encode: study.Codec, decode: study.Codec) -> dict[str, float]:
        """How recognisable and how sharp a 2-D model's test reconstructions are, and how far its
        test codes are from N(0, I)."""
        codes = study.codes(encode, self.test)  # encoded once: for the prior and for the decoder
        recon = predict(decode, codes)
        return {
            "classifier_accuracy": float((self.classify(recon).argmax(1) == self.test.labels).double().mean()),
            "sharpness_ratio": quality.sharpness_ratio(recon, self.test_energy),
            "prior_kl": quality.gaussian_kl_from_prior(codes),
        }

    def grid(self, images: torch.Tensor, cells: int) -> dict[str, float]:
        """The measures of a decoded cells x cells grid (row-major images)."""
        probs = self.classify(images)
        predicted = probs.argmax(1)
        return {
            "sharpness_ratio": quality.sharpness_ratio(images, self.test_energy),
            "confidence": float(probs.max(1).values.mean()),
            "distinct_classes": len(predicted.unique()),
            "class_entropy": quality.class_entropy(predicted),
            "neighbour_distance": quality.neighbour_distance(images, cells),
            "class_change_rate": quality.class_change_rate(predicted, cells),
        }

    def walk(self, decode: study.Codec, *, latent: int, limit: float, cells: int) -> dict[str, float]:
        """The measures of a CPU model's decoded walk over its latent plane (:func:`figures.walk`)."""
        return self.grid(figures.walk(decode, latent=latent, limit=limit, cells=cells), cells)

    def sample_sets(self, sets: dict[str, torch.Tensor], reference: np.ndarray) -> dict:
        """Each set's quality (:func:`metrics.sample_quality`), their mean, and how far the
        sets' class shares differ; ``reference``: the test images' features."""
        judgements = {name: self.judged(images) for name, images in sets.items()}
        scores = {name: metrics.sample_quality(*j, reference) for name, j in judgements.items()}
        return {
            "vae": {k: float(np.mean([s[k] for s in scores.values()])) for k in metrics.SAMPLE_QUALITY},
            "vae_sets": scores,
            "class_share_gap": quality.class_share_gap([probs.argmax(1) for probs, _ in judgements.values()]),
        }


def prior_samples(decode: study.Codec, latent: int, count: int, seed: int) -> torch.Tensor:
    """``count`` images decoded from z ~ N(0, I), drawn from a generator seeded by ``seed``."""
    z = torch.randn(count, latent, generator=torch.Generator().manual_seed(seed))
    return predict(decode, z)


def sample_names(seeds: Sequence[int]) -> list[str]:
    """A sample set's name: the seed its prior draws come from (not a model's seed)."""
    return [f"sampling_seed_{s}" for s in seeds]
