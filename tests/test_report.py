from stages.lib.report import compare, image, num, table
from stages.report import agreement


def test_agreement_with_the_study_elbows():
    assert agreement({"ae": 9, "pca": 15}) == "the autoencoder agrees with the study; the PCA agrees with the study"
    text = agreement({"ae": 7, "pca": None})
    assert "autoencoder elbow comes earlier than the study" in text and "no elbow found for the PCA" in text


def test_compare_names_the_lower_and_the_factor():
    assert compare(0.04, 0.05, "the AE", "PCA", "test MSE") == (
        "The AE's test MSE (0.04) is lower than PCA's (0.05), a factor of 1.25."
    )
    assert compare(3.0, 1.5, "a", "b", "x").startswith("B's x (1.5) is lower than a's (3)")


def test_table_and_numbers():
    assert table(["a", "b"], [[1, 0.123456]]) == "| a | b |\n|---|---|\n| 1 | 0.1235 |\n"
    assert num(None) == "none" and num(7) == "7"
    assert image("plots/x.png", "x") == "![x](../plots/x.png)"
